"""Why a score is what it is: points per network, per signal family and per signal.

LightGBM's `pred_contrib` (TreeSHAP) splits a raw output into a base value phi_0 (the model's
expected output over its training data) plus one contribution per feature. The score is a
non-linear map of the raw output, so each contribution is scaled by the same factor, the secant
slope of the calibration between phi_0 and the user's raw output:

    points_j = phi_j * (score(raw) - score(phi_0)) / (raw - phi_0)

and the points add up exactly to score(raw) - baseline, with baseline = score(phi_0), the score of
the model's average user (the derivative replaces the secant when raw == phi_0).

Grouping rule (networks):
- a feature of one network counts for that network;
- a cross-network feature (totals over networks, number of linked networks, cross-network
  PageRank) is shared among the user's linked networks in proportion to each network's
  engagement (`network_shares`: distinct engagers, else reactions received, else equal shares):
  a user with one network gets all of it, and a user whose engagement comes from Instagram sees
  the cross-network reach credited to Instagram. Only when no share can be given (no linked
  network known) do those points stay in the bucket `CROSS_NETWORK`;
- a network the user has not linked can still move the score through its missing values (the
  average user has networks this user lacks): those points go to the bucket `NOT_LINKED`, never
  to a network the user did not give us.
Families come from the signal catalog. `Factor.network` is the feature's own network
(`CROSS_NETWORK` for a cross-network feature).

`pred_contrib` costs about a millisecond per row: it runs only when an explanation is asked for,
never on the bulk scoring path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from influence.vocabulary import NETWORKS
from training.calibrate import Calibrator

CROSS_NETWORK = "cross_network"
NOT_LINKED = "not_linked"
NEW_ACCOUNT = "new_account"
"""Bucket (network and family) of the points a young account's score is held back by
(`training.bundle.ProvisionalRule`); present only when non-zero."""
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
    points: np.ndarray,
    values: np.ndarray,
    networks: Sequence[str],
    *,
    network_order: Sequence[str] = NETWORKS,
    linked: np.ndarray | None = None,
    shares: np.ndarray | None = None,
) -> tuple[list[str], np.ndarray]:
    """Points per bucket [n, len(network_order) + 2]: each network of `network_order` (NaN
    where not linked), then `CROSS_NETWORK`, then `NOT_LINKED` (see the grouping rule).
    `linked` and `shares` are [n, len(network_order)]; by default a network is linked when one
    of its features in `values` is known, and cross-network points are shared equally.
    `ModelBundle.network_points` gives the engagement-weighted shares of explanations."""
    if linked is None:
        kinds = np.asarray(networks)
        linked = np.column_stack(
            [(~np.isnan(values[:, kinds == n])).any(axis=1) for n in network_order]
        )
    if shares is None:
        shares = network_shares(np.full(linked.shape, np.nan), linked)
    labels, sums = group_sums(points, networks)
    by_label = {label: sums[:, k] for k, label in enumerate(labels)}
    zero = np.zeros(len(points))
    own = np.column_stack([by_label.get(n, zero) for n in network_order])
    cross = by_label.get(CROSS_NETWORK, zero)
    unlinked = np.where(linked, 0.0, own).sum(axis=1)
    shared = shares * cross[:, None]
    remainder = np.where(shares.sum(axis=1) > 0, 0.0, cross)
    per_network = np.where(linked, own + shared, np.nan)
    return [*network_order, CROSS_NETWORK, NOT_LINKED], np.column_stack(
        [per_network, remainder, unlinked]
    )


def network_shares(engagement: np.ndarray, linked: np.ndarray) -> np.ndarray:
    """[n, N] shares of the linked networks in proportion to `engagement` (NaN = unknown);
    equal shares when no linked network has known positive engagement."""
    weights = np.where(linked, np.nan_to_num(engagement, nan=0.0).clip(min=0.0), 0.0)
    total = weights.sum(axis=1, keepdims=True)
    equal = linked / np.maximum(linked.sum(axis=1, keepdims=True), 1)
    return np.where(total > 0, weights / np.where(total > 0, total, 1.0), equal)


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
    network_order: Sequence[str],
    linked: np.ndarray,
    shares: np.ndarray,
    adjustment: np.ndarray | None = None,
    top_k: int = 5,
) -> list[Explanation]:
    """One `Explanation` per row (see the module docstring for the grouping rule)."""
    net_labels, net_sums = network_points(
        points, values, networks, network_order=network_order, linked=linked, shares=shares
    )
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
        by_family = {label: float(fam_sums[i, k]) for k, label in enumerate(fam_labels)}
        held_back = 0.0 if adjustment is None else float(adjustment[i])
        if held_back:
            by_network[NEW_ACCOUNT] = by_family[NEW_ACCOUNT] = held_back
        out.append(
            Explanation(
                user_id=str(user_id),
                as_of=as_ofs[i],
                score=float(score[i]) + held_back,
                baseline=float(baseline[i]),
                networks=by_network,
                families=by_family,
                factors=factors,
            )
        )
    return out
