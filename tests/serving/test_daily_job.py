"""The daily scoring job on real (small) bundles: rows written, idempotent re-runs, no change
without a signal change, model changes kept in the history, backfill, compare-models."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.snapshot import snapshots_to_frame
from serving.daily import (
    SmoothingRule,
    backfill,
    compare_models,
    days_in,
    model_scores,
    score_day,
)
from serving.history import POINT_BUCKETS, HistoryStore
from serving.samples import random_snapshots, stand_in_bundle
from training.bundle import ModelBundle

DAY = date(2026, 10, 1)
RULE = SmoothingRule()
USERS = 300


@pytest.fixture(scope="module")
def champion() -> ModelBundle:
    return stand_in_bundle(n=1500, seed=0, trees=30)


@pytest.fixture(scope="module")
def challenger() -> ModelBundle:
    return stand_in_bundle(n=1500, seed=1, trees=30)


@pytest.fixture(scope="module")
def snapshots() -> pl.DataFrame:
    """A day's long snapshot table of USERS users (as_of set by `on`)."""
    return snapshots_to_frame(random_snapshots(USERS, seed=7))


def on(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    return frame.with_columns(pl.lit(day).alias("as_of"))


def constant(frame: pl.DataFrame):
    """A builder whose users' signals never change (only the date does)."""
    return lambda day: on(frame, day)


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "scores.duckdb")


def _run(day, build, bundle, store, **kwargs):
    return score_day(day, build=build, bundle=bundle, store=store, rule=RULE, **kwargs)


def test_a_day_writes_one_row_per_user_with_the_models_view(champion, snapshots, store):
    report = _run(DAY, constant(snapshots), champion, store)
    rows = store.day(DAY)
    assert report.users == rows.height == USERS
    assert rows["user_id"].n_unique() == USERS
    assert rows["model_version"].unique().to_list() == [champion.version]
    # first day: nothing to smooth on, the published score is the model's
    assert (rows["score"] == rows["raw_score"].round(2)).all()
    assert rows["score"].is_between(1, 100).all() and rows["percentile"].is_between(0, 100).all()
    # points per network add up to the model's score minus the baseline
    baseline = store.runs()["baseline"].item()
    total = rows.select(pl.sum_horizontal(pl.col("points").struct.field(b) for b in POINT_BUCKETS))
    assert (total.to_series() + baseline - rows["raw_score"]).abs().max() < 0.01
    # the model scores equal the bundle's own on the same features (the one scoring path)
    from features.featurize import featurize

    expected = champion.score(featurize(on(snapshots, DAY))).sort("user_id")
    assert rows["raw_score"].to_list() == pytest.approx(expected["score"].to_list(), abs=1e-9)


def test_re_running_a_day_replaces_it_with_the_same_rows(champion, snapshots, store):
    build = constant(snapshots)
    _run(DAY - timedelta(days=1), build, champion, store)
    _run(DAY, build, champion, store)
    first = store.day(DAY).drop("written_at")
    _run(DAY, build, champion, store)
    _run(DAY, build, champion, store)
    assert_frame_equal(store.day(DAY).drop("written_at"), first)
    assert store.days() == [DAY - timedelta(days=1), DAY]
    assert store.user_history(first["user_id"][0], 30).height == 2


def test_unchanged_signals_publish_exactly_yesterdays_score(champion, snapshots, store):
    changed_users = snapshots["user_id"].unique().sort()[:50].to_list()
    day1 = on(snapshots, DAY)
    # day 2: 50 users get many more likes, the others' signals stay as they were
    day2 = on(snapshots, DAY + timedelta(days=1)).with_columns(
        pl.when(pl.col("user_id").is_in(changed_users))
        .then(pl.col("received_like").fill_null(0) * 3 + 500)
        .otherwise(pl.col("received_like"))
        .alias("received_like")
    )
    frames = {DAY: day1, DAY + timedelta(days=1): day2}
    _run(DAY, frames.__getitem__, champion, store)
    _run(DAY + timedelta(days=1), frames.__getitem__, champion, store)
    before = store.day(DAY).select("user_id", pl.col("score").alias("before"))
    after = store.day(DAY + timedelta(days=1)).join(before, on="user_id")
    still = after.filter(~pl.col("user_id").is_in(changed_users))
    assert still.height == USERS - 50
    assert (still["score"] == still["before"]).all()
    moved = after.filter(pl.col("user_id").is_in(changed_users))
    assert (moved["score"] != moved["before"]).sum() > 0


def test_a_model_change_is_kept_day_by_day(champion, challenger, snapshots, store):
    build = constant(snapshots)
    _run(DAY, build, champion, store)
    _run(DAY + timedelta(days=1), build, challenger, store)
    runs = store.runs()
    assert runs["model_version"].to_list() == [champion.version, challenger.version]
    user = snapshots["user_id"][0]
    assert store.user_history(user, 30)["model_version"].to_list() == [
        champion.version, challenger.version
    ]


def test_backfill_scores_every_day_in_order(champion, snapshots, store):
    seen = []
    days = days_in(DAY, DAY + timedelta(days=2))
    reports = backfill(
        reversed(days), on_day=seen.append, build=constant(snapshots), bundle=champion, store=store,
        rule=RULE, points="last",
    )
    assert [r.day for r in reports] == [r.day for r in seen] == days
    assert store.days() == days
    assert reports[1].changed == reports[2].changed == 0  # nothing changed: nothing published
    # per-network points on the last day only (the lookup shows the latest day's)
    assert store.day(DAY)["points"].struct.field("cross_network").null_count() == USERS
    assert store.day(days[-1])["points"].struct.field("cross_network").null_count() == 0
    with pytest.raises(ValueError, match="before"):
        days_in(DAY, DAY - timedelta(days=1))


def test_model_scores_time_their_parts(champion, snapshots):
    scores = model_scores(champion, on(snapshots, DAY), points=False)
    assert scores.frame.height == USERS
    assert set(scores.seconds) == {"arrays", "parts", "featurize", "score", "fingerprint", "frame"}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="compiled trees need a C compiler")
def test_parts_on_two_workers_with_compiled_trees_score_as_one_lightgbm_pass(champion, snapshots):
    """The batch path's speed-ups change no number: users cut into parts on two workers,
    predicted by the compiled trees, give the frame of one LightGBM pass over the whole day,
    per-network points included."""
    compiled = champion.with_compiled_trees()
    assert compiled.compiled_trees is not None
    day = on(snapshots, DAY)
    whole = model_scores(champion, day, num_threads=1, part_users=10**6)
    parts = model_scores(compiled, day, num_threads=2, part_users=64)
    assert_frame_equal(parts.frame, whole.frame)
    assert parts.baseline == whole.baseline


def test_compare_models_reports_the_moves_of_two_real_bundles(champion, challenger, snapshots):
    report = compare_models(on(snapshots, DAY), champion, challenger)
    assert report["users"] == USERS
    assert report["as_of"] == DAY.isoformat()
    assert (report["champion_version"], report["challenger_version"]) == (
        champion.version, challenger.version
    )
    assert report["delta"]["max_abs"] > 0
    assert 0 <= report["delta"]["median_abs"] <= report["delta"]["p90_abs"] <= report["delta"]["p99_abs"]
    assert report["biggest_movers"][0]["delta"] != 0
    json.dumps(report)  # what `influence compare-models` writes

    same = compare_models(on(snapshots, DAY), champion, champion)
    assert same["delta"]["max_abs"] == 0 and same["within_bounds"] is True
    assert same["share_moved_more_than"] == {"1": 0.0, "5": 0.0}


def test_stored_points_are_the_services_explanation_split(champion):
    """Young accounts included: the history's points per network equal the explanation's
    (cross-network points shared by engagement, the young account's hold-back as `new_account`)
    and add up to the model's score minus the baseline."""
    from dataclasses import replace

    from features.featurize import feature_names, featurize
    from training.train import provisional_rule

    champion = replace(champion, provisional=provisional_rule(feature_names(), 30, 20.0))
    young = [
        s.model_copy(update={"networks": {
            n: w.model_copy(update={"account_age_days": 9.0, "days_linked": 9.0})
            for n, w in s.networks.items()}})
        for s in random_snapshots(40, seed=11)
    ]
    frame = on(snapshots_to_frame([*young, *random_snapshots(40, seed=12)]), DAY)
    scored = model_scores(champion, frame).frame.sort("user_id")
    explanations = {e.user_id: e for e in champion.explain(featurize(frame))}
    assert scored["provisional"].sum() >= 40
    held_back = 0
    for row in scored.iter_rows(named=True):
        explanation = explanations[row["user_id"]]
        stored = {k: v for k, v in row["points"].items() if v is not None}
        assert set(stored) == {*explanation.networks, "new_account"}  # explained when not 0
        for bucket, points in stored.items():
            assert points == pytest.approx(explanation.networks.get(bucket, 0.0), abs=1e-3), bucket
        assert sum(stored.values()) + explanation.baseline == pytest.approx(row["raw_score"], abs=0.01)
        held_back += stored["new_account"] < 0
    assert held_back > 0
