"""The bundle: plain files, a bit-identical round trip, a vectorised scorer."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from training_synth import features_frame, tiny_bundle

from training.bundle import BUNDLE_FILE, CALIBRATOR_FILE, MODEL_FILE, ModelBundle


@pytest.fixture(scope="module")
def bundle():
    return tiny_bundle()


def test_round_trip_scores_are_bit_identical(bundle, tmp_path):
    bundle.save(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        [MODEL_FILE, CALIBRATOR_FILE, BUNDLE_FILE]
    )
    back = ModelBundle.load(tmp_path / "b")
    frame = features_frame(2_000, seed=9)
    assert back.score(frame).equals(bundle.score(frame))
    assert back.version == bundle.version and back.catalog == bundle.catalog
    assert back.provisional == bundle.provisional


def test_score_frame_shape_and_ranges(bundle):
    frame = features_frame(1_000, seed=2)
    scored = bundle.score(frame)
    assert scored.columns == ["user_id", "as_of", "raw", "score", "percentile", "provisional"]
    assert scored["user_id"].to_list() == frame["user_id"].to_list()
    assert scored["score"].min() >= 1 and scored["score"].max() <= 100
    assert scored["percentile"].min() >= 0 and scored["percentile"].max() <= 100
    assert scored["as_of"].dtype == pl.Date and scored["as_of"][0] == date(2026, 10, 1)


def test_extra_columns_are_ignored_and_order_does_not_matter(bundle):
    frame = features_frame(300, seed=6)
    shuffled = frame.select(reversed(frame.columns)).with_columns(pl.lit(1).alias("extra"))
    assert shuffled.pipe(bundle.score).equals(bundle.score(frame))


def test_missing_feature_is_a_clear_error(bundle):
    with pytest.raises(KeyError, match="twitter__followers"):
        bundle.score(features_frame(10).drop("twitter__followers"))


def test_unknown_values_score(bundle):
    frame = features_frame(10).with_columns(
        pl.lit(None, pl.Float64).alias(c) for c in bundle.feature_names
    )
    scores = bundle.score(frame)["score"].to_numpy()
    assert np.isfinite(scores).all() and (scores >= 1).all()


def test_provisional_rule(bundle):
    frame = features_frame(4).with_columns(
        pl.Series("twitter__days_linked", [400.0, 9.0, 400.0, None]),
        pl.Series("instagram__days_linked", [None, None, 12.0, None]),
    )
    assert bundle.score(frame)["provisional"].to_list() == [False, True, True, False]


def test_scoring_is_fast(bundle):
    import time

    frame = features_frame(50_000, seed=1)
    started = time.perf_counter()
    bundle.score(frame)
    assert time.perf_counter() - started < 2.0
