"""Monotone constraints that hold for snapshots, not only for single features.

The product promise is about snapshots: raising a received-reaction count, the unique engagers,
the engagers' influence or the selective reactions of a snapshot never lowers the score, and
engagement from low-influence people never hurts. LightGBM's constraints are per feature; one
snapshot signal feeds many features (per window, totals, rates). The promise holds when every
feature such a change moves is constrained in the direction it moves, and no feature moves both
ways. `audit_directions` finds each feature's direction empirically: it applies every monotone
change to random snapshots (the HTTP path: `SignalSnapshot` -> `snapshots_to_frame` ->
featurize) and records how each feature responds. `resolve_constraints` then gives:

- a feature that only rises under the changes: +1; only falls: -1;
- a feature that moves both ways, or appears/disappears (null <-> value): dropped from the model;
- a feature that the changes never move: the catalog's declared direction;
- a feature whose declared direction contradicts the audit: dropped.

Mean engager influence is the classic casualty: adding a low-influence engager lowers the mean,
so only the influence-weighted *sum* of engagers can carry engager quality under the promise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import polars as pl

from features.snapshot import NetworkSignals, SignalSnapshot, snapshots_to_frame
from influence.vocabulary import FAMILIES, NETWORKS, actions_of

Featurize = Callable[[pl.DataFrame], pl.DataFrame]
KEYS = ("user_id", "as_of")


class Direction(StrEnum):
    NONE = "none"
    UP = "up"
    DOWN = "down"
    MIXED = "mixed"


# --- random snapshots (probes) --------------------------------------------------------------


def _maybe(rng: np.random.Generator, value: float, p_known: float = 0.85) -> float | None:
    return float(value) if rng.random() < p_known else None


def random_network(rng: np.random.Generator, network: str) -> NetworkSignals:
    window = int(rng.choice([7, 30, 90, int(rng.integers(1, 120))]))
    scale = float(rng.lognormal(0, 1.5))
    posts = float(rng.poisson(scale * window / 3))
    received = {
        a: float(rng.poisson(scale * window * rng.lognormal(0, 1)))
        for a in actions_of(network)
        if rng.random() < 0.8
    }
    sent = {a: float(rng.poisson(window * rng.lognormal(-1, 1))) for a in actions_of(network) if rng.random() < 0.6}
    total = sum(received.values())
    engagers = float(np.floor(total * rng.uniform(0.05, 1.0)))
    followers = float(np.floor(rng.lognormal(5, 2.5)))
    fields = {
        "window_days": window,
        "followers": _maybe(rng, followers),
        "following": _maybe(rng, np.floor(rng.lognormal(5, 1.5))),
        "lists": _maybe(rng, np.floor(rng.lognormal(1, 2))) if network == "twitter" else None,
        "follower_growth": _maybe(rng, np.floor(rng.normal(0, 1) * followers * 0.05)),
        "posts": _maybe(rng, posts),
        "posts_with_media": _maybe(rng, np.floor(posts * rng.uniform())),
        "active_days": _maybe(rng, float(rng.integers(0, window + 1))),
        "account_age_days": _maybe(rng, float(rng.integers(0, 4000))),
        "days_linked": _maybe(rng, float(rng.integers(0, 2000))),
        "received": received,
        "sent": sent,
        "unique_engagers": _maybe(rng, engagers),
        "unique_engagers_by_family": {
            str(f): float(np.floor(engagers * rng.uniform())) for f in FAMILIES if rng.random() < 0.6
        },
        "selective_reactions": _maybe(rng, total * rng.uniform(0.05, 1.0)),
        "engager_influence": _maybe(rng, rng.uniform(0, 100)) if engagers > 0 else None,
        "pagerank": _maybe(rng, rng.lognormal(-0.5, 1.5)),
        "cross_network_pagerank": _maybe(rng, rng.lognormal(-0.5, 1.5)),
        "conversations_started": _maybe(rng, np.floor(posts * rng.uniform())),
        "reciprocity": _maybe(rng, rng.uniform()) if engagers > 0 else None,
    }
    return NetworkSignals.model_validate(fields)


def random_snapshots(n: int, seed: int) -> list[SignalSnapshot]:
    """Varied client snapshots: 1-8 networks, one window each, any field possibly missing."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(min(len(NETWORKS), 1 + rng.geometric(0.45) - 1))
        networks = rng.choice(NETWORKS, size=max(k, 1), replace=False)
        out.append(
            SignalSnapshot(
                user_id=f"probe{i}",
                networks={str(net): random_network(rng, str(net)) for net in networks},
            )
        )
    return out


# --- the monotone changes -------------------------------------------------------------------

Change = Callable[[NetworkSignals, np.random.Generator], NetworkSignals | None]


def _raise_received(action: str) -> Change:
    def change(s: NetworkSignals, rng: np.random.Generator) -> NetworkSignals | None:
        if action not in s.received:
            return None
        bump = float(rng.choice([1.0, np.ceil(s.received[action] * rng.uniform(0.01, 2)) + 1]))
        return s.model_copy(update={"received": {**s.received, action: s.received[action] + bump}})

    return change


def _raise_field(name: str, cap: float | None = None) -> Change:
    def change(s: NetworkSignals, rng: np.random.Generator) -> NetworkSignals | None:
        value = getattr(s, name)
        if value is None:
            return None
        bigger = value + float(rng.choice([1.0, np.ceil(value * rng.uniform(0.01, 2)) + 1]))
        return s.model_copy(update={name: min(bigger, cap) if cap is not None else bigger})

    return change


def _raise_family_engagers(family: str) -> Change:
    def change(s: NetworkSignals, rng: np.random.Generator) -> NetworkSignals | None:
        given = s.unique_engagers_by_family
        if family not in given:
            return None
        return s.model_copy(
            update={"unique_engagers_by_family": {**given, family: given[family] + 1 + float(rng.integers(0, 20))}}
        )

    return change


def _add_low_influence_engagers(s: NetworkSignals, rng: np.random.Generator) -> NetworkSignals | None:
    """k new engagers whose influence is below the current mean: the mean falls, the sum rises."""
    if s.unique_engagers is None or s.engager_influence is None:
        return None
    k = float(rng.integers(1, 50))
    newcomer = float(rng.uniform(0, s.engager_influence))
    total = s.unique_engagers * s.engager_influence + k * newcomer
    engagers = s.unique_engagers + k
    return s.model_copy(update={"unique_engagers": engagers, "engager_influence": total / engagers})


def monotone_changes() -> dict[str, tuple[str | None, Change]]:
    """name -> (network it applies to, or None for every network; the change)."""
    changes: dict[str, tuple[str | None, Change]] = {}
    for network in NETWORKS:
        for action in actions_of(network):
            changes[f"received_{action}@{network}"] = (network, _raise_received(action))
    changes["unique_engagers"] = (None, _raise_field("unique_engagers"))
    changes["engager_influence"] = (None, _raise_field("engager_influence", cap=100.0))
    changes["selective_reactions"] = (None, _raise_field("selective_reactions"))
    changes["low_influence_engagers"] = (None, _add_low_influence_engagers)
    for family in FAMILIES:
        changes[f"unique_engagers_{family}"] = (None, _raise_family_engagers(str(family)))
    return changes


def apply_change(
    snapshots: Sequence[SignalSnapshot], network: str | None, change: Change, seed: int
) -> tuple[list[SignalSnapshot], list[SignalSnapshot]]:
    """(before, after) pairs for every snapshot the change applies to (one network changed)."""
    rng = np.random.default_rng(seed)
    before, after = [], []
    for snap in snapshots:
        candidates = [n for n in snap.networks if network is None or n == network]
        if not candidates:
            continue
        target = candidates[int(rng.integers(len(candidates)))]
        changed = change(snap.windows_of(target)[0], rng)
        if changed is None:
            continue
        before.append(snap)
        after.append(snap.model_copy(update={"networks": {**snap.networks, target: changed}}))
    return before, after


# --- the audit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    directions: dict[str, Direction]
    """Per feature: how it responds to all monotone changes together."""
    culprits: dict[str, list[str]]
    """Per feature moving the wrong way or both ways: the changes that did it."""


def _direction(before: np.ndarray, after: np.ndarray) -> Direction:
    nan_b, nan_a = np.isnan(before), np.isnan(after)
    if np.any(nan_b != nan_a):
        return Direction.MIXED
    both = ~nan_b
    delta = after[both] - before[both]
    tol = 1e-9 * (1.0 + np.abs(before[both]))
    up, down = np.any(delta > tol), np.any(delta < -tol)
    if up and down:
        return Direction.MIXED
    return Direction.UP if up else Direction.DOWN if down else Direction.NONE


def _combine(a: Direction, b: Direction) -> Direction:
    if a is Direction.NONE:
        return b
    if b is Direction.NONE or a == b:
        return a
    return Direction.MIXED


def audit_directions(
    featurize: Featurize,
    feature_names: Sequence[str],
    *,
    n_probes: int = 300,
    seed: int = 0,
    windows: Sequence[int] = (7, 30, 90),
) -> Audit:
    """Apply every monotone change to `n_probes` random snapshots and record how each feature
    responds. All before/after snapshots go through featurize in one call."""
    probes = random_snapshots(n_probes, seed)
    tagged: list[SignalSnapshot] = []
    spans: dict[str, tuple[int, int]] = {}
    for i, (change_name, (network, change)) in enumerate(sorted(monotone_changes().items())):
        before, after = apply_change(probes, network, change, seed + 1 + i)
        start = len(tagged) // 2
        for j, (b, a) in enumerate(zip(before, after, strict=True)):
            tagged.append(b.model_copy(update={"user_id": f"{change_name}|{j}|b"}))
            tagged.append(a.model_copy(update={"user_id": f"{change_name}|{j}|a"}))
        spans[change_name] = (start, start + len(before))
    frame = featurize(snapshots_to_frame(tagged, windows))
    order = {uid: k for k, uid in enumerate(frame.get_column("user_id").to_list())}
    rows_b = np.array([order[s.user_id] for s in tagged[0::2]], dtype=np.int64)
    rows_a = np.array([order[s.user_id] for s in tagged[1::2]], dtype=np.int64)
    values = frame.select(pl.col(n).cast(pl.Float64) for n in feature_names).to_numpy()
    before_all, after_all = values[rows_b], values[rows_a]

    directions = {name: Direction.NONE for name in feature_names}
    per_change: dict[str, list[Direction]] = {}
    for change_name, (lo, hi) in spans.items():
        if hi == lo:
            continue
        per_change[change_name] = [
            _direction(before_all[lo:hi, f], after_all[lo:hi, f]) for f in range(len(feature_names))
        ]
        for f, name in enumerate(feature_names):
            directions[name] = _combine(directions[name], per_change[change_name][f])
    culprits = {
        name: sorted(c for c, ds in per_change.items() if ds[f] is not Direction.NONE)
        for f, name in enumerate(feature_names)
        if directions[name] is Direction.MIXED
    }
    return Audit(directions=directions, culprits=culprits)


@dataclass(frozen=True)
class Constraints:
    monotone: dict[str, int]
    """Constraint of every kept feature."""
    dropped: dict[str, str]
    """Feature -> why it cannot be in a model that keeps the promise."""


def resolve_constraints(declared: Mapping[str, int], audit: Audit) -> Constraints:
    monotone: dict[str, int] = {}
    dropped: dict[str, str] = {}
    for name, direction in audit.directions.items():
        want = int(declared.get(name, 0))
        if direction is Direction.MIXED:
            dropped[name] = "moves both ways under " + ", ".join(audit.culprits.get(name, [])[:4])
        elif direction is Direction.NONE:
            monotone[name] = want
        else:
            found = 1 if direction is Direction.UP else -1
            if want not in (0, found):
                dropped[name] = f"declared {want:+d} but rises/falls as {found:+d} with engagement"
            else:
                monotone[name] = found
    return Constraints(monotone=monotone, dropped=dropped)
