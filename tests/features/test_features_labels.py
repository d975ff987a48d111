"""Outcome labels: distinct, selective engagers and reactions per post, not raw volume."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from worldkit import T, World, account, day, hit, post

from features.engine import PolarsEngine
from features.labels import outcome_labels, read_label_sources, training_as_of_dates

STAR, PODDED, PROLIFIC = 1, 2, 3
FANS = range(100, 200)


def label_rows(world: World, root, **knobs) -> dict[str, dict]:
    engine = PolarsEngine()
    world.write(root)
    frame = engine.to_polars(
        outcome_labels(read_label_sources(engine, root, T, 30), T, horizon_days=30, **knobs)
    )
    return {r["user_id"]: r for r in frame.to_dicts()}


def base_world() -> World:
    users = [STAR, PODDED, PROLIFIC, *FANS]
    return World(accounts=[account(u, "twitter") for u in users])


def test_a_hundred_people_beat_one_person_giving_a_hundred(tmp_path):
    world = base_world().with_posts(
        post(1, STAR, "twitter", day(0)), post(2, PODDED, "twitter", day(0))
    )
    world = world.with_interactions(
        *(hit(day(1), fan, STAR, "retweet", 1) for fan in FANS),
        *(hit(day(1 + k % 20), 100, PODDED, "retweet", 2) for k in range(100)),
    )
    rows = label_rows(world, tmp_path)
    assert rows[str(STAR)]["label_reactions"] == rows[str(PODDED)]["label_reactions"] == 100
    assert rows[str(STAR)]["label_engagers"] == 100 and rows[str(PODDED)]["label_engagers"] == 1
    assert rows[str(STAR)]["label"] > 10 * rows[str(PODDED)]["label"]


def test_reactions_from_selective_people_count_more(tmp_path):
    world = base_world().with_posts(
        post(1, STAR, "twitter", day(0)),
        post(2, PODDED, "twitter", day(0)),
        *(post(10 + i, PROLIFIC, "twitter", day(0)) for i in range(39)),
    )
    selective = [hit(day(1), fan, STAR, "like", 1) for fan in FANS[:10]]
    # ten indiscriminate people who each like 40 posts that day, one of them PODDED's
    spray = [hit(day(1), fan, PODDED, "like", 2) for fan in FANS[10:20]]
    spray += [hit(day(1), fan, PROLIFIC, "like", 10 + i) for fan in FANS[10:20] for i in range(39)]
    rows = label_rows(world.with_interactions(*selective, *spray), tmp_path)
    assert rows[str(STAR)]["label_engagers"] == rows[str(PODDED)]["label_engagers"] == 10
    assert rows[str(STAR)]["label"] == pytest.approx(10 / 2**0.5)  # 10 votes / sqrt(1 + 1 post)
    assert rows[str(PODDED)]["label"] == pytest.approx(10 / 40 / 2**0.5)


def test_reactions_per_post_with_diminishing_returns(tmp_path):
    few = [post(i, STAR, "twitter", day(0)) for i in range(1, 4)]
    many = [post(100 + i, PODDED, "twitter", day(0)) for i in range(99)]
    hits = [hit(day(2), fan, STAR, "like", 1) for fan in FANS[:50]]
    hits += [hit(day(2), fan, PODDED, "like", 100) for fan in FANS[50:]]
    rows = label_rows(base_world().with_posts(*few, *many).with_interactions(*hits), tmp_path)
    assert rows[str(STAR)]["label"] == pytest.approx(50 / 4**0.5)
    assert rows[str(PODDED)]["label"] == pytest.approx(50 / 100**0.5)
    no_discount = label_rows(
        base_world().with_posts(*few, *many).with_interactions(*hits),
        tmp_path / "b",
        post_exponent=0.0,
    )
    assert no_discount[str(STAR)]["label"] == no_discount[str(PODDED)]["label"] == 50


def test_repeat_exponent_values_repeated_reactions_sublinearly(tmp_path):
    hits = [hit(day(k), 100, STAR, "like", None) for k in range(16)]  # one a day: selectivity 1
    world = base_world().with_interactions(*(h | {"action": "mention"} for h in hits))
    rows = label_rows(world, tmp_path, repeat_exponent=0.25)
    assert rows[str(STAR)]["label"] == pytest.approx(16**0.25)  # no posts: divided by 1
    assert rows[str(PROLIFIC)]["label"] == 0.0  # linked, nobody reacted: a real zero


def test_only_networks_linked_before_t_count(tmp_path):
    world = base_world()
    world = World([*world.accounts, account(STAR, "facebook", linked=T + timedelta(days=3))])
    world = world.with_posts(post(1, STAR, "facebook", day(0)))
    rows = label_rows(
        world.with_interactions(hit(day(1), 100, STAR, "like", 1, network="facebook")), tmp_path
    )
    assert rows[str(STAR)]["label"] == 0.0 and rows[str(STAR)]["label_posts"] == 0


def test_training_dates_are_weekly_and_end_a_horizon_before_the_data():
    dates = training_as_of_dates(date(2026, 11, 2), horizon_days=30, step_days=7, n_as_of=6)
    assert dates[-1] == date(2026, 10, 3) and len(dates) == 6
    assert all(b - a == timedelta(days=7) for a, b in pairwise(dates))
