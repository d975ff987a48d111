"""Explanations add up: points per network and per family sum to score - baseline."""

from __future__ import annotations

import numpy as np
import pytest
from training_synth import features_frame, tiny_bundle

from training.explain import CROSS_NETWORK, NOT_LINKED, contributions_to_points


@pytest.fixture(scope="module")
def bundle():
    return tiny_bundle()


def test_points_add_up_to_score_minus_baseline(bundle):
    frame = features_frame(500, seed=3)
    explanations = bundle.explain(frame)
    scores = bundle.score(frame)["score"].to_numpy()
    for e, score in zip(explanations, scores, strict=True):
        assert e.score == pytest.approx(score, abs=1e-9)
        assert abs(sum(e.networks.values()) - (e.score - e.baseline)) <= 0.5
        assert abs(sum(e.families.values()) - (e.score - e.baseline)) <= 0.5
        assert abs(sum(e.networks.values()) - (e.score - e.baseline)) < 1e-6


def test_unlinked_networks_get_their_own_bucket(bundle):
    frame = features_frame(200, seed=4)
    has_instagram = frame["instagram__days_linked"].is_not_null().to_list()
    for e, linked in zip(bundle.explain(frame), has_instagram, strict=True):
        assert ("instagram" in e.networks) == linked
        assert NOT_LINKED in e.networks and CROSS_NETWORK in e.networks
        if linked:
            assert e.networks[NOT_LINKED] == 0.0


def test_top_factors_are_sorted_and_described(bundle):
    e = bundle.explain(features_frame(5, seed=5), top_k=3)[0]
    assert 1 <= len(e.factors) <= 3
    points = [abs(f.points) for f in e.factors]
    assert points == sorted(points, reverse=True)
    assert all(f.meaning for f in e.factors)


def test_points_at_the_baseline_use_the_slope(bundle):
    contrib = np.array([[0.0, 0.0, bundle.calibrator.reference_mean_raw]])
    points, score, baseline = contributions_to_points(contrib, bundle.calibrator)
    assert score[0] == baseline[0] and np.all(points == 0)


def test_cross_network_points_are_shared_by_engagement():
    from training.explain import network_points, network_shares

    points = np.array([[1.0, 2.0, 6.0], [1.0, 2.0, 6.0]])
    networks = ["twitter", "instagram", CROSS_NETWORK]
    linked = np.array([[True, True], [True, False]])
    shares = network_shares(np.array([[30.0, 10.0], [np.nan, 50.0]]), linked)
    np.testing.assert_allclose(shares, [[0.75, 0.25], [1.0, 0.0]])
    labels, sums = network_points(
        points, points, networks, network_order=["twitter", "instagram"], linked=linked, shares=shares
    )
    assert labels == ["twitter", "instagram", CROSS_NETWORK, NOT_LINKED]
    np.testing.assert_allclose(sums[0], [1 + 4.5, 2 + 1.5, 0, 0])
    np.testing.assert_allclose(sums[1], [1 + 6, np.nan, 0, 2])


def test_bundle_network_points_match_explanations(bundle):
    frame = features_frame(50, seed=8)
    labels, sums, baseline = bundle.network_points(frame)
    for i, e in enumerate(bundle.explain(frame)):
        for label, value in e.networks.items():
            assert np.nan_to_num(sums[i, labels.index(label)]) == pytest.approx(value)
        assert baseline[i] == pytest.approx(e.baseline)
