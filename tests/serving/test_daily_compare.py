"""compare-models: the report of how a challenger would move everyone's score."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from serving.daily import CompareRule, compare_scores


def _scores(values: dict[str, float]) -> pl.DataFrame:
    return pl.DataFrame({"user_id": list(values), "score": list(values.values())})


def test_the_report_measures_the_moves_on_hand_built_scores():
    users = [f"u{i:03d}" for i in range(100)]
    champion = _scores({u: 40.0 for u in users})
    # 90 users unmoved, 8 move by +2, one by -6 and one by +10
    moves = [0.0] * 90 + [2.0] * 8 + [-6.0, 10.0]
    challenger = _scores({u: 40.0 + m for u, m in zip(users, moves, strict=True)})
    report = compare_scores(champion, challenger, CompareRule(top_movers=3))

    assert report["users"] == 100
    assert report["delta"]["median_abs"] == 0.0
    assert report["delta"]["p90_abs"] == pytest.approx(np.quantile(np.abs(moves), 0.9))
    assert report["delta"]["p99_abs"] == pytest.approx(np.quantile(np.abs(moves), 0.99), abs=1e-4)
    assert report["delta"]["max_abs"] == 10.0
    assert report["delta"]["mean"] == pytest.approx(np.mean(moves))
    assert report["share_moved_more_than"] == {"1": 0.10, "5": 0.02}
    assert [m["user_id"] for m in report["biggest_movers"]] == ["u099", "u098", "u090"]
    assert report["biggest_movers"][0] == {
        "user_id": "u099", "champion": 40.0, "challenger": 50.0, "delta": 10.0
    }
    assert report["within_bounds"] is False  # p99 |Δ| is above 5


def test_a_calm_challenger_is_within_the_bounds():
    rng = np.random.default_rng(0)
    base = rng.uniform(1, 90, 1000)
    users = [f"u{i}" for i in range(1000)]
    champion = _scores(dict(zip(users, base, strict=True)))
    challenger = _scores(dict(zip(users, base + rng.normal(0, 0.5, 1000), strict=True)))
    report = compare_scores(champion, challenger)
    assert report["within_bounds"] is True
    assert report["delta"]["median_abs"] < 1.0


def test_only_users_scored_by_both_are_compared():
    report = compare_scores(_scores({"a": 40.0, "b": 50.0}), _scores({"b": 51.0, "c": 10.0}))
    assert report["users"] == 1
    assert (report["users_only_champion"], report["users_only_challenger"]) == (1, 1)
    with pytest.raises(ValueError, match="no user in common"):
        compare_scores(_scores({"a": 1.0}), _scores({"b": 1.0}))
