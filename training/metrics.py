"""Ranking metrics shared by the model and its baselines (pure numpy; ties handled explicitly)."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def spearman(score: np.ndarray, target: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); 0 when either side is constant."""
    score, target = np.asarray(score, float), np.asarray(target, float)
    if score.size < 2 or np.ptp(score) == 0 or np.ptp(target) == 0:
        return 0.0
    return float(spearmanr(score, target).statistic)


def pairwise_accuracy(
    score: np.ndarray, target: np.ndarray, n_pairs: int = 200_000, seed: int = 42
) -> float:
    """Share of random user pairs (seeded) that the score orders like the target. Pairs tied on
    the target are skipped; pairs tied on the score count half."""
    score, target = np.asarray(score, float), np.asarray(target, float)
    n = score.size
    if n < 2:
        return 0.5
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    j = rng.integers(0, n - 1, n_pairs)
    j = np.where(j >= i, j + 1, j)
    truth = np.sign(target[i] - target[j])
    keep = truth != 0
    if not keep.any():
        return 0.5
    guess = np.sign(score[i] - score[j])[keep]
    truth = truth[keep]
    return float(np.mean(np.where(guess == 0, 0.5, guess == truth)))


def ndcg_at_k(score: np.ndarray, gain: np.ndarray, k: int = 100) -> float:
    """NDCG@k with the given non-negative gains, log2 discount; score ties broken against the
    model (the lower gain first), so a constant score earns no credit from lucky ordering."""
    score, gain = np.asarray(score, float), np.asarray(gain, float)
    if np.any(gain < 0):
        raise ValueError("gains must be non-negative")
    k = min(k, score.size)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.sort(gain)[::-1][:k] @ discount
    if ideal == 0:
        return 0.0
    order = np.lexsort((gain, -score))[:k]
    return float(gain[order] @ discount / ideal)


def ranking_metrics(
    score: np.ndarray,
    outcome: np.ndarray,
    latent: np.ndarray | None = None,
    *,
    n_pairs: int = 200_000,
    seed: int = 42,
    k: int = 100,
) -> dict[str, float]:
    """The four metric names every model and baseline reports."""
    out = {
        "spearman_outcome": spearman(score, outcome),
        "pairwise_accuracy": pairwise_accuracy(score, outcome, n_pairs, seed),
        "ndcg_100" if k == 100 else f"ndcg_{k}": ndcg_at_k(score, outcome, k),
    }
    if latent is not None:
        known = ~np.isnan(np.asarray(latent, float))
        out["spearman_latent"] = spearman(np.asarray(score)[known], np.asarray(latent)[known])
    return out


def score_movement(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    """How far the same users' scores move between two models (absolute points)."""
    delta = np.abs(np.asarray(after, float) - np.asarray(before, float))
    return {
        "stability_median_abs_delta": float(np.median(delta)),
        "stability_p99_abs_delta": float(np.quantile(delta, 0.99)),
        "stability_max_abs_delta": float(delta.max()),
    }
