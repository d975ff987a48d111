"""Each signal family of the snapshot builder on the hand-built world of `worldkit`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from worldkit import ALICE, BOB, BOT, CAROL, DAVE, T, day, hit, signal_world

from features.build import build_snapshots, read_sources
from features.engine import PolarsEngine
from features.graph import weighted_pagerank
from features.snapshot import SIGNAL_COLUMNS, Snapshots

WINDOWS = (7, 30, 90)


def snapshots_of(world, root: Path, as_of: date = T, **options) -> pl.DataFrame:
    engine = PolarsEngine()
    world.write(root)
    frame = build_snapshots(
        read_sources(engine, root, as_of, WINDOWS, 3),
        as_of,
        windows=WINDOWS,
        materialize=engine.materialize,
        **options,
    )
    return Snapshots.validate(engine.to_polars(frame))


def row(frame: pl.DataFrame, user: int, network: str, window: int) -> dict:
    rows = frame.filter(
        pl.col("user_id") == str(user),
        pl.col("network") == network,
        pl.col("window_days") == window,
    ).to_dicts()
    assert len(rows) == 1, f"expected one row for {user}/{network}/{window}, got {len(rows)}"
    return rows[0]


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory) -> pl.DataFrame:
    return snapshots_of(signal_world(), tmp_path_factory.mktemp("signal_world"))


def test_one_row_per_linked_account_and_window(snapshots):
    keys = snapshots.select("user_id", "network").unique()
    # 5 twitter accounts + Alice's facebook; Bob's facebook was linked at T, so not yet
    assert keys.height == 6
    assert snapshots.height == 6 * len(WINDOWS)
    assert snapshots.columns == ["user_id", "as_of", "network", "window_days", *SIGNAL_COLUMNS]


def test_audience_levels_and_growth_use_only_profiles_before_t(snapshots):
    for window, growth in ((7, 50.0), (30, 200.0), (90, 400.0)):
        r = row(snapshots, ALICE, "twitter", window)
        assert (r["followers"], r["following"], r["lists"]) == (500.0, 10.0, 7.0)
        assert r["follower_growth"] == growth
    assert row(snapshots, ALICE, "facebook", 30)["lists"] is None
    # no profile at the start of Bob's windows: growth unknown, not zero
    assert row(snapshots, BOB, "twitter", 30)["follower_growth"] is None


def test_activity_posts_media_and_active_days(snapshots):
    expected = {7: (1, 1, 2), 30: (2, 1, 3), 90: (3, 1, 4)}
    for window, (posts, media, active) in expected.items():
        r = row(snapshots, ALICE, "twitter", window)
        assert (r["posts"], r["posts_with_media"], r["active_days"]) == (posts, media, active)


def test_account_age_and_days_linked(snapshots):
    r = row(snapshots, ALICE, "facebook", 7)
    assert r["account_age_days"] == (T - date(2025, 1, 1)).days
    assert r["days_linked"] == (T - date(2026, 3, 1)).days


def test_reactions_received_per_action_and_null_off_network(snapshots):
    r7, r90 = row(snapshots, ALICE, "twitter", 7), row(snapshots, ALICE, "twitter", 90)
    assert (r7["received_like"], r7["received_retweet"], r7["received_reply"]) == (3, 1, 0)
    assert (r90["received_like"], r90["received_reply"], r90["received_mention"]) == (3, 1, 1)
    assert r7["received_quote"] == 0.0  # on twitter, nobody quoted: zero
    assert r7["received_comment"] is None  # not a twitter action: null
    assert row(snapshots, ALICE, "facebook", 7)["received_retweet"] is None


def test_unique_engagers_count_people_not_reactions(snapshots):
    r7, r30 = row(snapshots, ALICE, "twitter", 7), row(snapshots, ALICE, "twitter", 30)
    # Carol liked and retweeted: one person, counted once overall and once per family
    assert r7["unique_engagers"] == 3
    assert (r7["unique_engagers_approval"], r7["unique_engagers_amplification"]) == (3, 1)
    assert r30["unique_engagers"] == 4 and r30["unique_engagers_conversation"] == 1


def test_selectivity_weight_is_one_over_the_actors_reactions_that_day(snapshots):
    # Bob 1 (his only reaction that day) + Carol 2 x 1/2 + the bot 1/4 (four likes that day)
    assert row(snapshots, ALICE, "twitter", 7)["selective_reactions"] == pytest.approx(2.25)
    assert row(snapshots, ALICE, "twitter", 30)["selective_reactions"] == pytest.approx(3.25)
    assert row(snapshots, ALICE, "twitter", 90)["selective_reactions"] == pytest.approx(4.25)


def test_sent_conversations_and_reciprocity(snapshots):
    r7, r30 = row(snapshots, ALICE, "twitter", 7), row(snapshots, ALICE, "twitter", 30)
    assert r7["sent_reply"] == 1 and r7["sent_like"] == 0
    assert row(snapshots, BOT, "twitter", 7)["sent_like"] == 4
    assert r7["conversations_started"] == 0 and r30["conversations_started"] == 1
    # Alice answered Bob (one of her 3 engagers in 7 days, of 4 in 30)
    assert r7["reciprocity"] == pytest.approx(1 / 3)
    assert r30["reciprocity"] == pytest.approx(1 / 4)
    assert row(snapshots, BOT, "twitter", 7)["reciprocity"] is None  # no engagers: undefined
    assert row(snapshots, BOT, "twitter", 7)["engager_influence"] is None


def test_pagerank_has_mean_one_per_network(snapshots):
    means = snapshots.group_by("network", "window_days").agg(pl.col("pagerank").mean())
    assert np.allclose(means["pagerank"].to_numpy(), 1.0)
    assert (
        row(snapshots, ALICE, "twitter", 7)["pagerank"]
        > row(snapshots, BOT, "twitter", 7)["pagerank"]
    )


def test_engager_influence_is_the_mean_percentile_of_the_engagers(snapshots):
    cross = (
        snapshots.filter(pl.col("window_days") == 7)
        .group_by("user_id")
        .agg(pl.col("cross_network_pagerank").first())
    )
    ranks = cross.with_columns(
        pct=100 * (pl.col("cross_network_pagerank").rank("average") - 1) / (pl.len() - 1)
    )
    pct = dict(zip(ranks["user_id"], ranks["pct"]))
    expected = np.mean([pct[str(u)] for u in (BOB, CAROL, BOT)])
    assert row(snapshots, ALICE, "twitter", 7)["engager_influence"] == pytest.approx(expected)


def test_reactions_per_post_signal_ranks_few_posts_above_many(tmp_path):
    """100 reactions on 10 posts beat 100 reactions on 100 posts (featurize's ratio)."""
    from features.featurize import featurize

    base = signal_world()
    world = base.with_posts(
        *(
            {**p, "post_id": 9000 + i, "user_id": DAVE, "date": day(-2)}
            for i, p in enumerate([base.posts[0]] * 90)
        )
    )
    frame = featurize(snapshots_of(world, tmp_path))
    per_post = dict(zip(frame["user_id"], frame["twitter__reactions_per_post__7d"]))
    assert per_post[str(DAVE)] < per_post[str(ALICE)]


def test_pagerank_on_a_four_node_graph_matches_the_linear_solution():
    edges = pl.DataFrame(
        {
            "graph": [0] * 5,
            "src": [1, 1, 2, 3, 4],
            "dst": [2, 3, 3, 1, 3],
            "weight": [1.0, 3.0, 1.0, 2.0, 1.0],
        }
    )
    nodes = pl.DataFrame({"graph": [0], "node": [1]})
    import narwhals as nw

    ranks = (
        weighted_pagerank(
            nw.from_native(edges.lazy()),
            nw.from_native(nodes.lazy()),
            damping=0.85,
            iterations=200,
            materialize=PolarsEngine().materialize,
        )
        .to_native()
        .collect()
        .sort("node")
    )
    # Known answer: r = (1-d)/N + d * M r, M column-stochastic from the weights (no dangling)
    n, d = 4, 0.85
    m = np.zeros((n, n))
    for s, t, w in [(1, 2, 1.0), (1, 3, 3.0), (2, 3, 1.0), (3, 1, 2.0), (4, 3, 1.0)]:
        m[t - 1, s - 1] = w
    m /= m.sum(axis=0)
    expected = np.linalg.solve(np.eye(n) - d * m, np.full(n, (1 - d) / n))
    assert ranks["rank"].to_numpy() == pytest.approx(expected, rel=1e-9)
    assert ranks["rank"].sum() == pytest.approx(1.0)
    assert ranks["n_nodes"].to_list() == [4.0] * 4


def test_pagerank_spreads_the_mass_of_dangling_nodes():
    import narwhals as nw

    edges = pl.DataFrame({"graph": [0, 0], "src": [1, 2], "dst": [2, 3], "weight": [1.0, 1.0]})
    nodes = pl.DataFrame({"graph": [0], "node": [4]})  # isolated, ranked anyway
    ranks = (
        weighted_pagerank(
            nw.from_native(edges.lazy()),
            nw.from_native(nodes.lazy()),
            damping=0.85,
            iterations=300,
            materialize=PolarsEngine().materialize,
        )
        .to_native()
        .collect()
        .sort("node")
    )
    n, d = 4, 0.85
    m = np.zeros((n, n))
    m[1, 0] = m[2, 1] = 1.0
    m[:, 2] = m[:, 3] = 1 / n  # dangling nodes 3 and 4 spread uniformly
    expected = np.linalg.solve(np.eye(n) - d * m, np.full(n, (1 - d) / n))
    assert ranks["rank"].to_numpy() == pytest.approx(expected, rel=1e-9)


def test_interactions_on_unlinked_or_unknown_accounts_do_not_make_rows(tmp_path):
    world = signal_world().with_interactions(hit(day(-2), BOB, 77, "like", None))
    frame = snapshots_of(world, tmp_path)
    assert "77" not in frame["user_id"].to_list()


def test_batch_snapshots_score_the_same_through_the_http_schema(snapshots):
    """One score, two paths: a batch-built snapshot sent as JSON gives the same features."""
    from features.featurize import featurize_matrix
    from features.snapshot import SignalSnapshot, frame_to_snapshots, snapshots_to_arrays

    sent = [
        SignalSnapshot.model_validate_json(s.model_dump_json())
        for s in frame_to_snapshots(snapshots)
    ]
    batch = featurize_matrix(snapshots)
    http = featurize_matrix(snapshots_to_arrays(sent))
    assert sorted(batch.user_id) == sorted(http.user_id)
    order = [http.user_id.index(u) for u in batch.user_id]
    np.testing.assert_array_equal(batch.values, http.values[order])
