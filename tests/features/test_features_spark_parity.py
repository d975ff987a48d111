"""Polars and Spark build the same tables from the same narwhals code (one Spark session)."""

from __future__ import annotations

import polars as pl
import pytest
from worldkit import T, random_world, signal_world

from features.build import build_snapshots, read_sources
from features.engine import PolarsEngine, SparkEngine
from features.featurize import featurize
from features.labels import outcome_labels, read_label_sources
from features.snapshot import SIGNAL_BY_NAME, Kind, validate_snapshots

pytestmark = pytest.mark.spark

COUNT_KINDS = (Kind.COUNT, Kind.DAYS)
KEYS = ["user_id", "as_of", "network", "window_days"]


@pytest.fixture(scope="session")
def spark_engine():
    pytest.importorskip("pyspark")
    engine = SparkEngine()
    yield engine
    engine.session.stop()


@pytest.fixture(scope="module", params=["signal_world", "random_world"])
def raw(request, tmp_path_factory):
    world = (
        signal_world()
        if request.param == "signal_world"
        else random_world(11, users=15, first=-95, last=35, per_day=24)
    )
    return world.write(tmp_path_factory.mktemp(request.param))


def snapshots(engine, raw) -> pl.DataFrame:
    frame = build_snapshots(
        read_sources(engine, raw, T, (7, 30, 90), 3),
        T,
        iterations=5,
        materialize=engine.materialize,
    )
    return validate_snapshots(engine.to_polars(frame)).sort(KEYS)


def labels(engine, raw) -> pl.DataFrame:
    frame = outcome_labels(read_label_sources(engine, raw, T, 30), T, horizon_days=30)
    return engine.to_polars(frame).sort("user_id")


def assert_same(left: pl.DataFrame, right: pl.DataFrame, exact: set[str]) -> None:
    assert left.columns == right.columns and left.height == right.height
    for column in left.columns:
        a, b = left[column], right[column]
        assert a.is_null().to_list() == b.is_null().to_list(), column
        if column in exact or not a.dtype.is_float():
            assert a.to_list() == b.to_list(), column
        else:
            x, y = a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy()
            scale = abs(x) + abs(y)
            assert (abs(x - y) <= 1e-9 * scale + 1e-300).all(), column


def test_snapshots_features_and_labels_match(spark_engine, raw):
    polars_engine = PolarsEngine()
    ours, theirs = snapshots(polars_engine, raw), snapshots(spark_engine, raw)
    counts = {n for n, s in SIGNAL_BY_NAME.items() if s.kind in COUNT_KINDS}
    counts -= {"selective_reactions"}  # a sum of fractions: float, compared to 1e-9
    counts |= {
        "followers",
        "following",
        "lists",
        "follower_growth",
        "account_age_days",
        "days_linked",
    }
    assert_same(ours, theirs, exact=counts)
    assert_same(featurize(ours), featurize(theirs), exact=set())
    assert_same(
        labels(polars_engine, raw),
        labels(spark_engine, raw),
        exact={"label_reactions", "label_engagers", "label_posts"},
    )
