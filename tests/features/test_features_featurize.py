"""featurize: >= 400 signals matching the catalog and the Features schema, nulls kept, fast."""

from __future__ import annotations

import json
import math

import numpy as np
import pandera.errors
import polars as pl
import pytest
from typer.testing import CliRunner

from features.feature_schema import Features, validate_features
from features.featurize import (
    ALL,
    DEFAULT_WINDOWS,
    catalog_frame,
    feature_names,
    featurize,
    featurize_matrix,
    signal_catalog,
)
from features.snapshot import SignalSnapshot, snapshots_to_arrays, snapshots_to_frame
from influence.cli import app
from influence.vocabulary import FAMILIES, NETWORKS

EXAMPLE = {
    "user_id": "alice",
    "as_of": "2026-11-25",
    "networks": {
        "twitter": {
            "window_days": 30,
            "followers": 1200,
            "following": 300,
            "lists": 12,
            "account_age_days": 400,
            "posts": 90,
            "posts_with_media": 20,
            "received": {"like": 800, "retweet": 120, "reply": 40, "mention": 60},
            "sent": {"retweet": 10, "reply": 30, "mention": 20},
            "unique_engagers": 350,
            "engager_influence": 42.5,
        },
        "linkedin": {"window_days": 30, "followers": 500, "received": {"recommendation": 3}},
    },
}


def snapshot(**twitter) -> SignalSnapshot:
    return SignalSnapshot.model_validate({"networks": {"twitter": {"window_days": 30, **twitter}}})


def features_of(*snapshots: SignalSnapshot) -> list[dict]:
    return featurize(snapshots_to_frame(list(snapshots))).to_dicts()


def test_at_least_400_signals_named_like_the_catalog():
    catalog = signal_catalog()
    names = [s.name for s in catalog]
    assert len(names) >= 400 and len(set(names)) == len(names)
    frame = featurize(snapshots_to_frame([SignalSnapshot.model_validate(EXAMPLE)]))
    assert frame.columns == ["user_id", "as_of", *names]
    assert frame.height == 1
    validate_features(frame)
    Features.validate(frame)  # the full pandera model, not only the block-wise fast path


def test_catalog_covers_every_network_family_and_window():
    catalog = catalog_frame()
    assert set(catalog["network"]) == {*NETWORKS, ALL}
    assert {str(f) for f in FAMILIES} <= set(catalog["family"])
    assert set(catalog["window_days"].drop_nulls()) == set(DEFAULT_WINDOWS)
    assert set(catalog["monotone"]) == {0, 1}
    assert catalog["meaning"].str.len_chars().min() > 10


def test_monotone_signals_are_the_engagement_ones():
    monotone = {s.name for s in signal_catalog() if s.monotone == 1}
    for name in (
        "twitter__log_received_like__30d",
        "all__log_unique_engagers__7d",
        "linkedin__engager_influence__90d",
        "all__n_linked_networks",
        "all__n_active_networks__30d",
        "twitter__linked",
    ):
        assert name in monotone
    for name in (
        "twitter__log_followers",
        "twitter__log_sent_like__30d",
        "all__reactions_per_engager__30d",
        "twitter__media_share__7d",
    ):
        assert name not in monotone


def test_missing_networks_and_fields_stay_null():
    (row,) = features_of(snapshot(followers=100))
    assert row["twitter__log_followers"] == pytest.approx(math.log1p(100))
    assert row["twitter__log_posts__30d"] is None
    assert row["facebook__log_followers"] is None
    assert row["facebook__linked"] == 0.0 and row["twitter__linked"] == 1.0
    assert row["all__n_linked_networks"] == 1.0
    assert row["all__log_received__30d"] is None  # nothing said about reactions: unknown
    assert row["all__media_share__30d"] is None


def test_undefined_ratios_are_null_not_zero():
    (row,) = features_of(snapshot(posts=0, posts_with_media=0, received={"like": 0}))
    assert row["twitter__media_share__30d"] is None
    assert row["twitter__selective_share__30d"] is None
    assert row["twitter__log_received__30d"] == 0.0


def test_reactions_per_post_and_unique_engagers_order_as_the_product_says():
    few_posts, many_posts = features_of(
        snapshot(posts=10, received={"retweet": 100}),
        snapshot(posts=1000, received={"retweet": 100}),
    )
    key = "twitter__reactions_per_post__30d"
    assert few_posts[key] > many_posts[key]
    many_people, one_person = features_of(
        snapshot(received={"retweet": 100}, unique_engagers=100),
        snapshot(received={"retweet": 100}, unique_engagers=1),
    )
    assert (
        many_people["twitter__log_unique_engagers__30d"]
        > one_person["twitter__log_unique_engagers__30d"]
    )


def test_cross_network_family_sums_maxima_and_counts():
    s = SignalSnapshot.model_validate(
        {
            "networks": {
                "twitter": {"window_days": 30, "received": {"retweet": 10, "quote": 5, "like": 1}},
                "facebook": {"window_days": 30, "received": {"share": 20}},
                "instagram": {"window_days": 30, "received": {"like": 3}},
            }
        }
    )
    (row,) = features_of(s)
    assert row["all__log_amplification_received__30d"] == pytest.approx(math.log1p(35))
    assert row["all__log_amplification_received_max__30d"] == pytest.approx(math.log1p(20))
    assert row["all__n_networks_amplification__30d"] == 2
    assert row["all__n_networks_approval__30d"] == 2
    assert row["twitter__log_amplification_received__30d"] == pytest.approx(math.log1p(15))
    assert row["all__log_received__7d"] == pytest.approx(math.log1p(39 * 7 / 30))


def test_matrix_and_frame_paths_agree_and_keep_order():
    snapshots = [SignalSnapshot.model_validate(EXAMPLE), snapshot(posts=3), snapshot(followers=9)]
    matrix = featurize_matrix(snapshots_to_arrays(snapshots))
    frame = featurize(snapshots_to_frame(snapshots))
    assert matrix.user_id == frame["user_id"].to_list() == ["alice", "#1", "#2"]
    values = frame.select(matrix.names).fill_null(np.nan).to_numpy()
    np.testing.assert_array_equal(values, matrix.values)


def test_a_big_batch_gives_each_user_the_features_of_a_request_alone():
    """Big batches take other code paths (per-network action totals, blocks of users, a grid
    laid out networks-first) than a request's few rows: the numbers must be the same bits."""
    rng = np.random.default_rng(7)
    networks = {
        "twitter": ("like", "retweet", "reply", "mention", "quote", "list_add"),
        "facebook": ("like", "comment", "share", "mention"),
        "instagram": ("like", "comment", "save", "mention"),
        "linkedin": ("like", "comment", "recommendation", "endorsement"),
    }
    snapshots = []
    for i in range(300):
        chosen = [n for n in networks if rng.random() < 0.6] or ["twitter"]
        payload = {}
        for n in chosen:
            kept = [a for a in networks[n] if rng.random() < 0.7]
            counts = {a: float(np.round(rng.gamma(1.0, 40.0), 3)) for a in kept}
            payload[n] = {
                "window_days": int(rng.choice([7, 14, 30, 90])),
                "followers": int(rng.integers(0, 50_000)),
                "posts": int(rng.integers(0, 200)),
                "posts_with_media": int(rng.integers(0, 50)),
                "received": counts,
                "sent": {a: float(rng.integers(0, 30)) for a in networks[n][:2]},
                "unique_engagers": int(rng.integers(0, 3000)),
                "engager_influence": float(np.round(rng.uniform(0, 100), 2)),
            }
        body = {"user_id": f"u{i}", "as_of": "2026-11-25", "networks": payload}
        snapshots.append(SignalSnapshot.model_validate(body))
    batch = featurize_matrix(snapshots_to_arrays(snapshots))
    alone = np.vstack([featurize_matrix(snapshots_to_arrays([s])).values for s in snapshots])
    np.testing.assert_array_equal(batch.values, alone)


def test_a_feature_table_failure_names_the_column():
    frame = featurize(snapshots_to_frame([SignalSnapshot.model_validate(EXAMPLE)]))
    column = "twitter__log_posts__7d"
    for broken in (
        frame.with_columns(pl.lit(math.inf).alias(column)),
        frame.with_columns(pl.lit(1e6).alias(column)),
        frame.with_columns(pl.col(column).cast(pl.Int64)),
        frame.drop(column),
    ):
        with pytest.raises(pandera.errors.SchemaError, match=column):
            validate_features(broken)
    with pytest.raises(pandera.errors.SchemaError, match="surplus"):
        validate_features(frame.with_columns(surplus=pl.lit(1.0)))


def test_repeated_rows_are_refused():
    frame = snapshots_to_frame([snapshot(posts=1)])
    with pytest.raises(ValueError, match="repeat"):
        featurize(pl.concat([frame, frame]))


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_signals_command_prints_the_catalog(fmt, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("features:\n  windows: [7, 30, 90]\n")
    result = CliRunner().invoke(app, ["signals", "--format", fmt, "--params", str(params)])
    assert result.exit_code == 0, result.output
    names = feature_names()
    if fmt == "csv":
        printed = pl.read_csv(result.output.encode())
        assert printed["name"].to_list() == names
    elif fmt == "json":
        assert [s["name"] for s in json.loads(result.output)] == names
    else:
        assert f"{len(names)} signals" in result.output
    out = tmp_path / f"catalog.{fmt}"
    args = ["signals", "--format", fmt, "--out", str(out), "--params", str(params)]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert out.stat().st_size > 1000
