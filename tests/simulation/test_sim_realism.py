"""The simulated Twitter accounts look like real ones (rank correlations within +-0.15)."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from simulation.config import WorldConfig
from simulation.realism import (
    KEY_PAIRS,
    SIGNALS,
    compare,
    read_raw_signals,
    read_real,
    render,
    twitter_signals,
)


def test_signals_from_hand_built_tables():
    days = [date(2026, 10, d) for d in range(1, 21)]
    profiles = pl.DataFrame(
        {
            "date": days,
            "user_id": [1] * 20,
            "network": ["twitter"] * 20,
            "followers": range(100, 120),
            "following": [50] * 20,
            "lists": [3] * 20,
            "posts_total": range(20),
        }
    ).lazy()
    ts = datetime(2026, 10, 5, 12)
    interactions = pl.DataFrame(
        {
            "date": [date(2026, 10, 5)] * 4,
            "interaction_id": [1, 2, 3, 4],
            "ts": [ts] * 4,
            "network": ["twitter", "twitter", "twitter", "facebook"],
            "actor_id": [2, 2, 1, 2],
            "target_id": [1, 1, 2, 1],
            "action": ["reply", "retweet", "mention", "comment"],
            "post_id": [10, 10, None, 11],
        }
    ).lazy()
    posts = pl.DataFrame({"user_id": [1] * 10, "network": ["twitter"] * 10}).lazy()
    row = twitter_signals(profiles, interactions, posts).row(0, named=True)
    assert row["follower_count"] == 119 and row["listed_count"] == 3
    assert row["mentions_received"] == pytest.approx(0.1)  # 1 reply / 20 days, floored at 0.1
    assert row["posts"] == pytest.approx(11 / 20)  # 10 posts + 1 mention
    assert row["mentions_sent"] == pytest.approx(0.1)
    assert set(SIGNALS) <= set(row)


def test_simulated_twitter_matches_real_rank_correlations(peerindex_csv, write_at, tmp_path):
    world = write_at(WorldConfig(users=3_000, days=60, seed=5, corrupt_share=0.0), tmp_path)
    report = compare(read_raw_signals(world.raw), read_real(peerindex_csv))
    assert report["accounts"]["simulated"] > 800
    assert len(report["key_pairs"]) == len(KEY_PAIRS)
    assert report["ok"], render(report)
