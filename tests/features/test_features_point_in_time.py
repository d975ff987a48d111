"""Point in time: features at T see only data before T; labels only [T, T + H)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from polars.testing import assert_frame_equal
from worldkit import (
    ALICE,
    BOB,
    CAROL,
    T,
    day,
    hit,
    post,
    profile,
    random_world,
    scrambled,
    signal_world,
)

from features.build import build_snapshots, read_sources
from features.engine import PolarsEngine
from features.featurize import featurize
from features.labels import outcome_labels, read_label_sources

H = 30


def snapshots_and_features(world, root):
    engine = PolarsEngine()
    world.write(root)
    frame = build_snapshots(
        read_sources(engine, root, T, (7, 30, 90), 3),
        T,
        iterations=10,
        materialize=engine.materialize,
    )
    snapshots = engine.to_polars(frame).sort(["user_id", "network", "window_days"])
    return snapshots, featurize(snapshots)


def labels(world, root, as_of=T):
    engine = PolarsEngine()
    world.write(root)
    return engine.to_polars(
        outcome_labels(read_label_sources(engine, root, as_of, H), as_of, horizon_days=H)
    ).sort("user_id")


def test_rows_at_or_after_t_change_no_snapshot_and_no_feature(tmp_path):
    base = signal_world()
    later = base.with_interactions(
        hit(day(0), BOB, ALICE, "retweet", 100),
        hit(day(0), CAROL, ALICE, "reply", 101),
        hit(day(3), BOB, ALICE, "like", 101),
        hit(day(45), CAROL, BOB, "mention"),
    ).with_posts(post(900, ALICE, "twitter", day(0), media=True), post(901, BOB, "twitter", day(2)))
    later = type(later)(
        later.accounts,
        [*later.profiles, profile(ALICE, "twitter", day(1), 5)],
        later.posts,
        later.interactions,
    )
    s0, f0 = snapshots_and_features(base, tmp_path / "base")
    s1, f1 = snapshots_and_features(later, tmp_path / "later")
    assert_frame_equal(s0, s1)
    assert_frame_equal(f0, f1)


@pytest.mark.parametrize("seed", [0, 1])
def test_scrambling_everything_from_t_on_changes_nothing_at_t(tmp_path, seed):
    world = random_world(seed)
    changed = scrambled(world, keep=lambda d: d < T, seed=seed + 10)
    assert changed.interactions != world.interactions
    s0, f0 = snapshots_and_features(world, tmp_path / "a")
    s1, f1 = snapshots_and_features(changed, tmp_path / "b")
    assert_frame_equal(s0, s1)
    assert_frame_equal(f0, f1)
    # and the check has teeth: scrambling the day before T does change the features
    before = scrambled(world, keep=lambda d: d != day(-1), seed=seed + 20)
    _, f2 = snapshots_and_features(before, tmp_path / "c")
    assert not f0.equals(f2)


def test_labels_see_only_the_horizon(tmp_path):
    world = random_world(3)
    inside = lambda d: T <= d < T + timedelta(days=H)
    outside_changed = scrambled(world, keep=inside, seed=5)
    l0 = labels(world, tmp_path / "a")
    l1 = labels(outside_changed, tmp_path / "b")
    assert_frame_equal(l0, l1)
    inside_changed = scrambled(world, keep=lambda d: not inside(d), seed=6)
    assert not l0.equals(labels(inside_changed, tmp_path / "c"))
