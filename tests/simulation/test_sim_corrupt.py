"""Corrupt rows: the kinds a broken export has, counted in the truth, absent at share 0."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandera.polars as pa
import polars as pl
import pytest

from features.raw_schema import RAW_TABLES
from simulation.corrupt import KINDS, corrupt
from simulation.frames import schema_of

EXPORT = datetime(2026, 11, 2)


def _interactions(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "interaction_id": np.arange(n),
            "ts": [datetime(2026, 10, 1, 12)] * n,
            "network": ["twitter"] * n,
            "actor_id": np.arange(n) + 1_000,
            "target_id": np.arange(n) + 5_000,
            "action": ["like", "mention"] * (n // 2),
            "post_id": [7, None] * (n // 2),
        }
    ).cast(dict(schema_of("interactions")))


def test_every_kind_breaks_its_rows_and_keeps_the_dtypes():
    frame = _interactions(20_000)
    broken, counts = corrupt("interactions", frame, 0.02, np.random.default_rng(0), EXPORT)
    assert broken.schema == frame.schema
    assert set(counts) == set(KINDS["interactions"])
    assert broken.height == frame.height + counts["duplicate_id"]
    assert broken["interaction_id"].is_duplicated().sum() == 2 * counts["duplicate_id"]
    assert (broken["action"] == "poke").sum() == counts["unknown_action"]
    assert (broken["actor_id"] == broken["target_id"]).sum() == counts["self_interaction"]
    nulled = broken.filter((pl.col("action") == "like") & pl.col("post_id").is_null()).height
    assert nulled == counts["null_post_on_post_action"]
    assert broken.filter(pl.col("ts") > EXPORT).height == counts["future_ts"]


def test_zero_share_changes_nothing():
    frame = _interactions(1_000)
    same, counts = corrupt("interactions", frame, 0.0, np.random.default_rng(0), EXPORT)
    assert counts == {} and same.equals(frame)


@pytest.fixture(scope="module")
def dirty_world(small_cfg, write_at, tmp_path_factory):
    cfg = small_cfg.model_copy(update={"corrupt_share": 0.01, "days": 15})
    return write_at(cfg, tmp_path_factory.mktemp("dirty"))


def test_a_dirty_world_is_counted_in_the_truth(dirty_world):
    truth = dirty_world.truth_table("corruption")
    assert set(truth["table"]) == {"interactions", "posts", "profiles"}
    assert truth["rows"].sum() == sum(dirty_world.summary.corrupted.values())
    interactions = dirty_world.read("interactions")
    assert (interactions["action"] == "poke").sum() == truth.filter(
        pl.col("kind") == "unknown_action"
    )["rows"].sum()
    with pytest.raises(pa.errors.SchemaErrors):
        RAW_TABLES["interactions"].validate(interactions, lazy=True)
