"""Partial snapshots for training, and the monotone audit that decides the constraints."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from features.snapshot import SIGNAL_COLUMNS, snapshots_to_frame
from training.augment import PUBLIC_COUNTERS, AugmentShares, augment_snapshots, source_user
from training.monotone import (
    Direction,
    audit_directions,
    random_snapshots,
    resolve_constraints,
)


@pytest.fixture(scope="module")
def snapshots() -> pl.DataFrame:
    return snapshots_to_frame(random_snapshots(400, seed=5))


def _kind(frame: pl.DataFrame, tag: str) -> pl.DataFrame:
    return frame.filter(pl.col("user_id").str.ends_with(f"~{tag}"))


def test_one_network_rows_keep_a_single_linked_network(snapshots):
    out = augment_snapshots(snapshots, AugmentShares(1.0, 0.0, 0.0), seed=1)
    per_user = _kind(out, "one").group_by("user_id").agg(pl.col("network").n_unique())
    assert per_user.height > 0 and per_user["network"].max() == 1
    multi = snapshots.group_by("user_id").agg(pl.col("network").n_unique()).filter(pl.col("network") > 1)
    assert per_user.height == multi.height


def test_public_only_rows_know_public_counters_only(snapshots):
    out = _kind(augment_snapshots(snapshots, AugmentShares(0.0, 1.0, 0.0), seed=1), "pub")
    hidden = [c for c in SIGNAL_COLUMNS if c not in PUBLIC_COUNTERS]
    assert out.height > 0
    assert out.select(pl.col(hidden).is_not_null().any()).row(0) == (False,) * len(hidden)


def test_dropped_fields_are_consistent_across_a_users_rows(snapshots):
    out = _kind(augment_snapshots(snapshots, AugmentShares(0.0, 0.0, 1.0), seed=2), "opt")
    source = snapshots.with_columns((pl.col("user_id") + "~opt").alias("user_id"))
    joined = out.join(source, on=["user_id", "network", "window_days"], suffix="_src")
    # an augmented value is either the source's or unknown, never a new number
    for column in ("followers", "received_like", "unique_engagers"):
        kept = joined.filter(pl.col(column).is_not_null())
        assert (kept[column] == kept[f"{column}_src"]).all()


def test_augmentation_is_deterministic_and_order_free(snapshots):
    shares = AugmentShares()
    a = augment_snapshots(snapshots, shares, seed=7)
    b = augment_snapshots(snapshots.sample(fraction=1.0, shuffle=True, seed=3), shares, seed=7)
    assert a.sort(a.columns).equals(b.sort(b.columns))
    assert a.select(source_user(pl.col("user_id"))).to_series().str.contains("~").sum() == 0


def _toy_featurize(frame: pl.DataFrame) -> pl.DataFrame:
    """Three features: one rises with engagement, one is a mean (falls with low-influence
    engagers), one is unrelated."""
    return (
        frame.filter(pl.col("window_days") == 30)
        .group_by(["user_id", "as_of"], maintain_order=True)
        .agg(
            pl.col("unique_engagers").sum().alias("engagers"),
            pl.col("engager_influence").mean().alias("mean_influence"),
            pl.col("followers").sum().alias("followers"),
        )
    )


def test_audit_finds_directions_and_means_are_dropped():
    audit = audit_directions(
        _toy_featurize, ["engagers", "mean_influence", "followers"], n_probes=200, seed=1
    )
    assert audit.directions["engagers"] is Direction.UP
    assert audit.directions["mean_influence"] is Direction.MIXED
    assert "low_influence_engagers" in audit.culprits["mean_influence"]
    assert audit.directions["followers"] is Direction.NONE
    resolved = resolve_constraints({"engagers": 0, "mean_influence": 1, "followers": 0}, audit)
    assert resolved.monotone == {"engagers": 1, "followers": 0}
    assert "mean_influence" in resolved.dropped


def test_a_declared_direction_that_contradicts_the_audit_is_dropped():
    audit = audit_directions(_toy_featurize, ["engagers"], n_probes=50, seed=2)
    assert "engagers" in resolve_constraints({"engagers": -1}, audit).dropped


def test_probe_snapshots_are_varied():
    probes = random_snapshots(300, seed=0)
    sizes = np.array([len(p.networks) for p in probes])
    assert sizes.min() == 1 and sizes.max() >= 4
