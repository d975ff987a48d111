"""The published-score smoothing and the snapshot fingerprints it relies on."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from historybuild import snapshot_rows

from serving.daily import SmoothingRule, publish, signal_fingerprints

DAY = date(2026, 10, 1)
RULE = SmoothingRule(half_life_days=3.0, dead_band=0.5, max_gap_days=30, decimals=2)


def _today(raw: float, signal_hash: int = 1, model: str = "1", user: str = "a") -> pl.DataFrame:
    return pl.DataFrame(
        {"user_id": [user], "raw_score": [raw], "signal_hash": [signal_hash], "model_version": [model]},
        schema_overrides={"signal_hash": pl.UInt64},
    )


def _previous(score: float, days_ago: int = 1, signal_hash: int = 1, model: str = "1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": ["a"],
            "date": [DAY - timedelta(days=days_ago)],
            "score": [score],
            "signal_hash": [signal_hash],
            "model_version": [model],
        },
        schema_overrides={"signal_hash": pl.UInt64},
    )


def _published(today: pl.DataFrame, previous: pl.DataFrame, day: date = DAY) -> float:
    return publish(today, previous, day, RULE)["score"].item()


def test_a_first_score_is_the_models():
    assert _published(_today(47.123), _previous(10.0).clear()) == 47.12


def test_unchanged_signals_under_the_same_model_keep_the_score_exactly():
    # the model would say 70 (it did yesterday too), the published score is still catching up
    assert _published(_today(70.0, signal_hash=5), _previous(44.44, signal_hash=5)) == 44.44


def test_a_new_model_moves_even_unchanged_signals():
    published = _published(_today(70.0, signal_hash=5, model="2"), _previous(44.44, signal_hash=5))
    assert 44.44 < published < 70.0


def test_changes_inside_the_dead_band_are_not_published():
    assert _published(_today(40.49, signal_hash=2), _previous(40.0)) == 40.0
    assert _published(_today(39.51, signal_hash=2), _previous(40.0)) == 40.0


def test_a_change_is_published_at_the_half_life_pace():
    one_day = _published(_today(50.0, signal_hash=2), _previous(40.0))
    assert one_day == pytest.approx(40.0 + 10.0 * (1 - 2 ** (-1 / 3)), abs=0.005)
    three_days = _published(_today(50.0, signal_hash=2), _previous(40.0, days_ago=3))
    assert three_days == 45.0


def test_a_lasting_change_converges_and_a_spike_fades():
    score, day = 40.0, DAY
    for i in range(30):  # the model says 60 every day, the signals keep moving
        previous = _previous(score).with_columns(pl.lit(day - timedelta(days=1)).alias("date"))
        score = publish(_today(60.0, signal_hash=i + 10), previous, day, RULE)["score"].item()
        day += timedelta(days=1)
    assert 59.5 <= score <= 60.0
    spike = _published(_today(50.0, signal_hash=3), _previous(40.0))
    back = publish(
        _today(40.0, signal_hash=4), _previous(spike), DAY + timedelta(days=1), RULE
    )["score"].item()
    assert spike - 40.0 < 2.5 and back < spike


def test_a_score_older_than_the_gap_is_forgotten():
    assert _published(_today(70.0, signal_hash=2), _previous(30.0, days_ago=31)) == 70.0


def test_scores_stay_within_1_and_100():
    low = _published(_today(1.0, signal_hash=2), _previous(1.2))
    high = _published(_today(100.0, signal_hash=2), _previous(99.9))
    assert 1.0 <= low <= 100.0 and 1.0 <= high <= 100.0


def test_identical_snapshots_on_consecutive_days_publish_the_identical_score():
    """End to end on the smoothing inputs: the fingerprint of two identical snapshots (apart from
    the date and the account's age) is equal, so the score published the second day is exactly
    the first day's, whatever the model says."""
    signals = {"followers": 1200.0, "posts": 9.0, "received_like": 300.0, "engager_influence": None}
    day1 = snapshot_rows("a", DAY, account_age_days=400.0, **signals)
    day2 = snapshot_rows("a", DAY + timedelta(days=1), account_age_days=401.0, **signals)
    h1, h2 = (signal_fingerprints(s)["signal_hash"].item() for s in (day1, day2))
    assert h1 == h2

    first = publish(_today(63.7, signal_hash=h1), _previous(55.0, signal_hash=h1 ^ 1), DAY, RULE)
    assert first["score"].item() != 55.0  # it moved: the signals had changed
    previous = first.select(
        "user_id", pl.lit(DAY).alias("date"), "score", "signal_hash", "model_version"
    )
    for raw in (63.7, 63.9, 80.0):  # the model's score may even wiggle: nothing to publish
        second = publish(_today(raw, signal_hash=h2), previous, DAY + timedelta(days=1), RULE)
        assert second["score"].item() == first["score"].item()


def test_fingerprints_see_every_signal_and_null():
    base = snapshot_rows("a", DAY, followers=10.0, posts=3.0)
    variants = [
        snapshot_rows("a", DAY, followers=11.0, posts=3.0),
        snapshot_rows("a", DAY, followers=10.0, posts=None),
        snapshot_rows("a", DAY, followers=10.0, posts=3.0, reciprocity=0.0),
        base.with_columns(pl.lit("facebook").alias("network")),
        base.filter(pl.col("window_days") != 90),
    ]
    hashes = {signal_fingerprints(f)["signal_hash"].item() for f in [base, *variants]}
    assert len(hashes) == 6
    negative_zero = snapshot_rows("a", DAY, followers=10.0, posts=3.0, follower_growth=-0.0)
    zero = snapshot_rows("a", DAY, followers=10.0, posts=3.0, follower_growth=0.0)
    assert signal_fingerprints(negative_zero).equals(signal_fingerprints(zero))


def test_fingerprints_do_not_depend_on_row_order_or_other_users():
    a = snapshot_rows("a", DAY, followers=10.0)
    b = snapshot_rows("b", DAY, followers=20.0)
    together = signal_fingerprints(pl.concat([b, a]).reverse())
    alone = signal_fingerprints(a)
    assert together.filter(pl.col("user_id") == "a").equals(alone)
    assert together["user_id"].to_list() == ["a", "b"]


def test_fingerprints_ignore_float_noise_but_not_small_changes():
    base = snapshot_rows("a", DAY, pagerank=1.2345678901234, selective_reactions=812.25)
    noise = snapshot_rows("a", DAY, pagerank=1.2345678901234 + 4e-15, selective_reactions=812.25 + 5e-13)
    change = snapshot_rows("a", DAY, pagerank=1.2345678901234 * (1 + 1e-7), selective_reactions=812.25)
    h = [signal_fingerprints(f)["signal_hash"].item() for f in (base, noise, change)]
    assert h[0] == h[1] != h[2]
