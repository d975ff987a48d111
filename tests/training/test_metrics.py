"""Ranking metrics on hand-made rankings."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    ndcg_at_k,
    pairwise_accuracy,
    ranking_metrics,
    score_movement,
    spearman,
)

RNG = np.random.default_rng(0)
OUTCOME = RNG.lognormal(0, 1.5, 2_000)


def test_perfect_and_reversed_rankings():
    assert spearman(OUTCOME, OUTCOME) == pytest.approx(1)
    assert spearman(-OUTCOME, OUTCOME) == pytest.approx(-1)
    assert pairwise_accuracy(OUTCOME, OUTCOME) == 1.0
    assert pairwise_accuracy(-OUTCOME, OUTCOME) == 0.0
    assert ndcg_at_k(OUTCOME, OUTCOME, 100) == pytest.approx(1)
    assert ndcg_at_k(-OUTCOME, OUTCOME, 100) < 0.1


def test_a_constant_score_earns_chance_or_nothing():
    constant = np.ones_like(OUTCOME)
    assert spearman(constant, OUTCOME) == 0.0
    assert pairwise_accuracy(constant, OUTCOME) == 0.5
    assert ndcg_at_k(constant, OUTCOME, 100) < 0.1  # ties broken against the model


def test_random_scores_are_near_chance():
    noise = RNG.normal(size=OUTCOME.size)
    assert abs(pairwise_accuracy(noise, OUTCOME) - 0.5) < 0.01
    assert abs(spearman(noise, OUTCOME)) < 0.06


def test_pairs_are_seeded():
    noisy = OUTCOME + RNG.normal(0, 1, OUTCOME.size)
    assert pairwise_accuracy(noisy, OUTCOME, seed=1) == pairwise_accuracy(noisy, OUTCOME, seed=1)


def test_ndcg_refuses_negative_gains():
    with pytest.raises(ValueError):
        ndcg_at_k(OUTCOME, -OUTCOME)


def test_metric_names_and_latent_nans():
    latent = OUTCOME.copy()
    latent[:10] = np.nan
    names = set(ranking_metrics(OUTCOME, OUTCOME, latent))
    assert names == {"spearman_outcome", "pairwise_accuracy", "ndcg_100", "spearman_latent"}
    assert ranking_metrics(OUTCOME, OUTCOME, latent)["spearman_latent"] == pytest.approx(1)


def test_score_movement():
    before = np.arange(1_000, dtype=float)
    moved = score_movement(before, before + np.where(np.arange(1_000) < 5, 10.0, 0.5))
    assert moved["stability_median_abs_delta"] == 0.5
    assert moved["stability_max_abs_delta"] == 10.0
