"""Splits and fingerprints of the training table."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from training.dataset import (
    fingerprint,
    held_out_user,
    latest_population,
    reference_snapshots,
    time_split,
    user_disjoint_split,
)

DATES = [date(2026, 9, 1) + timedelta(days=7 * i) for i in range(5)]


def _rows(users: int = 200) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [f"u{u}" for d in DATES for u in range(users)],
            "as_of": [d for d in DATES for _ in range(users)],
            "label": [float(u) for _ in DATES for u in range(users)],
        }
    )


def test_time_split_trains_on_the_past():
    split = time_split(_rows(), validation_dates=1, test_dates=1)
    assert split.train["as_of"].max() < split.valid["as_of"].min()
    assert split.valid["as_of"].max() < split.test["as_of"].min()
    assert split.test["as_of"].unique().to_list() == [DATES[-1]]
    assert split.train.height + split.valid.height + split.test.height == _rows().height


def test_time_split_needs_enough_dates():
    with pytest.raises(ValueError, match="as-of dates"):
        time_split(_rows().filter(pl.col("as_of") <= DATES[1]))


def test_user_disjoint_split_never_tests_a_training_user():
    split = user_disjoint_split(time_split(_rows()), share=0.2, seed=3)
    train_users = set(split.train["user_id"]) | set(split.valid["user_id"])
    test_users = set(split.test["user_id"])
    assert train_users.isdisjoint(test_users)
    assert 20 <= len(test_users) <= 60


def test_held_out_users_are_stable():
    assert [held_out_user(f"u{i}", 0.3, 1) for i in range(50)] == [
        held_out_user(f"u{i}", 0.3, 1) for i in range(50)
    ]


def test_fingerprint_ignores_row_and_column_order_but_not_values():
    rows = _rows(20)
    shuffled = rows.sample(fraction=1.0, shuffle=True, seed=1).select(reversed(rows.columns))
    assert fingerprint(rows) == fingerprint(shuffled)
    assert fingerprint(rows) != fingerprint(rows.with_columns(pl.col("label") + 1e-9))


def test_reference_is_created_once_then_reused(tmp_path):
    rows = _rows(10).with_columns(pl.lit("twitter").alias("network"), pl.lit(30).alias("window_days"))
    path = tmp_path / "ref.parquet"
    first, created = reference_snapshots(path, rows)
    assert created and first["as_of"].unique().to_list() == [DATES[-1]]
    again, created = reference_snapshots(path, rows.head(3))
    assert not created and again.equals(first)
    assert latest_population(rows).height == 10
