"""Why a score is what it is: points per network, per signal family and per signal.

LightGBM's `pred_contrib` (TreeSHAP) splits a raw output into a base value phi_0 (the model's
expected output over its training data) plus one contribution per feature. The score is a
non-linear map of the raw output, so each contribution is scaled by the same factor, the secant
slope of the calibration between phi_0 and the user's raw output:

    points_j = phi_j * (score(raw) - score(phi_0)) / (raw - phi_0)

and the points add up exactly to score(raw) - baseline, with baseline = score(phi_0), the score of
the model's average user (the derivative replaces the secant when raw == phi_0).

Grouping rule: a feature of one network counts for that network; a cross-network feature (totals
over networks, number of linked networks, cross-network PageRank) gets its own bucket,
`CROSS_NETWORK`, because splitting it across networks would invent an attribution the model does
not make. A network the user has not linked (all its features unknown) can still move the score
through those missing values (the average user has some networks the user lacks); those points go
to the bucket `NOT_LINKED` rather than to a network the user never gave us. Families come from the
signal catalog.

`pred_contrib` costs about a millisecond per row: it runs only when an explanation is asked for,
never on the bulk scoring path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from training.calibrate import Calibrator

CROSS_NETWORK = "cross_network"
NOT_LINKED = "not_linked"
_SECANT_EPS = 1e-9


@dataclass(frozen=True)
class Factor:
    """One signal behind a score."""

    name: str
    meaning: str
    network: str
    family: str
    value: float | None
    points: float


@dataclass(frozen=True)
class Explanation:
    """A score split into points that add up to `score - baseline`."""

    user_id: str
    as_of: object
    score: float
    baseline: float
    networks: dict[str, float]
    families: dict[str, float]
    factors: list[Factor] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "user_id": self.user_id,
            "as_of": None if self.as_of is None else str(self.as_of),
            "score": self.score,
            "baseline": self.baseline,
            "networks": self.networks,
            "families": self.families,
            "factors": [f.__dict__ for f in self.factors],
        }


def contributions_to_points(
    contrib: np.ndarray, calibrator: Calibrator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points per feature [n, p], score [n], baseline [n]) from a pred_contrib matrix [n, p+1]
    whose last column is phi_0."""
    contrib = np.asarray(contrib, dtype=np.float64)
    phi = contrib[:, :-1]
    base_raw = contrib[:, -1]
    raw = phi.sum(axis=1) + base_raw
    score = calibrator.score(raw)
    baseline = calibrator.score(base_raw)
    delta_raw = raw - base_raw
    close = np.abs(delta_raw) < _SECANT_EPS
    secant = np.where(
        close, calibrator.slope(base_raw), (score - baseline) / np.where(close, 1.0, delta_raw)
    )
    return phi * secant[:, None], score, baseline


def group_sums(points: np.ndarray, groups: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sum the columns of `points` [n, p] by group label: (labels, sums [n, g])."""
    labels = sorted(set(groups))
    index = {label: i for i, label in enumerate(labels)}
    member = np.zeros((len(groups), len(labels)))
    member[np.arange(len(groups)), [index[g] for g in groups]] = 1.0
    return labels, points @ member


def network_points(
    points: np.ndarray, values: np.ndarray, networks: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """Points per network bucket [n, g]; NaN for a network the row has not linked (all of its
    features unknown), whose points are summed under `NOT_LINKED` instead."""
    labels, sums = group_sums(points, networks)
    labels = [*labels, NOT_LINKED]
    sums = np.column_stack([sums, np.zeros(len(points))])
    networks = np.asarray(networks)
    for k, label in enumerate(labels[:-1]):
        if label == CROSS_NETWORK:
            continue
        unlinked = np.isnan(values[:, networks == label]).all(axis=1)
        sums[unlinked, -1] += sums[unlinked, k]
        sums[unlinked, k] = np.nan
    return labels, sums


def build_explanations(
    *,
    user_ids: Sequence[str],
    as_ofs: Sequence[object],
    points: np.ndarray,
    score: np.ndarray,
    baseline: np.ndarray,
    values: np.ndarray,
    feature_names: Sequence[str],
    networks: Sequence[str],
    families: Sequence[str],
    meanings: Sequence[str],
    top_k: int = 5,
) -> list[Explanation]:
    """One `Explanation` per row (see the module docstring for the grouping rule)."""
    net_labels, net_sums = network_points(points, values, networks)
    fam_labels, fam_sums = group_sums(points, families)
    out = []
    for i, user_id in enumerate(user_ids):
        order = np.argsort(-np.abs(points[i]), kind="stable")[:top_k]
        factors = [
            Factor(
                name=feature_names[j],
                meaning=meanings[j],
                network=networks[j],
                family=families[j],
                value=None if np.isnan(values[i, j]) else float(values[i, j]),
                points=float(points[i, j]),
            )
            for j in order
            if points[i, j] != 0.0
        ]
        by_network = {
            label: float(net_sums[i, k])
            for k, label in enumerate(net_labels)
            if label not in (NOT_LINKED, CROSS_NETWORK) and not np.isnan(net_sums[i, k])
        }
        for label in (CROSS_NETWORK, NOT_LINKED):
            if label in net_labels:
                by_network[label] = float(np.nan_to_num(net_sums[i, net_labels.index(label)]))
        out.append(
            Explanation(
                user_id=str(user_id),
                as_of=as_ofs[i],
                score=float(score[i]),
                baseline=float(baseline[i]),
                networks=by_network,
                families={label: float(fam_sums[i, k]) for k, label in enumerate(fam_labels)},
                factors=factors,
            )
        )
    return out
