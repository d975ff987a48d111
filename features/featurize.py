"""Featurize: signal snapshots -> the model's feature table. One function, both paths.

`featurize(snapshots)` turns the long snapshot table (`features.snapshot.Snapshots`, or its
arrays) into one wide row per (user_id, as_of): logs and ratios per network and window, levels
per network, and per family across networks (sums, maxima, counts of networks where the user is
active). Missing networks and fields stay missing (NaN in the matrix, null in the frame):
nothing is imputed. The batch pipeline and the HTTP service both call it; serving takes the
matrix (`featurize_matrix`), batch the frame.

How it runs: per-network specs compute on the long rows themselves (one value per row: no work
for networks a user lacks); across-network specs on a dense grid values[user, network, window,
signal] of the few signals they read (NaN where absent; networks outermost in memory, so a
reduction across networks adds whole blocks), with the action totals of the rows laid on it.
Every *spec* below computes one quantity for all users, networks and windows in one vectorised
numpy operation, and a precomputed index picks the catalog's columns. Blocks of users bound the
memory; no per-row Python, no per-column frame overhead: ~0.45 ms for one user (Python calls),
~20 us a user in big batches.

The signal catalog (`signal_catalog()`) is expanded from the same specs that compute the values,
so names, meanings, families and monotone directions can never drift from the numbers.
Monotone +1 marks signals where more received reactions, unique engagers, engager influence or
linked networks must never lower the score (for LightGBM's monotone constraints); 0 otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from itertools import pairwise

import numpy as np
import polars as pl

from features.snapshot import SIGNAL_COLUMNS, SnapshotArrays
from influence.vocabulary import (
    ALL_ACTIONS,
    FAMILIES,
    NETWORKS,
    NETWORKS_WITH_LISTS,
    VOCABULARY,
    Family,
)

DEFAULT_WINDOWS: tuple[int, ...] = (7, 30, 90)
ALL = "all"
"""The `network` of signals computed across networks."""
KEY_COLUMNS = ("user_id", "as_of")
CHUNK_USERS = 4096
"""Users per block of the dense grid (bounds memory at ~50 MB whatever the batch size)."""

_S = {name: i for i, name in enumerate(SIGNAL_COLUMNS)}
_N, _A = len(NETWORKS), len(ALL_ACTIONS)
FAMILY_NAMES = tuple(str(f) for f in FAMILIES)


def _action_masks() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(network, action) masks: allowed, made on a post, and per family."""
    allowed = np.zeros((_N, _A), dtype=bool)
    on_post = np.zeros((_N, _A), dtype=bool)
    family = {f: np.zeros((_N, _A), dtype=bool) for f in FAMILY_NAMES}
    for n, network in enumerate(NETWORKS):
        for action in VOCABULARY[network]:
            a = ALL_ACTIONS.index(action.name)
            allowed[n, a] = True
            on_post[n, a] = action.on_post
            family[str(action.family)][n, a] = True
    return allowed, on_post, family


ALLOWED, ON_POST, FAMILY_MASK = _action_masks()
ACROSS_COLUMNS = (
    "followers",
    "following",
    "account_age_days",
    "days_linked",
    "pagerank",
    "cross_network_pagerank",
    "posts",
    "posts_with_media",
    "unique_engagers",
    "selective_reactions",
    "engager_influence",
    "follower_growth",
    "reciprocity",
    "conversations_started",
)
"""The snapshot signals the across-network specs sum or maximise (computed together)."""
_ACROSS = {name: i for i, name in enumerate(ACROSS_COLUMNS)}
GRID_COLUMNS = (
    *ACROSS_COLUMNS,
    "active_days",
    *(f"unique_engagers_{f}" for f in FAMILY_NAMES),
)
"""The snapshot signals laid on the dense grid of the across-network specs (ACROSS_COLUMNS
first): the others are read per long row only."""
_G = {name: i for i, name in enumerate(GRID_COLUMNS)}
_GRID_SIGNALS = np.array([_S[c] for c in GRID_COLUMNS])
RECEIVED_MASKS = np.stack([ALLOWED, ON_POST, *(FAMILY_MASK[f] for f in FAMILY_NAMES)]).astype(float)
SENT_MASKS = ALLOWED[None].astype(float)


# --- rows, grid and small numeric helpers -----------------------------------------------------


class _Signals:
    """Snapshot signals with a trailing signal axis (NaN = unknown), and the quantities several
    specs share (totals over actions, logs), computed once on first use."""

    values: np.ndarray
    index: dict[str, int] = _S
    """Signal name -> position on the trailing axis of `values`."""

    def __init__(self) -> None:
        self._memo: dict[str, np.ndarray] = {}

    def memo(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[..., self.index[name]]

    def log(self, name: str) -> np.ndarray:
        """log(1 + signal)."""
        return self.memo(f"log:{name}", lambda: log1p(self[name]))

    def _totals(self, prefix: str, masks: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @cached_property
    def _received(self) -> np.ndarray:
        return self._totals("received_", RECEIVED_MASKS)

    @property
    def received(self) -> np.ndarray:
        """Reactions received over the network's actions."""
        return self._received[0]

    @property
    def received_on_posts(self) -> np.ndarray:
        return self._received[1]

    def received_in(self, family: str) -> np.ndarray:
        return self._received[2 + FAMILY_NAMES.index(family)]

    @cached_property
    def sent(self) -> np.ndarray:
        return self._totals("sent_", SENT_MASKS)[0]


class Rows(_Signals):
    """The long rows themselves: values[r, s] of row r = (user, network[r], window_days[r]).
    Per-network specs run here: one value per row, no work for networks a user lacks."""

    def __init__(self, values: np.ndarray, network: np.ndarray, window_days: np.ndarray):
        super().__init__()
        self.values, self.network = values, network
        self.window_days = window_days.astype(float)
        self.linked = np.ones(len(values))

    def _totals(self, prefix: str, masks: np.ndarray) -> np.ndarray:
        """Sums of `<prefix><action>` over each mask's actions of the row's network: (M, R),
        unknown only where every summed action is unknown. A few rows (a request): one product
        with each row's masks; many: per network present, each mask's few actions summed
        directly (no (M, R, A) mask block, no BLAS threads). Both add the same terms in the
        same order (a network has fewer than 8 actions: numpy sums them one after the other)."""
        block = self.values[:, [_S[f"{prefix}{a}"] for a in ALL_ACTIONS]]
        known = ~np.isnan(block)
        filled = np.where(known, block, 0.0)
        if len(block) <= _FEW_ROWS:
            row_masks = masks[:, self.network, :]  # (M, R, A)
            total = np.einsum("ra,mra->mr", filled, row_masks)
            any_known = np.einsum("ra,mra->mr", known.astype(float), row_masks) > 0
            return np.where(any_known, total, np.nan)
        total = np.full((len(masks), len(block)), np.nan)
        for n in np.flatnonzero(np.bincount(self.network, minlength=_N)):
            at = np.flatnonzero(self.network == n) if len(block) > 1 else slice(None)
            network_filled, network_known = filled[at], known[at]
            for m, actions in enumerate(_mask_actions(masks, int(n))):
                if len(actions):
                    sums = network_filled[:, actions].sum(axis=1)
                    total[m, at] = np.where(network_known[:, actions].any(axis=1), sums, np.nan)
        return total


_FEW_ROWS = 64
"""Up to this many long rows, action totals take one einsum (Python overhead rules)."""
_MASK_ACTIONS: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}


def _mask_actions(masks: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Per mask, the action indices it holds on network n (cached for the module's masks,
    RECEIVED_MASKS and SENT_MASKS, which live as long as the module)."""
    key = (id(masks), n)
    if key not in _MASK_ACTIONS:
        if masks is not RECEIVED_MASKS and masks is not SENT_MASKS:
            return tuple(np.flatnonzero(m[n] > 0) for m in masks)
        _MASK_ACTIONS[key] = tuple(np.flatnonzero(m[n] > 0) for m in masks)
    return _MASK_ACTIONS[key]


class Grid(_Signals):
    """values[u, n, k, s]: signal GRID_COLUMNS[s] of user u on network n over window k;
    linked[u, n]: the user has that network in the snapshot. Specs across networks run here.

    The grid holds only the signals the across specs read; totals over actions (`received`,
    `sent`, per family) are those of the long rows (`rows`, one per cell `at` = (users,
    networks, windows)), laid on the grid: computed once for both scopes."""

    index = _G

    def __init__(
        self,
        values: np.ndarray,
        linked: np.ndarray,
        windows: tuple[int, ...],
        rows: Rows,
        at: tuple[np.ndarray, np.ndarray, np.ndarray],
    ):
        super().__init__()
        self.values, self.windows = values, windows
        self.linked = linked
        self.window_days = np.asarray(windows, dtype=float)
        self._rows, self._at = rows, at

    def _on_grid(self, per_row: np.ndarray) -> np.ndarray:
        """(M, R) values of the long rows -> (M, U, N, K), NaN where a user lacks the cell
        (networks outermost in memory, as the grid's values)."""
        users, networks, windows = self._at
        n_users, _, n_windows = self.values.shape[:3]
        out = np.full((len(per_row), _N, n_users, n_windows), np.nan)
        out[:, networks, users, windows] = per_row
        return out.transpose(0, 2, 1, 3)

    @cached_property
    def _received(self) -> np.ndarray:
        return self._on_grid(self._rows._received)

    @cached_property
    def sent(self) -> np.ndarray:
        return self._on_grid(self._rows.sent[None])[0]

    @cached_property
    def _across_block(self) -> np.ndarray:
        return self.values[..., : len(ACROSS_COLUMNS)]

    @cached_property
    def _across_all(self) -> np.ndarray:
        """The ACROSS_COLUMNS signals summed across networks at once: (U, K, C)."""
        return sum_known(self._across_block, axis=1)

    @cached_property
    def _best_all(self) -> np.ndarray:
        """The ACROSS_COLUMNS signals' maxima across networks at once: (U, K, C)."""
        return max_known(self._across_block, axis=1)

    def across(self, name: str) -> np.ndarray:
        """A snapshot signal (or `received`, `received_on_posts`, `sent`) summed across
        networks: (U, K)."""
        if name in ("received", "received_on_posts", "sent"):
            return self.memo(f"across:{name}", lambda: sum_known(getattr(self, name), axis=1))
        return self._across_all[..., _ACROSS[name]]

    def best(self, name: str) -> np.ndarray:
        """A snapshot signal's maximum across networks: (U, K)."""
        return self._best_all[..., _ACROSS[name]]

    @cached_property
    def _across_logs(self) -> np.ndarray:
        return log1p(self._across_all)

    @cached_property
    def _best_logs(self) -> np.ndarray:
        return log1p(self._best_all)

    def across_log(self, name: str) -> np.ndarray:
        """log(1 + the signal summed across networks): (U, K)."""
        if name in ("received", "received_on_posts", "sent"):
            return self.memo(f"across_log:{name}", lambda: log1p(self.across(name)))
        return self._across_logs[..., _ACROSS[name]]

    def best_log(self, name: str) -> np.ndarray:
        """log(1 + the signal's maximum across networks): (U, K)."""
        return self._best_logs[..., _ACROSS[name]]

    @cached_property
    def family_received(self) -> np.ndarray:
        """Reactions received per family: (F, U, N, K)."""
        return self._received[2:]

    @cached_property
    def family_engagers(self) -> np.ndarray:
        """Distinct engagers per family: (F, U, N, K)."""
        by_network = self.values.transpose(1, 0, 2, 3)  # (N, U, K, S): contiguous
        selected = by_network[..., [_G[f"unique_engagers_{f}"] for f in FAMILY_NAMES]]
        return selected.transpose(3, 1, 0, 2)

    def family_across(self, what: str, how: str, log: bool = False) -> np.ndarray:
        """(F, U, K): per family, summed / maximum / count of positive networks (or its log)."""
        if log:
            return self.memo(
                f"family:{what}:{how}:log", lambda: log1p(self.family_across(what, how))
            )
        source = self.family_received if what == "received" else self.family_engagers
        reduce = {"sum": sum_known, "max": max_known, "count": _count_positive}[how]
        return self.memo(f"family:{what}:{how}", lambda: reduce(source, axis=2))


def log1p(x: np.ndarray) -> np.ndarray:
    """log(1 + max(x, 0)), NaN where x is: the NaNs put back after the log, not fed to it
    (numpy's vectorised log1p leaves its fast path on NaN: ~25% of featurize's logs)."""
    out = np.array(x, dtype=np.float64)
    unknown = np.isnan(out)
    np.fmax(out, 0.0, out=out)  # NaN -> 0.0
    np.log1p(out, out=out)
    if unknown.any():
        out[unknown] = np.nan
    return out if out.ndim else out[()]


def signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where den > 0, NaN elsewhere (undefined, not zero)."""
    shape = np.shape(num)
    if shape != np.shape(den):
        shape = np.broadcast_shapes(shape, np.shape(den))
    out = np.full(shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """A ratio clipped to [0, 1]: clients may send inconsistent counts (more media posts than
    posts); a share above 1 means nothing more than 1."""
    return np.clip(ratio(num, den), 0.0, 1.0)


def sum_known(x: np.ndarray, axis: int) -> np.ndarray:
    """Sum ignoring unknowns; unknown only if every term is."""
    known = ~np.isnan(x)
    return np.where(known.any(axis=axis), np.where(known, x, 0.0).sum(axis=axis), np.nan)


def max_known(x: np.ndarray, axis: int) -> np.ndarray:
    """Maximum ignoring unknowns; unknown only if every term is (fmax skips NaN)."""
    return np.fmax.reduce(x, axis=axis)


def across(x: np.ndarray) -> np.ndarray:
    """(U, N, K) summed across networks -> (U, K)."""
    return sum_known(x, axis=1)


def best(x: np.ndarray) -> np.ndarray:
    """(U, N, K) maximum across networks -> (U, K)."""
    return max_known(x, axis=1)


def _count_positive(x: np.ndarray, axis: int) -> np.ndarray:
    return (x > 0).sum(axis=axis).astype(float)  # NaN > 0 is False: unknown is not active


def count_positive(x: np.ndarray) -> np.ndarray:
    """(U, N, K) -> (U, K): networks where the value is known and above zero."""
    return _count_positive(x, axis=1)


# --- specs: each computes one quantity for all users, networks and windows ---------------------

Compute = Callable[[Grid], np.ndarray]


@dataclass(frozen=True)
class Gather:
    """A spec that is one snapshot signal as is (or its log): computed for all such specs at
    once by a single gather from the grid."""

    column: str
    log: bool

    def __call__(self, g: Grid) -> np.ndarray:
        return g.log(self.column) if self.log else g[self.column]


def logged(column: str) -> Gather:
    return Gather(column, log=True)


def raw(column: str) -> Gather:
    return Gather(column, log=False)


@dataclass(frozen=True)
class Spec:
    """A family of catalog signals computed by one vectorised function.

    scope: "network" -> compute(Rows) returns one value per long row: one signal per network
                        (and window);
           "across"  -> compute(Grid) returns (U, K) (or (U,) for a level): one per window.
    level: the quantity does not depend on the window (followers): one signal, not one per
           window (a per-network level is read from the row of the longest window).
    absent: the value where the user lacks the network (default: unknown).
    """

    key: str
    family: str
    monotone: int
    meaning: str
    compute: Compute
    scope: str = "network"
    level: bool = False
    networks: tuple[str, ...] = NETWORKS
    low: float = -50.0
    high: float = 50.0
    absent: float = np.nan


@dataclass(frozen=True)
class Signal:
    """One row of the signal catalog (one column of the feature table)."""

    name: str
    network: str
    family: str
    window: int | None
    monotone: int
    meaning: str
    low: float
    high: float


def _networks_with(mask: np.ndarray) -> tuple[str, ...]:
    return tuple(n for i, n in enumerate(NETWORKS) if mask[i].any())


def _networks_with_family_depth(family: str, at_least: int) -> tuple[str, ...]:
    return tuple(n for i, n in enumerate(NETWORKS) if FAMILY_MASK[family][i].sum() >= at_least)


def _per_network_specs() -> list[Spec]:
    specs = [
        Spec(
            "linked",
            "network",
            +1,
            "1 if {network} is linked, 0 if not",
            lambda g: g.linked,
            level=True,
            absent=0.0,
            low=0,
            high=1,
        ),
        Spec(
            "log_followers",
            "audience",
            0,
            "log(1 + followers on {network})",
            logged("followers"),
            level=True,
        ),
        Spec(
            "log_following",
            "audience",
            0,
            "log(1 + accounts followed on {network})",
            logged("following"),
            level=True,
        ),
        Spec(
            "log_lists",
            "audience",
            0,
            "log(1 + public lists the {network} account is on)",
            logged("lists"),
            level=True,
            networks=tuple(sorted(NETWORKS_WITH_LISTS)),
        ),
        Spec(
            "follower_following_log_ratio",
            "audience",
            0,
            "log((1 + followers) / (1 + following)) on {network}",
            lambda g: g.log("followers") - g.log("following"),
            level=True,
        ),
        Spec(
            "log_account_age_days",
            "account",
            0,
            "log(1 + days since the {network} account was created)",
            logged("account_age_days"),
            level=True,
        ),
        Spec(
            "log_days_linked",
            "account",
            0,
            "log(1 + days since {network} was linked)",
            logged("days_linked"),
            level=True,
        ),
        Spec(
            "log_pagerank",
            "engager_influence",
            +1,
            "log(1 + PageRank on the {network} engagement graph, mean 1)",
            logged("pagerank"),
            level=True,
        ),
        Spec(
            "log_posts",
            "activity",
            0,
            "log(1 + posts on {network} in the last {window} days)",
            logged("posts"),
        ),
        Spec(
            "media_share",
            "activity",
            0,
            "share of {network} posts with a photo or video, last {window} days",
            lambda g: share(g["posts_with_media"], g["posts"]),
            low=0,
            high=1,
        ),
        Spec(
            "active_share",
            "activity",
            0,
            "share of the last {window} days active on {network}",
            lambda g: share(g["active_days"], g.window_days),
            low=0,
            high=1,
        ),
        Spec(
            "log_follower_growth",
            "audience",
            0,
            "sign * log(1 + |follower change|) on {network} over the last {window} days",
            lambda g: signed_log1p(g["follower_growth"]),
        ),
        Spec(
            "follower_growth_rate",
            "audience",
            0,
            "follower change / followers at the start, {network}, last {window} days",
            lambda g: ratio(
                g["follower_growth"], np.maximum(g["followers"] - g["follower_growth"], 1.0)
            ),
            low=-1e10,
            high=1e10,
        ),
        Spec(
            "log_received",
            "reactions",
            +1,
            "log(1 + reactions received on {network}, last {window} days)",
            lambda g: log1p(g.received),
        ),
        Spec(
            "reactions_per_post",
            "reactions",
            +1,
            "log((1 + reactions on posts) / (1 + posts)) on {network}, last {window} days",
            lambda g: log1p(g.received_on_posts) - g.log("posts"),
            networks=_networks_with(ON_POST),
        ),
        Spec(
            "log_unique_engagers",
            "engagers",
            +1,
            "log(1 + distinct people who reacted on {network}, last {window} days)",
            logged("unique_engagers"),
        ),
        Spec(
            "reactions_per_engager",
            "engagers",
            0,
            "log((1 + reactions) / (1 + distinct engagers)) on {network}, last {window} days",
            lambda g: log1p(g.received) - g.log("unique_engagers"),
        ),
        Spec(
            "log_selective_reactions",
            "selectivity",
            +1,
            "log(1 + reactions weighted by their actor's selectivity) on {network}, last {window} days",
            logged("selective_reactions"),
        ),
        Spec(
            "selective_share",
            "selectivity",
            0,
            "selectivity-weighted reactions / reactions on {network}, last {window} days",
            lambda g: share(g["selective_reactions"], g.received),
            low=0,
            high=1,
        ),
        Spec(
            "engager_influence",
            "engager_influence",
            +1,
            "mean influence percentile (0-100) of the {network} engagers, last {window} days",
            raw("engager_influence"),
            low=0,
            high=100,
        ),
        Spec(
            "log_influential_engagers",
            "engager_influence",
            +1,
            "log(1 + distinct {network} engagers weighted by their influence percentile / 100), "
            "last {window} days",
            lambda g: log1p(influential_engagers(g)),
        ),
        Spec(
            "log_sent",
            "sent",
            0,
            "log(1 + reactions sent to others on {network}, last {window} days)",
            lambda g: log1p(g.sent),
        ),
        Spec(
            "log_conversations_started",
            str(Family.CONVERSATION),
            +1,
            "log(1 + {network} posts that got a reply/comment), last {window} days",
            logged("conversations_started"),
            networks=_networks_with(FAMILY_MASK[str(Family.CONVERSATION)] & ON_POST),
        ),
        Spec(
            "reciprocity",
            "sent",
            0,
            "share of {network} engagers the user reacted to in turn, last {window} days",
            raw("reciprocity"),
            low=0,
            high=1,
        ),
        Spec(
            "engagement_rate",
            "reactions",
            0,
            "log((1 + reactions) / (1 + followers)) on {network}, last {window} days",
            lambda g: log1p(g.received) - g.log("followers"),
        ),
    ]
    for a_index, action in enumerate(ALL_ACTIONS):
        networks = _networks_with(ALLOWED[:, [a_index]])
        family = {str(x.family) for n in networks for x in VOCABULARY[n] if x.name == action}.pop()
        specs.append(
            Spec(
                f"log_received_{action}",
                family,
                +1,
                f"log(1 + '{action}' reactions received on {{network}}, last {{window}} days)",
                logged(f"received_{action}"),
                networks=networks,
            )
        )
        specs.append(
            Spec(
                f"log_sent_{action}",
                "sent",
                0,
                f"log(1 + '{action}' reactions sent on {{network}}, last {{window}} days)",
                logged(f"sent_{action}"),
                networks=networks,
            )
        )
    for family in FAMILY_NAMES:
        specs.append(
            Spec(
                f"log_{family}_received",
                family,
                +1,
                f"log(1 + {family} reactions received on {{network}}, last {{window}} days)",
                lambda g, f=family: log1p(g.received_in(f)),
                networks=_networks_with_family_depth(family, 2),
            )
        )
        specs.append(
            Spec(
                f"log_{family}_unique_engagers",
                family,
                +1,
                f"log(1 + distinct people with a {family} reaction on {{network}}, last {{window}} days)",
                logged(f"unique_engagers_{family}"),
                networks=_networks_with_family_depth(family, 1),
            )
        )
    return specs


def influential_engagers(g: Grid) -> np.ndarray:
    """Distinct engagers weighted by their influence (percentile / 100): a *sum*, so a new
    engager never lowers it, however little influence they have (a mean would fall). Unknown
    when either input is (engager influence is undefined without engagers): raising the
    engagers alone then never turns a value into an unknown."""
    return g["unique_engagers"] * g["engager_influence"] / 100.0


def _weighted_influence(g: Grid) -> np.ndarray:
    """Mean engager influence across networks, weighted by distinct engagers (1 where the
    number of engagers is unknown)."""
    influence, engagers = g["engager_influence"], g["unique_engagers"]
    weight = np.where(np.isnan(engagers), 1.0, engagers)
    weight = np.where(np.isnan(influence), 0.0, weight)
    total = np.where(np.isnan(influence), 0.0, influence * weight).sum(axis=1)
    return ratio(total, weight.sum(axis=1))


def _across_specs() -> list[Spec]:
    def across_log(name: str) -> Compute:
        return lambda g: g.across_log(name)

    specs = [
        Spec(
            "n_linked_networks",
            "network",
            +1,
            "networks linked",
            lambda g: g.linked.sum(axis=1).astype(float),
            scope="across",
            level=True,
            low=0,
            high=_N,
        ),
        Spec(
            "log_followers_total",
            "audience",
            0,
            "log(1 + followers summed over networks)",
            lambda g: g.across_log("followers")[:, 0],
            scope="across",
            level=True,
        ),
        Spec(
            "log_followers_max",
            "audience",
            0,
            "log(1 + followers on the biggest network)",
            lambda g: g.best_log("followers")[:, 0],
            scope="across",
            level=True,
        ),
        Spec(
            "log_following_total",
            "audience",
            0,
            "log(1 + accounts followed, all networks)",
            lambda g: g.across_log("following")[:, 0],
            scope="across",
            level=True,
        ),
        Spec(
            "log_account_age_days_max",
            "account",
            0,
            "log(1 + age in days of the oldest account)",
            lambda g: g.best_log("account_age_days")[:, 0],
            scope="across",
            level=True,
        ),
        Spec(
            "log_days_linked_max",
            "account",
            0,
            "log(1 + days since the first network was linked)",
            lambda g: g.best_log("days_linked")[:, 0],
            scope="across",
            level=True,
        ),
        Spec(
            "log_cross_network_pagerank",
            "engager_influence",
            +1,
            "log(1 + PageRank on the engagement graph of all networks, mean 1)",
            lambda g: g.best_log("cross_network_pagerank")[:, 0],
            scope="across",
            level=True,
        ),
        Spec(
            "log_pagerank_max",
            "engager_influence",
            +1,
            "log(1 + the highest per-network PageRank)",
            lambda g: g.best_log("pagerank")[:, 0],
            scope="across",
            level=True,
        ),
        Spec(
            "log_received",
            "reactions",
            +1,
            "log(1 + reactions received, all networks, last {window} days)",
            across_log("received"),
            scope="across",
        ),
        Spec(
            "reactions_per_post",
            "reactions",
            +1,
            "log((1 + reactions on posts) / (1 + posts)), all networks, last {window} days",
            lambda g: g.across_log("received_on_posts") - g.across_log("posts"),
            scope="across",
        ),
        Spec(
            "engagement_rate",
            "reactions",
            0,
            "log((1 + reactions) / (1 + followers)), all networks, last {window} days",
            lambda g: g.across_log("received") - g.across_log("followers"),
            scope="across",
        ),
        Spec(
            "log_unique_engagers",
            "engagers",
            +1,
            "log(1 + distinct engagers summed over networks, last {window} days)",
            across_log("unique_engagers"),
            scope="across",
        ),
        Spec(
            "log_unique_engagers_max",
            "engagers",
            +1,
            "log(1 + distinct engagers on the best network, last {window} days)",
            lambda g: g.best_log("unique_engagers"),
            scope="across",
        ),
        Spec(
            "reactions_per_engager",
            "engagers",
            0,
            "log((1 + reactions) / (1 + distinct engagers)), all networks, last {window} days",
            lambda g: g.across_log("received") - g.across_log("unique_engagers"),
            scope="across",
        ),
        Spec(
            "log_selective_reactions",
            "selectivity",
            +1,
            "log(1 + selectivity-weighted reactions, all networks, last {window} days)",
            across_log("selective_reactions"),
            scope="across",
        ),
        Spec(
            "selective_share",
            "selectivity",
            0,
            "selectivity-weighted reactions / reactions, all networks, last {window} days",
            lambda g: share(g.across("selective_reactions"), g.across("received")),
            scope="across",
            low=0,
            high=1,
        ),
        Spec(
            "engager_influence_max",
            "engager_influence",
            +1,
            "highest mean engager influence (0-100) of any network, last {window} days",
            lambda g: g.best("engager_influence"),
            scope="across",
            low=0,
            high=100,
        ),
        Spec(
            "log_influential_engagers",
            "engager_influence",
            +1,
            "log(1 + distinct engagers weighted by influence percentile / 100, summed over "
            "networks), last {window} days",
            lambda g: log1p(sum_known(influential_engagers(g), axis=1)),
            scope="across",
        ),
        Spec(
            "engager_influence_mean",
            "engager_influence",
            +1,
            "engager influence (0-100) across networks weighted by engagers, last {window} days",
            _weighted_influence,
            scope="across",
            low=0,
            high=100,
        ),
        Spec(
            "n_active_networks",
            "network",
            +1,
            "networks with a post or a reaction received in the last {window} days",
            lambda g: count_positive(np.fmax(g["posts"], g.received)),
            scope="across",
            low=0,
            high=_N,
        ),
        Spec(
            "log_posts",
            "activity",
            0,
            "log(1 + posts, all networks, last {window} days)",
            across_log("posts"),
            scope="across",
        ),
        Spec(
            "media_share",
            "activity",
            0,
            "share of posts with media, all networks, last {window} days",
            lambda g: share(g.across("posts_with_media"), g.across("posts")),
            scope="across",
            low=0,
            high=1,
        ),
        Spec(
            "active_share_max",
            "activity",
            0,
            "share of the last {window} days active on the most active network",
            lambda g: best(share(g["active_days"], g.window_days)),
            scope="across",
            low=0,
            high=1,
        ),
        Spec(
            "log_follower_growth",
            "audience",
            0,
            "sign * log(1 + |follower change|), all networks, last {window} days",
            lambda g: signed_log1p(g.across("follower_growth")),
            scope="across",
        ),
        Spec(
            "log_sent",
            "sent",
            0,
            "log(1 + reactions sent, all networks, last {window} days)",
            across_log("sent"),
            scope="across",
        ),
        Spec(
            "reciprocity_mean",
            "sent",
            0,
            "mean reciprocity over networks, last {window} days",
            lambda g: ratio(g.across("reciprocity"), (~np.isnan(g["reciprocity"])).sum(axis=1)),
            scope="across",
            low=0,
            high=1,
        ),
        Spec(
            "log_conversations_started",
            str(Family.CONVERSATION),
            +1,
            "log(1 + posts that got a reply/comment, all networks, last {window} days)",
            across_log("conversations_started"),
            scope="across",
        ),
    ]
    for f, family in enumerate(FAMILY_NAMES):

        def pick(what: str, how: str, log: bool, f: int = f) -> Compute:
            return lambda g: g.family_across(what, how, log)[f]

        specs += [
            Spec(
                f"log_{family}_received",
                family,
                +1,
                f"log(1 + {family} reactions received, all networks, last {{window}} days)",
                pick("received", "sum", True),
                scope="across",
            ),
            Spec(
                f"log_{family}_received_max",
                family,
                +1,
                f"log(1 + {family} reactions on the best network, last {{window}} days)",
                pick("received", "max", True),
                scope="across",
            ),
            Spec(
                f"n_networks_{family}",
                family,
                +1,
                f"networks with a {family} reaction received in the last {{window}} days",
                pick("received", "count", False),
                scope="across",
                low=0,
                high=_N,
            ),
            Spec(
                f"log_{family}_unique_engagers",
                family,
                +1,
                f"log(1 + distinct {family} engagers summed over networks, last {{window}} days)",
                pick("engagers", "sum", True),
                scope="across",
            ),
            Spec(
                f"log_{family}_unique_engagers_max",
                family,
                +1,
                f"log(1 + distinct {family} engagers on the best network, last {{window}} days)",
                pick("engagers", "max", True),
                scope="across",
            ),
        ]
    return specs


SPECS: tuple[Spec, ...] = (*_per_network_specs(), *_across_specs())


# --- the catalog and the plan that computes it -------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The catalog for a set of windows, and the catalog column each computed value goes to
    (`n_signals` = "not a signal": where a spec does not apply to a network)."""

    signals: tuple[Signal, ...]
    window_specs: tuple[int, ...]
    level_specs: tuple[int, ...]
    across_window_specs: tuple[int, ...]
    across_level_specs: tuple[int, ...]
    window_columns: np.ndarray
    """(network, window, window spec) -> column."""
    level_columns: np.ndarray
    """(network, level spec) -> column."""
    across_window_columns: np.ndarray
    """(window, across spec) -> column."""
    across_level_columns: np.ndarray
    absent: np.ndarray
    """Each column's value for users without that network (NaN: unknown)."""
    windows: tuple[int, ...]

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.signals)


def _name(network: str, key: str, window: int | None) -> str:
    return f"{network}__{key}" + (f"__{window}d" if window is not None else "")


def _signal(spec: Spec, network: str, window: int | None) -> Signal:
    meaning = spec.meaning.format(network=network, window=window)
    return Signal(
        _name(network, spec.key, window),
        network,
        spec.family,
        window,
        spec.monotone,
        meaning,
        spec.low,
        spec.high,
    )


def _gather_first(indices: list[int]) -> tuple[int, ...]:
    """Specs in computing order: log gathers, raw gathers, then computed ones."""

    def rank(i: int) -> int:
        c = SPECS[i].compute
        return 0 if isinstance(c, Gather) and c.log else 1 if isinstance(c, Gather) else 2

    return tuple(sorted(indices, key=rank))


@lru_cache(maxsize=8)
def plan(windows: tuple[int, ...] = DEFAULT_WINDOWS) -> Plan:
    """Catalog order: per network (its levels, then each window's signals), then across
    networks (levels, then each window's signals); specs in declaration order."""
    in_order = {
        (scope, level): [i for i, s in enumerate(SPECS) if s.scope == scope and s.level == level]
        for scope in ("network", "across")
        for level in (False, True)
    }
    window_specs = _gather_first(in_order["network", False])
    level_specs = _gather_first(in_order["network", True])
    across_window = tuple(in_order["across", False])
    across_level = tuple(in_order["across", True])
    q_window = {i: q for q, i in enumerate(window_specs)}
    q_level = {i: q for q, i in enumerate(level_specs)}
    signals: list[Signal] = []
    absent: list[float] = []
    window_cells, level_cells = {}, {}
    across_window_cells, across_level_cells = {}, {}

    def add(spec: Spec, network: str, window: int | None) -> int:
        signals.append(_signal(spec, network, window))
        absent.append(spec.absent)
        return len(signals) - 1

    for n, network in enumerate(NETWORKS):
        for i in in_order["network", True]:
            if network in SPECS[i].networks:
                level_cells[n, q_level[i]] = add(SPECS[i], network, None)
        for k, window in enumerate(windows):
            for i in in_order["network", False]:
                if network in SPECS[i].networks:
                    window_cells[n, k, q_window[i]] = add(SPECS[i], network, window)
    for q, i in enumerate(across_level):
        across_level_cells[q] = add(SPECS[i], ALL, None)
    for k, window in enumerate(windows):
        for q, i in enumerate(across_window):
            across_window_cells[k, q] = add(SPECS[i], ALL, window)

    def table(cells: dict, shape: tuple[int, ...]) -> np.ndarray:
        out = np.full(shape, len(signals), dtype=np.int64)
        for where, column in cells.items():
            out[where] = column
        return out

    return Plan(
        tuple(signals),
        window_specs,
        level_specs,
        across_window,
        across_level,
        table(window_cells, (_N, len(windows), len(window_specs))),
        table(level_cells, (_N, len(level_specs))),
        table(across_window_cells, (len(windows), len(across_window))),
        table(across_level_cells, (len(across_level),)),
        np.asarray(absent),
        tuple(windows),
    )


def signal_catalog(windows: Sequence[int] = DEFAULT_WINDOWS) -> tuple[Signal, ...]:
    return plan(tuple(windows)).signals


def feature_names(windows: Sequence[int] = DEFAULT_WINDOWS) -> list[str]:
    return [s.name for s in signal_catalog(windows)]


def catalog_frame(windows: Sequence[int] = DEFAULT_WINDOWS) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "name": s.name,
                "network": s.network,
                "family": s.family,
                "window_days": s.window,
                "monotone": s.monotone,
                "meaning": s.meaning,
            }
            for s in signal_catalog(windows)
        ],
        schema={
            "name": pl.String,
            "network": pl.String,
            "family": pl.String,
            "window_days": pl.Int64,
            "monotone": pl.Int64,
            "meaning": pl.String,
        },
    )


# --- featurize ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureMatrix:
    """Features as a matrix: row i is (user_id[i], as_of[i]); columns are `names`."""

    user_id: list[str]
    as_of: list[date | None]
    values: np.ndarray
    names: tuple[str, ...]

    def to_frame(self) -> pl.DataFrame:
        keys = pl.DataFrame(
            {"user_id": self.user_id, "as_of": self.as_of},
            schema={"user_id": pl.String, "as_of": pl.Date},
        )
        values = pl.DataFrame(self.values, schema=list(self.names), orient="row", nan_to_null=True)
        return keys.hstack(values)


def _grid(
    long: Rows,
    users: np.ndarray,
    windows_k: np.ndarray,
    n_users: int,
    windows: tuple[int, ...],
) -> Grid:
    n = long.network
    # networks outermost in memory: the reductions across networks add whole blocks in turn
    # (the same order of terms as any layout, far fewer and longer inner loops)
    by_network = np.full((_N, n_users, len(windows), len(GRID_COLUMNS)), np.nan)
    by_network[n, users, windows_k] = long.values[:, _GRID_SIGNALS]
    values = by_network.transpose(1, 0, 2, 3)
    linked = np.zeros((n_users, _N), dtype=bool)
    linked[users, n] = True
    return Grid(values, linked, windows, long, (users, n, windows_k))


def _window_index(arrays: SnapshotArrays, windows: tuple[int, ...]) -> np.ndarray:
    lookup = np.full(max(max(windows), int(arrays.window_days.max(initial=0))) + 1, -1)
    lookup[list(windows)] = np.arange(len(windows))
    k = lookup[arrays.window_days]
    if (k < 0).any():
        bad = int(arrays.window_days[k < 0][0])
        raise ValueError(f"snapshot window {bad} is not a model window; expected one of {windows}")
    return k


@lru_cache(maxsize=16)
def _gathers(specs: tuple[int, ...]) -> tuple[list[int], list[int], tuple[int, ...]]:
    """Signal indices gathered as logs, as they are, and the specs computed one by one."""

    def of(log: bool) -> list[int]:
        return [
            _S[SPECS[i].compute.column]
            for i in specs
            if isinstance(SPECS[i].compute, Gather) and SPECS[i].compute.log == log
        ]

    return of(True), of(False), tuple(i for i in specs if not isinstance(SPECS[i].compute, Gather))


def _network_block(rows: Rows, specs: tuple[int, ...]) -> np.ndarray:
    """(R, Q): gathered specs by one fancy index each, then the computed ones."""
    logs, raws, computed_specs = _gathers(specs)
    computed = [SPECS[i].compute(rows) for i in computed_specs]
    parts = [log1p(rows.values[:, logs]), rows.values[:, raws]]
    if computed:
        parts.append(np.stack(computed, axis=-1))
    return np.concatenate(parts, axis=-1)


def _compute_into(
    out: np.ndarray,
    arrays: SnapshotArrays,
    rows: np.ndarray,
    users: np.ndarray,
    k: np.ndarray,
    p: Plan,
) -> None:
    """Features of one block of users into out (its rows, plus a last scratch column for the
    values of specs that do not apply to a network)."""
    n_users = out.shape[0]
    n = arrays.network[rows]
    long = Rows(arrays.values[rows], n, arrays.window_days[rows])
    out[users[:, None], p.window_columns[n, k]] = _network_block(long, p.window_specs)
    longest = k == len(p.windows) - 1
    levels = Rows(long.values[longest], n[longest], long.window_days[longest])
    out[users[longest][:, None], p.level_columns[n[longest]]] = _network_block(
        levels, p.level_specs
    )
    grid = _grid(long, users, k, n_users, p.windows)
    across = np.stack([SPECS[i].compute(grid) for i in p.across_window_specs], axis=-1)
    out[:, p.across_window_columns.ravel()] = across.reshape(n_users, -1)
    out[:, p.across_level_columns] = np.stack(
        [SPECS[i].compute(grid) for i in p.across_level_specs], axis=-1
    )


def _user_index(arrays: SnapshotArrays) -> tuple[np.ndarray, list[tuple[str, date | None]]]:
    """Each row's (user_id, as_of) as 0.. in first-seen order, and those keys."""
    keyed = arrays.with_keys()
    return keyed.key_index, keyed.keys


def featurize_matrix(
    snapshots: SnapshotArrays | pl.DataFrame | pl.LazyFrame,
    windows: Sequence[int] = DEFAULT_WINDOWS,
) -> FeatureMatrix:
    """The long snapshot table -> one feature row per (user_id, as_of), in first-seen order."""
    arrays = (
        snapshots if isinstance(snapshots, SnapshotArrays) else SnapshotArrays.from_frame(snapshots)
    )
    p = plan(tuple(windows))
    users, keys = _user_index(arrays)
    k = _window_index(arrays, p.windows)
    _check_unique_cells(arrays, users)
    values = np.empty((len(keys), len(p.signals) + 1))
    absent = np.append(p.absent, np.nan)
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.arange(0, len(keys) + CHUNK_USERS, CHUNK_USERS))
    for start, (lo, hi) in zip(range(0, len(keys), CHUNK_USERS), pairwise(bounds)):
        rows = order[lo:hi]
        block = values[start : start + CHUNK_USERS]
        block[:] = absent  # block by block: written again while still in cache
        with np.errstate(invalid="ignore", divide="ignore"):
            _compute_into(block, arrays, rows, users[rows] - start, k[rows], p)
    return FeatureMatrix([u for u, _ in keys], [a for _, a in keys], values[:, :-1], p.names)


def _check_unique_cells(arrays: SnapshotArrays, users: np.ndarray) -> None:
    cells = np.sort((users * _N + arrays.network) * 1024 + arrays.window_days)
    if (cells[1:] == cells[:-1]).any():
        raise ValueError("snapshots repeat a (user_id, as_of, network, window_days) row")


def featurize(
    snapshots: SnapshotArrays | pl.DataFrame | pl.LazyFrame,
    windows: Sequence[int] = DEFAULT_WINDOWS,
) -> pl.DataFrame:
    """The long snapshot table -> the feature table (`Features` columns): one row per
    (user_id, as_of), null where a signal is unknown."""
    return featurize_matrix(snapshots, windows).to_frame()
