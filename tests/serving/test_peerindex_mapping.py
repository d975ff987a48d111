"""The real Twitter sample maps to valid Twitter-only snapshots by the documented rule."""

from __future__ import annotations

import pytest

from serving.peerindex import WINDOW_DAYS, load_snapshots, row_to_snapshot

ROW = {
    "follower_count": "614689", "following_count": "400", "listed_count": "5729",
    "mentions_received": "199.618", "retweets_received": "67.8125",
    "mentions_sent": "9.36619", "retweets_sent": "0.359534", "posts": "4.09449",
    "network_feature_1": "669", "network_feature_2": "39.1937", "network_feature_3": "2565.61",
}


def test_levels_as_is_rates_times_the_window():
    twitter = row_to_snapshot(ROW, "p0").windows_of("twitter")[0]
    assert twitter.window_days == WINDOW_DAYS
    assert (twitter.followers, twitter.following, twitter.lists) == (614689, 400, 5729)
    assert twitter.posts == pytest.approx(4.09449 * WINDOW_DAYS)
    assert twitter.received == pytest.approx({"mention": 199.618 * 30, "retweet": 67.8125 * 30})
    assert twitter.sent == pytest.approx({"mention": 9.36619 * 30, "retweet": 0.359534 * 30})


def test_network_features_and_unknown_signals_are_left_out():
    snapshot = row_to_snapshot(ROW, "p0")
    assert list(snapshot.networks) == ["twitter"]
    dumped = snapshot.model_dump(exclude_none=True)["networks"]["twitter"]
    assert not any("network_feature" in key for key in dumped)
    assert "unique_engagers" not in dumped and "account_age_days" not in dumped


def test_every_real_account_maps(peerindex_csv):
    snapshots = load_snapshots(peerindex_csv)
    assert len(snapshots) > 1000
    assert len({s.user_id for s in snapshots}) == len(snapshots)
