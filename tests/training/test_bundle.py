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


def test_young_accounts_are_held_back_and_explained(bundle):
    from dataclasses import replace

    from training.bundle import ProvisionalRule
    from training.explain import NEW_ACCOUNT

    rule = ProvisionalRule(days=30, account_age=("twitter__days_linked",), hold_back_score=20.0)
    held = replace(bundle, provisional=rule)
    frame = features_frame(400, seed=11)
    young = frame.with_columns(pl.lit(9.0).alias("twitter__days_linked"))
    free, kept = bundle.score(young), held.score(young)
    s = free["score"].to_numpy()
    expected = np.where(s > 20, 20 + (s - 20) * 0.3, s)
    np.testing.assert_allclose(kept["score"].to_numpy(), expected)
    assert kept["provisional"].all()
    # the order of users is kept, and percentiles follow the held-back scores
    order = np.argsort(s, kind="stable")
    assert np.all(np.diff(kept["score"].to_numpy()[order]) >= 0)
    assert np.all(kept["percentile"].to_numpy() <= free["percentile"].to_numpy() + 1e-9)
    for e, final in zip(held.explain(young), kept["score"].to_numpy(), strict=True):
        assert e.score == pytest.approx(final)
        assert abs(sum(e.networks.values()) - (e.score - e.baseline)) < 1e-6
        assert (NEW_ACCOUNT in e.networks) == (e.networks.get(NEW_ACCOUNT, 0) < 0)
    old = frame.with_columns(pl.lit(400.0).alias("twitter__days_linked"))
    assert held.score(old).equals(bundle.score(old).with_columns(provisional=pl.lit(False)))
