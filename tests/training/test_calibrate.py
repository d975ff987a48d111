"""Calibration targets on synthetic reference populations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.calibrate import (
    CalibrationError,
    CalibrationTargets,
    Calibrator,
    calibration_report,
    fit_calibrator,
)


def _populations() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "normal": rng.normal(2, 1, 20_000),
        "log_lognormal": np.log1p(rng.lognormal(2, 1.5, 20_000)),
        "spike_at_zero": np.concatenate(
            [np.zeros(6_000), np.log1p(rng.lognormal(1, 2, 14_000))]
        ),
        "heavy_tail": rng.standard_t(3, 20_000),
    }


POPULATIONS = _populations()


@pytest.fixture(params=sorted(POPULATIONS))
def population(request) -> np.ndarray:
    return POPULATIONS[request.param]


def test_targets_hold_on_the_reference(population):
    report = calibration_report(fit_calibrator(population), population)
    assert abs(report["score_mean"] - 40) <= 1
    assert abs(report["score_p95"] - 63) <= 1
    assert 1 <= report["score_min"] and report["score_max"] <= 100
    assert report["score_share_90_plus"] <= 0.001


def test_map_is_monotone_and_bounded(population):
    calibrator = fit_calibrator(population)
    grid = np.linspace(population.min() - 10, population.max() + 10, 5_000)
    scores = calibrator.score(grid)
    assert np.all(np.diff(scores) >= 0)
    assert scores.min() >= 1 and scores.max() <= 100
    pct = calibrator.percentile(grid)
    assert np.all(np.diff(pct) >= 0) and pct.min() >= 0 and pct.max() <= 100


def test_each_point_costs_more_raw_above_the_knee(population):
    """Concave above the knee: the raw output needed for +1 point grows with the score."""
    calibrator = fit_calibrator(population)
    scores = np.arange(50, 96)
    raws = np.array([calibrator.raw_for_score(s) for s in scores])
    cost = np.diff(raws)
    assert np.all(np.diff(cost) > 0)
    assert cost[-1] >= 2 * cost[0]
    np.testing.assert_allclose(calibrator.score(raws), scores, atol=1e-9)


def test_percentile_matches_the_reference_ranks(population):
    calibrator = fit_calibrator(population)
    pct = calibrator.percentile(population)
    ranks = 100 * (np.argsort(np.argsort(population)) + 0.5) / population.size
    distinct = np.unique(population).size == population.size
    if distinct:
        assert np.abs(pct - ranks).max() < 0.2
    assert abs(np.median(pct) - 50) < 1


def test_json_round_trip_is_exact(population):
    calibrator = fit_calibrator(population)
    back = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    assert back == calibrator
    np.testing.assert_array_equal(back.score(population), calibrator.score(population))


def test_other_targets_are_met():
    raw = POPULATIONS["normal"]
    targets = CalibrationTargets(mean=30, p95=55, knee=45)
    report = calibration_report(fit_calibrator(raw, targets), raw)
    assert abs(report["score_mean"] - 30) < 0.01 and abs(report["score_p95"] - 55) < 0.01


def test_the_slope_is_the_derivative():
    raw = POPULATIONS["log_lognormal"]
    calibrator = fit_calibrator(raw)
    x = np.quantile(raw, [0.3, 0.6, 0.9, 0.99])
    numeric = (calibrator.score(x + 1e-6) - calibrator.score(x - 1e-6)) / 2e-6
    np.testing.assert_allclose(calibrator.slope(x), numeric, rtol=1e-5)


@pytest.mark.parametrize(
    "raw", [np.ones(1_000), np.array([1.0, 2.0]), np.array([np.nan] * 200)], ids=str
)
def test_degenerate_references_are_refused(raw):
    with pytest.raises(CalibrationError):
        fit_calibrator(raw)


def test_the_bottom_is_stretched_towards_the_floor():
    raw = POPULATIONS["log_lognormal"]
    calibrator = fit_calibrator(raw)
    assert calibrator.gamma > 0
    assert np.quantile(calibrator.score(raw), 0.01) == pytest.approx(10, abs=0.01)


def test_each_point_costs_more_raw_than_the_one_below():
    """Over the whole scale (convex bottom, straight middle, concave top)."""
    raw = POPULATIONS["log_lognormal"]
    calibrator = fit_calibrator(raw)
    scores = np.arange(2, 96)
    cost = np.diff([calibrator.raw_for_score(s) for s in scores])
    assert np.all(np.diff(cost) >= -1e-12)
