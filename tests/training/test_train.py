"""Training on a real (small) simulated world: smoke, determinism, calibration targets on the
reference, explanations that add up, a bit-identical round trip, the evaluation report."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import small_params

from training.bundle import ModelBundle
from training.calibrate import calibration_report
from training.evaluate import BASELINES, METRICS, evaluate_model
from training.train import TrainingData, default_featurize, train_model

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def few_rows(small_data) -> TrainingData:
    """A few hundred rows: 120 users over every as-of date."""
    users = small_data.rows.get_column("user_id").unique().sort().head(120)
    keep = pl.col("user_id").is_in(users.to_list())
    return TrainingData(
        rows=small_data.rows.filter(keep),
        snapshots=small_data.snapshots.filter(keep),
        reference=small_data.reference.filter(keep),
    )


def _tiny(**overrides):
    return small_params(n_estimators=30, monotone_probes=60, min_data_in_leaf=10, **overrides)


def test_smoke_training_on_a_few_hundred_rows(few_rows):
    bundle = train_model(few_rows, _tiny())
    assert few_rows.rows.height < 600
    scores = bundle.score(few_rows.rows).get_column("score").to_numpy()
    assert np.all((scores >= 1) & (scores <= 100))
    assert bundle.metadata["augmented_rows"] > 0
    assert any("engager_influence" in name for name in bundle.metadata["dropped_features"])
    constrained = {c.name: c.monotone for c in bundle.catalog}
    assert constrained["all__log_unique_engagers__30d"] == 1
    assert constrained["all__n_linked_networks"] == 1


def test_training_is_deterministic_for_a_seed(few_rows):
    first, second = train_model(few_rows, _tiny()), train_model(few_rows, _tiny())
    assert first.booster.model_to_string() == second.booster.model_to_string()
    assert first.version == second.version
    other = train_model(few_rows, _tiny(), seed=7)
    assert other.booster.model_to_string() != first.booster.model_to_string()


def test_calibration_targets_hold_on_the_reference(small_bundle, small_data):
    reference = default_featurize()(small_data.reference)
    report = calibration_report(small_bundle.calibrator, small_bundle.raw(reference))
    assert abs(report["score_mean"] - 40) <= 1
    assert abs(report["score_p95"] - 63) <= 1
    assert report["score_min"] >= 1 and report["score_max"] <= 100
    assert report["score_share_90_plus"] <= 0.001


def test_explanations_add_up_on_real_users(small_bundle, small_data):
    rows = small_data.rows.filter(pl.col("as_of") == pl.col("as_of").max()).head(300)
    for e in small_bundle.explain(rows):
        assert abs(sum(e.networks.values()) - (e.score - e.baseline)) <= 0.5
        assert abs(sum(e.families.values()) - (e.score - e.baseline)) <= 0.5
        assert e.factors


def test_round_trip_on_a_real_bundle_is_bit_identical(small_bundle, small_data, tmp_path):
    back = ModelBundle.load(small_bundle.save(tmp_path / "bundle"))
    assert back.score(small_data.rows).equals(small_bundle.score(small_data.rows))


def test_evaluation_reports_every_metric_for_model_and_baselines(small_bundle, small_data, small_world):
    metrics = evaluate_model(
        small_bundle, small_data, small_params(), truth_dir=small_world.truth, user_disjoint=False
    )
    expected = set(METRICS) | {f"baseline_{b}_{m}" for b in BASELINES for m in METRICS}
    expected |= {"score_mean", "score_p95", "score_max"}
    expected |= {"stability_median_abs_delta", "stability_p99_abs_delta"}
    assert expected <= set(metrics)
    assert all(np.isfinite(metrics[k]) for k in expected)
    assert metrics["spearman_latent"] > 0.3
