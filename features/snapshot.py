"""The signal snapshot: the one contract between raw data and the model.

A snapshot holds, for one user as of a date T, per linked network and per window of the last
`window_days` days before T, the counters the model reads. The batch pipeline
(`features.build`) writes them for every user from the raw tables; an HTTP client sends one for
one user. Both become the same long table (`Snapshots`: one row per user_id, as_of, network,
window_days) and from there share everything (`features.featurize`).

Every signal is described once, in `SIGNALS`, by its *kind*, which says how a client's window is
turned into the model's windows (`snapshots_to_frame`):

- ``level``  a state at T (followers, account age, PageRank): the same for every window, not scaled;
- ``count``  a count over the window (posts, reactions received, unique engagers): a rate, scaled by
  ``model_window / client_window`` (unique engagers grow more slowly than linearly in reality;
  linear scaling is the simple, documented approximation);
- ``change`` a signed change over the window (follower growth): scaled like a count;
- ``days``   days with activity in the window: scaled like a count, then capped by the window;
- ``score``  a bounded score (engager influence 0-100, reciprocity 0-1): not scaled.

A client may send one window per network (the usual case) or a list of windows (a batch-built
snapshot has one per model window). For each model window the closest client window is used
(exact match first, else the nearest by ratio of lengths, the longer on a tie). Missing fields
and actions stay null: nothing is imputed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

import numpy as np
import pandera.polars as pa
import polars as pl
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from influence.vocabulary import ALL_ACTIONS, FAMILIES, NETWORKS, actions_of

MAX_COUNT = 1e10
"""Upper bound of any counter: above every real audience (the largest accounts have ~1e8)."""
MAX_DAYS = 36_500.0
MAX_WINDOW_DAYS = 365
KEY_COLUMNS: tuple[str, ...] = ("user_id", "as_of", "network", "window_days")


class Kind(StrEnum):
    LEVEL = "level"
    COUNT = "count"
    CHANGE = "change"
    DAYS = "days"
    SCORE = "score"


@dataclass(frozen=True)
class SnapshotSignal:
    """One column of the snapshot table."""

    name: str
    kind: Kind
    meaning: str
    low: float = 0.0
    high: float = MAX_COUNT


def _audience() -> list[SnapshotSignal]:
    return [
        SnapshotSignal(
            "followers", Kind.LEVEL, "followers at the end of the window (last day before T)"
        ),
        SnapshotSignal("following", Kind.LEVEL, "accounts followed at the end of the window"),
        SnapshotSignal("lists", Kind.LEVEL, "public lists the account is on (Twitter only)"),
        SnapshotSignal(
            "follower_growth",
            Kind.CHANGE,
            "followers at the end of the window minus followers at its start (signed)",
            low=-MAX_COUNT,
        ),
    ]


def _activity() -> list[SnapshotSignal]:
    return [
        SnapshotSignal("posts", Kind.COUNT, "posts published in the window"),
        SnapshotSignal(
            "posts_with_media", Kind.COUNT, "posts with a photo or a video in the window"
        ),
        SnapshotSignal(
            "active_days",
            Kind.DAYS,
            "days of the window with a post or a reaction sent",
            high=MAX_WINDOW_DAYS,
        ),
        SnapshotSignal(
            "account_age_days", Kind.LEVEL, "days since the account was created", high=MAX_DAYS
        ),
        SnapshotSignal(
            "days_linked",
            Kind.LEVEL,
            "days since the network was linked to the platform",
            high=MAX_DAYS,
        ),
    ]


def _reactions() -> list[SnapshotSignal]:
    received = [
        SnapshotSignal(f"received_{a}", Kind.COUNT, f"'{a}' reactions received in the window")
        for a in ALL_ACTIONS
    ]
    sent = [
        SnapshotSignal(f"sent_{a}", Kind.COUNT, f"'{a}' reactions sent to others in the window")
        for a in ALL_ACTIONS
    ]
    return received + sent


def _engagers() -> list[SnapshotSignal]:
    return [
        SnapshotSignal("unique_engagers", Kind.COUNT, "distinct people who reacted in the window"),
        *(
            SnapshotSignal(
                f"unique_engagers_{f}",
                Kind.COUNT,
                f"distinct people who reacted with a(n) {f} action in the window",
            )
            for f in FAMILIES
        ),
        SnapshotSignal(
            "selective_reactions",
            Kind.COUNT,
            "reactions received, each weighted 1/(reactions its actor gave that day on that network)",
        ),
        SnapshotSignal(
            "engager_influence",
            Kind.SCORE,
            "mean influence of the window's distinct engagers: percentile 0-100 of their "
            "cross-network PageRank",
            high=100.0,
        ),
        SnapshotSignal(
            "pagerank",
            Kind.LEVEL,
            "weighted PageRank on this network's engagement graph (last 30 days by default), "
            "scaled so the mean node has 1",
        ),
        SnapshotSignal(
            "cross_network_pagerank",
            Kind.LEVEL,
            "weighted PageRank on the engagement graph of all networks together, mean 1",
        ),
        SnapshotSignal(
            "conversations_started",
            Kind.COUNT,
            "distinct posts of the user that got a reply or comment in the window",
        ),
        SnapshotSignal(
            "reciprocity",
            Kind.SCORE,
            "share of the window's engagers the user reacted to in the same window (0-1)",
            high=1.0,
        ),
    ]


SIGNALS: tuple[SnapshotSignal, ...] = (*_audience(), *_activity(), *_reactions(), *_engagers())
SIGNAL_BY_NAME: dict[str, SnapshotSignal] = {s.name: s for s in SIGNALS}
SIGNAL_COLUMNS: tuple[str, ...] = tuple(SIGNAL_BY_NAME)
SNAPSHOT_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *SIGNAL_COLUMNS)

# Pydantic fields that live in a dict rather than flat (received/sent per action, engagers per
# family); every other signal is a flat optional field of `NetworkSignals`.
_NESTED_PREFIXES = ("received_", "sent_", "unique_engagers_")
FLAT_SIGNALS: tuple[str, ...] = tuple(
    s.name for s in SIGNALS if not s.name.startswith(_NESTED_PREFIXES)
)


# --------------------------------------------------------------------------------------------
# pandera: the long snapshot table
# --------------------------------------------------------------------------------------------


class _SnapshotKeys(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True
        ordered = False
        unique = list(KEY_COLUMNS)  # noqa: RUF012 (pandera reads a list)

    user_id: str = pa.Field(nullable=False)
    """The raw network-independent user id, as a string (HTTP clients send any string)."""
    as_of: pl.Date = pa.Field(nullable=True)
    """Snapshot date T: signals use data strictly before T. Null when a client did not say."""
    network: str = pa.Field(isin=list(NETWORKS))
    window_days: int = pa.Field(ge=1, le=MAX_WINDOW_DAYS)


def _snapshot_model() -> type[pa.DataFrameModel]:
    annotations = {s.name: float for s in SIGNALS}
    fields = {
        s.name: pa.Field(nullable=True, ge=s.low, le=s.high, description=s.meaning) for s in SIGNALS
    }
    return type(
        "Snapshots",
        (_SnapshotKeys,),
        {
            "__annotations__": annotations,
            "__doc__": "Signal snapshots, long form: one row per user_id, as_of, network and "
            "window_days; every signal a nullable Float64 (null = unknown, never imputed).",
            "__module__": __name__,
            **fields,
        },
    )


Snapshots = _snapshot_model()

SNAPSHOT_DTYPES: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "as_of": pl.Date(),
    "network": pl.String(),
    "window_days": pl.Int64(),
    **{name: pl.Float64() for name in SIGNAL_COLUMNS},
}


def validate_snapshots(frame: pl.DataFrame) -> pl.DataFrame:
    """`Snapshots` over a frame; a missing or unexpected column is reported by name as a
    SchemaError (pandera's coercion would otherwise stop at polars' column lookup)."""
    import pandera.errors

    missing = [c for c in SNAPSHOT_COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in SNAPSHOT_DTYPES]
    if missing or extra:
        detail = f"missing column {missing[0]!r}" if missing else f"unexpected column {extra[0]!r}"
        raise pandera.errors.SchemaError(
            schema=Snapshots.to_schema(),
            data=frame,
            message=f"Snapshots: {detail} ({len(missing)} missing, {len(extra)} unexpected)",
        )
    return Snapshots.validate(frame.select(SNAPSHOT_COLUMNS))


def empty_snapshots() -> pl.DataFrame:
    return pl.DataFrame(schema=SNAPSHOT_DTYPES)


# --------------------------------------------------------------------------------------------
# pydantic: the same schema for HTTP clients
# --------------------------------------------------------------------------------------------

NetworkName = Literal[NETWORKS]  # type: ignore[valid-type]
ActionName = Literal[ALL_ACTIONS]  # type: ignore[valid-type]
FamilyName = Literal[tuple(str(f) for f in FAMILIES)]  # type: ignore[valid-type]

Count = Annotated[float, Field(strict=True, ge=0, le=MAX_COUNT, allow_inf_nan=False)]
Change = Annotated[float, Field(strict=True, ge=-MAX_COUNT, le=MAX_COUNT, allow_inf_nan=False)]
Days = Annotated[float, Field(strict=True, ge=0, le=MAX_DAYS, allow_inf_nan=False)]


def _field(name: str) -> Any:
    s = SIGNAL_BY_NAME[name]
    return Field(None, strict=True, ge=s.low, le=s.high, allow_inf_nan=False, description=s.meaning)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NetworkSignals(_Frozen):
    """Counters of one network over the last `window_days` days before as_of.

    Only `window_days` is required. Counters are non-negative finite numbers (fractions allowed:
    clients often send averages); `received`/`sent` are keyed by the network's action names.
    """

    window_days: int = Field(
        ge=1, le=MAX_WINDOW_DAYS, strict=True, description="window length in days"
    )
    followers: float | None = _field("followers")
    following: float | None = _field("following")
    lists: float | None = _field("lists")
    follower_growth: float | None = _field("follower_growth")
    posts: float | None = _field("posts")
    posts_with_media: float | None = _field("posts_with_media")
    active_days: float | None = _field("active_days")
    account_age_days: float | None = _field("account_age_days")
    days_linked: float | None = _field("days_linked")
    received: dict[ActionName, Count] = Field(
        default_factory=dict, description="reactions received in the window, by action"
    )
    sent: dict[ActionName, Count] = Field(
        default_factory=dict, description="reactions sent to others in the window, by action"
    )
    unique_engagers: float | None = _field("unique_engagers")
    unique_engagers_by_family: dict[FamilyName, Count] = Field(
        default_factory=dict, description="distinct engagers in the window, by action family"
    )
    selective_reactions: float | None = _field("selective_reactions")
    engager_influence: float | None = _field("engager_influence")
    pagerank: float | None = _field("pagerank")
    cross_network_pagerank: float | None = _field("cross_network_pagerank")
    conversations_started: float | None = _field("conversations_started")
    reciprocity: float | None = _field("reciprocity")

    @model_validator(mode="after")
    def _active_days_within_window(self) -> NetworkSignals:
        if self.active_days is not None and self.active_days > self.window_days:
            raise ValueError(
                f"active_days ({self.active_days:g}) exceeds window_days ({self.window_days})"
            )
        return self


assert set(FLAT_SIGNALS) <= set(NetworkSignals.model_fields), "NetworkSignals misses a signal"


def _one_or_many(value: Any) -> str:
    return "windows" if isinstance(value, (list, tuple)) else "window"


NetworkWindows = Annotated[
    Annotated[NetworkSignals, Tag("window")]
    | Annotated[list[NetworkSignals], Tag("windows"), Field(min_length=1, max_length=16)],
    Discriminator(_one_or_many),
]


class SignalSnapshot(_Frozen):
    """One user's signal snapshot: per linked network, one window of counters (or a list of
    windows with distinct lengths)."""

    user_id: str | None = Field(None, max_length=256)
    as_of: date | None = None
    networks: dict[NetworkName, NetworkWindows] = Field(min_length=1)

    @field_validator("networks")
    @classmethod
    def _actions_belong_to_their_network(cls, networks: dict) -> dict:
        for network, value in networks.items():
            windows = value if isinstance(value, list) else [value]
            allowed = actions_of(network)
            for signals in windows:
                for side in ("received", "sent"):
                    unknown = [a for a in getattr(signals, side) if a not in allowed]
                    if unknown:
                        raise ValueError(
                            f"networks.{network}.{side}: action {unknown[0]!r} is not allowed on "
                            f"{network}; allowed: {', '.join(allowed)}"
                        )
            lengths = [w.window_days for w in windows]
            if len(set(lengths)) != len(lengths):
                raise ValueError(f"networks.{network}: window_days repeated in {lengths}")
        return networks

    def windows_of(self, network: str) -> list[NetworkSignals]:
        value = self.networks[network]
        return list(value) if isinstance(value, list) else [value]


# --------------------------------------------------------------------------------------------
# pydantic -> long frame (the serving path) and back
# --------------------------------------------------------------------------------------------


def closest_window(available: Sequence[int], target: int) -> int:
    """The client window used for a model window: exact match, else nearest by ratio of lengths
    (the longer on a tie)."""
    if target in available:
        return target
    return min(available, key=lambda w: (abs(math.log(w / target)), -w))


KIND_CODES = {kind: i for i, kind in enumerate(Kind)}
_SIGNAL_KIND = np.array([KIND_CODES[s.kind] for s in SIGNALS])
_SCALED = np.isin(
    _SIGNAL_KIND, [KIND_CODES[Kind.COUNT], KIND_CODES[Kind.CHANGE], KIND_CODES[Kind.DAYS]]
)
_CAPPED = _SIGNAL_KIND == KIND_CODES[Kind.DAYS]
_FLAT_INDEX = [SIGNAL_COLUMNS.index(name) for name in FLAT_SIGNALS]
_NESTED_INDEX = {
    (side, key): SIGNAL_COLUMNS.index(f"{side}_{key}")
    for side, keys in (
        ("received", ALL_ACTIONS),
        ("sent", ALL_ACTIONS),
        ("unique_engagers", [str(f) for f in FAMILIES]),
    )
    for key in keys
}
NETWORK_INDEX = {n: i for i, n in enumerate(NETWORKS)}


def scale_to_window(values: np.ndarray, source_days: int, target_days: int) -> np.ndarray:
    """The window rule on a vector of all signals (NaN = null), vectorised over signals."""
    return _scale_rows(values[None], np.array([float(source_days)]), np.array([target_days]))[0]


def _fill_signals(values: np.ndarray, signals: NetworkSignals) -> None:
    """Write a client window's signals into a NaN-filled row (SIGNAL_COLUMNS order)."""
    fields = signals.__dict__
    for index, name in zip(_FLAT_INDEX, FLAT_SIGNALS, strict=True):
        value = fields[name]
        if value is not None:
            values[index] = value
    for side, given in (
        ("received", signals.received),
        ("sent", signals.sent),
        ("unique_engagers", signals.unique_engagers_by_family),
    ):
        for key, value in given.items():
            values[_NESTED_INDEX[side, key]] = value


@dataclass(frozen=True)
class SnapshotArrays:
    """The long snapshot table as arrays: what `features.featurize` computes on.

    Row r is (user_id[r], as_of[r], NETWORKS[network[r]], window_days[r]) with the signals
    values[r] in `SIGNAL_COLUMNS` order, NaN for null. Both paths end here: the batch table via
    `from_frame`, HTTP clients via `snapshots_to_arrays` without building a frame at all."""

    user_id: list[str]
    as_of: list[date | None]
    network: np.ndarray
    window_days: np.ndarray
    values: np.ndarray
    key_index: np.ndarray | None = None
    """Optional: each row's (user_id, as_of) numbered 0.. in first-seen order (`keys`)."""
    keys: list[tuple[str, date | None]] | None = None

    def __len__(self) -> int:
        return len(self.user_id)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame | pl.LazyFrame) -> SnapshotArrays:
        if isinstance(frame, pl.LazyFrame):
            frame = frame.collect()
        unknown = set(frame["network"].unique().to_list()) - set(NETWORKS)
        if unknown:
            raise ValueError(
                f"unknown network(s) {sorted(unknown)}; allowed: {', '.join(NETWORKS)}"
            )
        key_index, keys = _key_index(frame)
        return cls(
            user_id=frame["user_id"].to_list(),
            as_of=_as_list(frame["as_of"]),
            key_index=key_index,
            keys=list(zip(keys["user_id"].to_list(), keys["as_of"].to_list())),
            network=frame["network"]
            .replace_strict(NETWORK_INDEX, return_dtype=pl.Int64)
            .to_numpy(),
            window_days=frame["window_days"].to_numpy().astype(np.int64),
            values=frame.select(
                pl.col(c).cast(pl.Float64).fill_null(np.nan) for c in SIGNAL_COLUMNS
            ).to_numpy(),
        )

    def with_keys(self) -> SnapshotArrays:
        """Self with `key_index` and `keys` filled in (first-seen order) when missing."""
        if self.key_index is not None and self.keys is not None:
            return self
        index: dict[tuple[str, date | None], int] = {}
        key_index = np.fromiter(
            (index.setdefault(key, len(index)) for key in zip(self.user_id, self.as_of)),
            dtype=np.int64,
            count=len(self),
        )
        return replace(self, key_index=key_index, keys=list(index))

    def split(self, keys_per_part: int) -> list[SnapshotArrays]:
        """The rows of each run of `keys_per_part` consecutive keys (first-seen order) as one
        part, keys numbered from 0 in each: featurizing the parts in turn gives the rows of
        featurizing the whole, in the same order."""
        if keys_per_part < 1:
            raise ValueError(f"keys_per_part must be at least 1, got {keys_per_part}")
        whole = self.with_keys()
        if len(whole.keys) <= keys_per_part:
            return [whole]
        starts = list(range(0, len(whole.keys), keys_per_part))
        if (np.diff(whole.key_index) >= 0).all():  # rows grouped by key: parts are slices (views)
            bounds = np.searchsorted(whole.key_index, [*starts, len(whole.keys)])
            return [
                SnapshotArrays(
                    user_id=whole.user_id[lo:hi],
                    as_of=whole.as_of[lo:hi],
                    network=whole.network[lo:hi],
                    window_days=whole.window_days[lo:hi],
                    values=whole.values[lo:hi],
                    key_index=whole.key_index[lo:hi] - start,
                    keys=whole.keys[start : start + keys_per_part],
                )
                for start, lo, hi in zip(starts, bounds[:-1], bounds[1:])
            ]
        order = np.argsort(whole.key_index, kind="stable")
        bounds = np.searchsorted(whole.key_index[order], [*starts, len(whole.keys)])
        user_ids = np.asarray(whole.user_id, dtype=object)
        as_ofs = np.asarray(whole.as_of, dtype=object)
        parts = []
        for start, lo, hi in zip(starts, bounds[:-1], bounds[1:]):
            rows = order[lo:hi]
            parts.append(
                SnapshotArrays(
                    user_id=user_ids[rows].tolist(),
                    as_of=as_ofs[rows].tolist(),
                    network=whole.network[rows],
                    window_days=whole.window_days[rows],
                    values=whole.values[rows],
                    key_index=whole.key_index[rows] - start,
                    keys=whole.keys[start : start + keys_per_part],
                )
            )
        return parts

    def to_frame(self) -> pl.DataFrame:
        columns = {
            "user_id": pl.Series(self.user_id, dtype=pl.String),
            "as_of": pl.Series(self.as_of, dtype=pl.Date),
            "network": pl.Series([NETWORKS[i] for i in self.network], dtype=pl.String),
            "window_days": pl.Series(self.window_days, dtype=pl.Int64),
        }
        signals = pl.DataFrame(
            self.values, schema=list(SIGNAL_COLUMNS), orient="row", nan_to_null=True
        )
        return pl.DataFrame(columns).hstack(signals)


def _key_index(frame: pl.DataFrame) -> tuple[np.ndarray, pl.DataFrame]:
    """Each row's (user_id, as_of) numbered 0.. in first-seen order, and those keys. Rows grouped
    by key (the builder writes them so): the runs are the keys, no join."""
    pair = frame.select("user_id", "as_of")
    keys = pair.unique(maintain_order=True)
    runs = pair.select(pl.struct("user_id", "as_of").rle_id())["user_id"]
    if frame.height == 0 or int(runs[-1]) + 1 == keys.height:
        return runs.to_numpy().astype(np.int64), keys
    index = pair.join(
        keys.with_row_index("_key"), on=["user_id", "as_of"], how="left", nulls_equal=True,
        maintain_order="left",
    )["_key"]
    return index.to_numpy().astype(np.int64), keys


def _as_list(column: pl.Series) -> list:
    """column.to_list(), the same objects: a column of a few distinct values (the as-of dates of
    a day's snapshots) built from those few instead of one Python object per row."""
    distinct = column.unique()
    if len(distinct) == 1:
        return [distinct[0]] * len(column)
    if len(distinct) > 64:
        return column.to_list()
    lookup = dict(zip(distinct.to_physical().to_list(), distinct.to_list()))
    return [lookup[code] for code in column.to_physical().to_list()]


def _snapshot_keys(snapshots: Sequence[SignalSnapshot]) -> list[str]:
    """A unique key per snapshot: its user_id, '#<position>' when absent, and
    '<user_id>#<position>' for a repeated (user_id, as_of), so rows of a batch never merge."""
    seen: set[tuple[str, date | None]] = set()
    keys = []
    for position, snapshot in enumerate(snapshots):
        key = snapshot.user_id if snapshot.user_id is not None else f"#{position}"
        if (key, snapshot.as_of) in seen:
            key = f"{key}#{position}"
        seen.add((key, snapshot.as_of))
        keys.append(key)
    return keys


def snapshots_to_arrays(
    snapshots: Sequence[SignalSnapshot], windows: Iterable[int] = (7, 30, 90)
) -> SnapshotArrays:
    """Client snapshots -> the long table (as arrays), one row per network and model window,
    by the window rule of the module docstring. Rows keep the order of the input.

    Python only walks the given fields once per client window; choosing and scaling the
    windows is one vectorised step for the whole batch."""
    windows = tuple(windows)
    n_windows = sum(len(s.windows_of(n)) for s in snapshots for n in s.networks)
    given = np.full((n_windows, len(SIGNAL_COLUMNS)), np.nan)
    user_ids, as_ofs, networks, lengths, sources, source_days = [], [], [], [], [], []
    at = 0
    for key, snapshot in zip(_snapshot_keys(snapshots), snapshots, strict=True):
        for network in snapshot.networks:
            row_of = {}
            for signals in snapshot.windows_of(network):
                _fill_signals(given[at], signals)
                row_of[signals.window_days] = at
                at += 1
            for target in windows:
                source = closest_window(tuple(row_of), target)
                user_ids.append(key)
                as_ofs.append(snapshot.as_of)
                networks.append(NETWORK_INDEX[network])
                lengths.append(target)
                sources.append(row_of[source])
                source_days.append(source)
    target_days = np.asarray(lengths, dtype=np.int64)
    values = _scale_rows(given[sources], np.asarray(source_days, dtype=float), target_days)
    return SnapshotArrays(
        user_ids, as_ofs, np.asarray(networks, dtype=np.int64), target_days, values
    )


def _scale_rows(rows: np.ndarray, source_days: np.ndarray, target_days: np.ndarray) -> np.ndarray:
    """The window rule on many rows at once (each with its own source and target window)."""
    target = target_days.astype(float)[:, None]
    scaled = np.where(_SCALED, rows * (target / source_days[:, None]), rows)
    return np.where(_CAPPED, np.minimum(scaled, target), scaled)


def snapshots_to_frame(
    snapshots: Sequence[SignalSnapshot], windows: Iterable[int] = (7, 30, 90)
) -> pl.DataFrame:
    """Client snapshots -> the long `Snapshots` table (see `snapshots_to_arrays`)."""
    return snapshots_to_arrays(snapshots, windows).to_frame()


def frame_to_snapshots(frame: pl.DataFrame) -> list[SignalSnapshot]:
    """The long table -> one `SignalSnapshot` per (user_id, as_of), each network with all its
    windows: what a client holding a batch-built snapshot sends to get the batch score."""
    snapshots = []
    for (user_id, as_of), rows in frame.group_by(["user_id", "as_of"], maintain_order=True):
        networks: dict[str, list[dict]] = {}
        for row in rows.sort("window_days").iter_rows(named=True):
            networks.setdefault(row["network"], []).append(_row_to_network_signals(row))
        snapshots.append(
            SignalSnapshot.model_validate(
                {"user_id": user_id, "as_of": as_of, "networks": networks}
            )
        )
    return snapshots


def _row_to_network_signals(row: dict[str, Any]) -> dict[str, Any]:
    network = row["network"]
    out: dict[str, Any] = {"window_days": int(row["window_days"])}
    out.update({name: row[name] for name in FLAT_SIGNALS if row[name] is not None})
    for side in ("received", "sent"):
        out[side] = {
            a: row[f"{side}_{a}"] for a in actions_of(network) if row[f"{side}_{a}"] is not None
        }
    out["unique_engagers_by_family"] = {
        str(f): row[f"unique_engagers_{f}"]
        for f in FAMILIES
        if row[f"unique_engagers_{f}"] is not None
    }
    return out
