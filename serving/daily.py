"""Daily scoring of every user, the published-score smoothing, backfills and the model-change report.

    influence score-daily --as-of T     snapshots as of T -> champion scores -> one history day
    influence backfill --from A --to B  every day of [A, B], in order (each day smooths on the last)
    influence compare-models --as-of T  champion vs challenger on the same snapshots

The published score (smoothing)
-------------------------------
Day-to-day noise is not influence, so the score users see moves more calmly than the model's
score of the day. For each user and day T, with `raw` the model's score on T's snapshot and
`prev` the user's last published score (on day T - g, g >= 1, at most `max_gap_days` ago):

1. no published score yet (or older than `max_gap_days`): publish `raw`;
2. the user's signals did not change since `prev` was published (same snapshot fingerprint) and
   the model is the same: publish `prev`, exactly: no signal change, no score change;
3. |raw - prev| < `dead_band` (0.5 point): publish `prev`: changes smaller than that are noise;
4. otherwise move part of the way: `prev + (1 - 2^(-g / half_life_days)) * (raw - prev)`.
   With the 3-day half-life, a lasting change is half published after 3 days, 90% after 10 and
   all but 0.1% after a month; a one-day spike of 10 points shows as 2.1.

Scores are rounded to `score_decimals` (2). The fingerprint covers every signal of every network
and window of the snapshot, to ~9.6 significant digits, except the account's age and days since
linking, which grow by one each day whatever the user does: time passing is not a signal change
(nor is the float noise of two builds of the same data). Consequences worth
knowing: the score catches up with the model only on days the signals change (in practice every
active user's signals change daily, as events enter and leave the 7/30/90-day windows); a new
champion moves a user's score through the same smoothing, so a model change is spread over days
too (compare-models shows its size before promotion). The percentile is that of the published
score in the model's reference population; `raw_score` and the per-network points are those of
the model's score of the day.

Re-running a day replaces it; later days are not recomputed (re-run them with `backfill`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from features.snapshot import SIGNAL_COLUMNS, SnapshotArrays
from serving.history import (
    HISTORY_COLUMNS,
    POINT_BUCKETS,
    POINTS_DTYPE,
    DayRun,
    HistoryStore,
    utc_now,
)

if TYPE_CHECKING:
    from training.bundle import ModelBundle

TIME_SIGNALS = ("account_age_days", "days_linked")
"""Signals that grow by one a day by themselves: left out of the fingerprint."""
FINGERPRINT_SIGNALS: tuple[str, ...] = tuple(s for s in SIGNAL_COLUMNS if s not in TIME_SIGNALS)


@dataclass(frozen=True)
class SmoothingRule:
    half_life_days: float = 3.0
    dead_band: float = 0.5
    max_gap_days: int = 30
    decimals: int = 2

    @classmethod
    def from_params(cls, settings) -> SmoothingRule:
        """From a `ScoreDailyParams` section."""
        return cls(
            half_life_days=settings.half_life_days,
            dead_band=settings.dead_band,
            max_gap_days=settings.max_gap_days,
            decimals=settings.score_decimals,
        )


# --------------------------------------------------------------------------------------------
# snapshot fingerprints
# --------------------------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a stable, well-spread 64-bit mix (numpy wraps uint64 overflow)."""
    return _mix_in_place(np.array(x, dtype=np.uint64, copy=True))


def _mix_in_place(x: np.ndarray) -> np.ndarray:
    """`_mix` overwriting x (uint64), with one scratch array: the same operations."""
    shifted = np.empty_like(x)
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB), (31, None)):
        np.right_shift(x, np.uint64(shift), out=shifted)
        np.bitwise_xor(x, shifted, out=x)
        if factor is not None:
            np.multiply(x, np.uint64(factor), out=x)
    return x


_DROPPED_BITS = np.uint64(20)
"""Mantissa bits ignored by the fingerprint: values compare to 32 bits (~9.6 significant digits).
The snapshot builder's parallel float sums (PageRank, selectivity) differ between two runs on the
same data by a few units in the last place; that is not a signal change."""


def _round_mantissa(bits: np.ndarray) -> np.ndarray:
    half = np.uint64(1) << (_DROPPED_BITS - np.uint64(1))
    mask = ~((np.uint64(1) << _DROPPED_BITS) - np.uint64(1))
    return (bits + half) & mask


def signal_fingerprints(snapshots: pl.DataFrame | SnapshotArrays) -> pl.DataFrame:
    """One 64-bit fingerprint per user of a long snapshot table (user_id, signal_hash): equal
    when every (network, window) row carries the same signals (to ~9.6 significant digits),
    nulls included. Built from the IEEE bits of the values, so it does not depend on library
    versions. Users in first-seen order."""
    arrays = (
        snapshots if isinstance(snapshots, SnapshotArrays) else SnapshotArrays.from_frame(snapshots)
    )
    users, hashes = _fingerprints(arrays)
    return pl.DataFrame(
        {"user_id": users, "signal_hash": hashes},
        schema={"user_id": pl.String, "signal_hash": pl.UInt64},
    )


_FINGERPRINT_POSITIONS = np.array([SIGNAL_COLUMNS.index(s) for s in FINGERPRINT_SIGNALS])


def _fingerprints(arrays: SnapshotArrays) -> tuple[list[str], np.ndarray]:
    """(user ids in first-seen order, their fingerprints). One hash per row, summed per user
    (uint64 sums wrap): the rows of a user are distinct (network, window) pairs, so the sum
    does not depend on their order and no sort is needed."""
    if len(arrays) == 0:
        return [], np.zeros(0, dtype=np.uint64)
    values = arrays.values[:, _FINGERPRINT_POSITIONS] + 0.0  # -0.0 and 0.0 are the same signal
    values[np.isnan(values)] = np.nan  # one bit pattern for every null
    bits = _round_mantissa(values.view(np.uint64))
    network_code = arrays.network.astype(np.uint64) + np.uint64(1)
    key = network_code * np.uint64(1_000) + arrays.window_days.astype(np.uint64)
    with np.errstate(over="ignore"):
        # each value mixed with its column's offset, summed per row (uint64 sums wrap), then
        # mixed with the row's (network, window) key
        offsets = _GOLDEN * np.arange(1, bits.shape[1] + 1, dtype=np.uint64)
        np.add(bits, offsets, out=bits)
        row_hash = _mix(_mix_in_place(bits).sum(axis=1, dtype=np.uint64) ^ _mix(key + _GOLDEN))
    index, users = _user_index(arrays)
    user_hash = np.zeros(len(users), dtype=np.uint64)
    np.add.at(user_hash, index, row_hash)
    return users, user_hash


def _user_index(arrays: SnapshotArrays) -> tuple[np.ndarray, list[str]]:
    """Each row's user as 0.. in first-seen order, and those users (a user with rows of
    several as-of dates is one user)."""
    if arrays.key_index is not None and arrays.keys is not None:
        users = [u for u, _ in arrays.keys]
        if len(set(users)) == len(users):
            return arrays.key_index, users
    index: dict[str, int] = {}
    rows = np.fromiter(
        (index.setdefault(u, len(index)) for u in arrays.user_id), dtype=np.int64, count=len(arrays)
    )
    return rows, list(index)


# --------------------------------------------------------------------------------------------
# smoothing
# --------------------------------------------------------------------------------------------


PREVIOUS_SCHEMA = {"user_id": pl.String, "date": pl.Date, "score": pl.Float64,
                   "signal_hash": pl.UInt64, "model_version": pl.String}


def no_previous() -> pl.DataFrame:
    """The `previous` of a first day: nobody has a published score yet."""
    return pl.DataFrame(schema=PREVIOUS_SCHEMA)


def publish(
    today: pl.DataFrame, previous: pl.DataFrame, day: date, rule: SmoothingRule = SmoothingRule()
) -> pl.DataFrame:
    """The published score of each user of `today` (user_id, raw_score, signal_hash,
    model_version), given each user's last published row in `previous` (user_id, date, score,
    signal_hash, model_version). Returns `today` with `score` added (see the module docstring)."""
    prev = previous.select(
        "user_id",
        pl.col("date").alias("_prev_date"),
        pl.col("score").alias("_prev_score"),
        pl.col("signal_hash").alias("_prev_hash"),
        pl.col("model_version").alias("_prev_model"),
    ).filter(
        pl.col("_prev_date") < day,
        pl.col("_prev_date") >= day - timedelta(days=rule.max_gap_days),
    )
    joined = today.join(prev, on="user_id", how="left")
    gap_days = (pl.lit(day) - pl.col("_prev_date")).dt.total_days().cast(pl.Float64)
    step = 1.0 - (0.5 ** (gap_days / rule.half_life_days))
    raw = pl.col("raw_score").round(rule.decimals)
    prev_score = pl.col("_prev_score")
    unchanged = (
        (pl.col("signal_hash") == pl.col("_prev_hash"))
        & (pl.col("model_version") == pl.col("_prev_model"))
    ).fill_null(False)
    published = (
        pl.when(prev_score.is_null())
        .then(raw)
        .when(unchanged)
        .then(prev_score)
        .when((pl.col("raw_score") - prev_score).abs() < rule.dead_band)
        .then(prev_score)
        .otherwise((prev_score + step * (pl.col("raw_score") - prev_score)).round(rule.decimals))
    )
    return joined.with_columns(published.clip(1.0, 100.0).alias("score")).drop(
        "_prev_date", "_prev_score", "_prev_hash", "_prev_model"
    )


# --------------------------------------------------------------------------------------------
# compare-models: champion vs challenger on the same snapshots
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRule:
    thresholds: tuple[float, ...] = (1.0, 5.0)
    top_movers: int = 20
    max_median_abs_delta: float = 1.0
    max_p99_abs_delta: float = 5.0

    @classmethod
    def from_params(cls, settings) -> CompareRule:
        """From a `ScoreDailyParams` section."""
        return cls(
            thresholds=tuple(settings.compare_thresholds),
            top_movers=settings.compare_top_movers,
            max_median_abs_delta=settings.compare_max_median_abs_delta,
            max_p99_abs_delta=settings.compare_max_p99_abs_delta,
        )


def _r(value: float, decimals: int = 4) -> float:
    return round(float(value), decimals)


def _distribution(scores: np.ndarray) -> dict[str, float]:
    return {
        "mean": _r(scores.mean()),
        "median": _r(np.median(scores)),
        "p95": _r(np.quantile(scores, 0.95)),
        "max": _r(scores.max()),
    }


def compare_scores(
    champion: pl.DataFrame,
    challenger: pl.DataFrame,
    rule: CompareRule = CompareRule(),
) -> dict:
    """How the challenger would move each user's score: the distribution of Δ = challenger -
    champion over the users both scored (user_id, score), the share moved by more than each
    threshold, the biggest movers, and whether the move stays within the promotion bounds."""
    pairs = champion.select("user_id", pl.col("score").alias("champion")).join(
        challenger.select("user_id", pl.col("score").alias("challenger")), on="user_id", how="inner"
    )
    if pairs.height == 0:
        raise ValueError("champion and challenger scored no user in common")
    pairs = pairs.with_columns((pl.col("challenger") - pl.col("champion")).alias("delta"))
    delta = pairs["delta"].to_numpy()
    moved = np.abs(delta)
    median, p90, p99 = (float(np.quantile(moved, q)) for q in (0.5, 0.9, 0.99))
    within = median <= rule.max_median_abs_delta and p99 <= rule.max_p99_abs_delta
    movers = (
        pairs.with_columns(pl.col("delta").abs().alias("_abs"))
        .sort(["_abs", "user_id"], descending=[True, False])
        .head(rule.top_movers)
    )
    return {
        "users": pairs.height,
        "users_only_champion": champion.height - pairs.height,
        "users_only_challenger": challenger.height - pairs.height,
        "champion_scores": _distribution(pairs["champion"].to_numpy()),
        "challenger_scores": _distribution(pairs["challenger"].to_numpy()),
        "delta": {
            "mean": _r(delta.mean()),
            "median_abs": _r(median),
            "p90_abs": _r(p90),
            "p99_abs": _r(p99),
            "max_abs": _r(moved.max()),
            "share_up": _r((delta > 0).mean()),
            "share_down": _r((delta < 0).mean()),
        },
        "share_moved_more_than": {f"{t:g}": _r((moved > t).mean()) for t in rule.thresholds},
        "biggest_movers": [
            {"user_id": r["user_id"], "champion": _r(r["champion"], 2),
             "challenger": _r(r["challenger"], 2), "delta": _r(r["delta"], 2)}
            for r in movers.iter_rows(named=True)
        ],
        "bounds": {"max_median_abs_delta": rule.max_median_abs_delta,
                   "max_p99_abs_delta": rule.max_p99_abs_delta},
        "within_bounds": within,
    }


# --------------------------------------------------------------------------------------------
# scoring a day
# --------------------------------------------------------------------------------------------

BuildSnapshots = Callable[[date], pl.DataFrame]
"""as-of date -> the long snapshot table of every user (`features.stage.snapshots_for_date`)."""


@dataclass(frozen=True)
class ModelScores:
    """The model's view of one day: per user the unsmoothed score, its percentile, the
    provisional flag, per-network points and the snapshot fingerprint."""

    frame: pl.DataFrame
    model_version: str
    baseline: float | None
    seconds: dict[str, float] = field(default_factory=dict)


def _timed(seconds: dict[str, float], name: str, started: float) -> float:
    now = time.perf_counter()
    seconds[name] = round(seconds.get(name, 0.0) + now - started, 4)
    return now


BULK_THREADS = 2
"""Workers of the batch path, each scoring its own parts of the day on one thread (compiled
trees, else LightGBM); also the LightGBM threads of compare-models' bulk predicts."""
PART_USERS = 1024
"""Users per part of the batch path: big enough that numpy and the compiled trees work in long
calls (which release the GIL, so two workers use two cores), small enough that a part's
features (~7 MB) stay in cache (measured on the default world: 512 and 1,024 best, 4,096 a
third slower)."""


def network_points(
    bundle: ModelBundle, features, num_threads: int = BULK_THREADS
) -> tuple[pl.Series, float | None]:
    """Points of each row's score per bucket of `POINT_BUCKETS` (TreeSHAP), split exactly as the
    service's explanations (`ModelBundle.network_points`), as a struct column, and the model's
    baseline score."""
    labels, sums, baseline = bundle.network_points(features, num_threads)
    columns = {
        bucket: pl.Series(bucket, sums[:, labels.index(bucket)] if bucket in labels else
                          np.full(len(sums), np.nan)).round(4).fill_nan(None)
        for bucket in POINT_BUCKETS
    }
    struct = pl.DataFrame(columns).to_struct("points").cast(POINTS_DTYPE)
    return struct, (float(baseline[0]) if len(baseline) else None)


@dataclass(frozen=True)
class _PartScores:
    user_id: list[str]
    scored: dict[str, np.ndarray]
    hashes: np.ndarray
    points: pl.Series | None
    baseline: float | None
    seconds: dict[str, float]


def _score_part(
    bundle: ModelBundle, part: SnapshotArrays, windows: tuple[int, ...], points: bool
) -> _PartScores:
    """One part of the day on one thread: featurize, score, fingerprint (and points)."""
    from features.featurize import featurize_matrix

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    features = featurize_matrix(part, windows)
    started = _timed(seconds, "featurize", started)
    scored = bundle.score_columns(features, 1)
    started = _timed(seconds, "score", started)
    users, hashes = _fingerprints(part)
    if users != features.user_id:  # several as-of dates of a user: one fingerprint per user
        position = {user: i for i, user in enumerate(users)}
        hashes = hashes[[position[user] for user in features.user_id]]
    started = _timed(seconds, "fingerprint", started)
    struct, baseline = network_points(bundle, features, 1) if points else (None, None)
    if points:
        _timed(seconds, "points", started)
    return _PartScores(features.user_id, scored, hashes, struct, baseline, seconds)


def model_scores(
    bundle: ModelBundle,
    snapshots: pl.DataFrame | SnapshotArrays,
    windows: Sequence[int] = (7, 30, 90),
    *,
    points: bool = True,
    num_threads: int = BULK_THREADS,
    part_users: int = PART_USERS,
) -> ModelScores:
    """Featurize and score every user of a day's snapshots with one bundle (the batch path:
    vectorised, no HTTP, no frame joins). The users are cut into parts of `part_users` that
    `num_threads` workers featurize, score and fingerprint (the shared featurize function on
    each part: the rows are those of featurizing the whole, in first-seen order); `points` adds
    the per-network points (TreeSHAP, the costly part). `seconds`: the wall time of `arrays` and
    `parts`, and each step's seconds summed over the workers."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    arrays = (
        snapshots if isinstance(snapshots, SnapshotArrays) else SnapshotArrays.from_frame(snapshots)
    )
    parts = arrays.split(part_users) if len(arrays) else [arrays]
    started = _timed(seconds, "arrays", started)
    windows = tuple(windows)
    if num_threads > 1 and len(parts) > 1:
        with ThreadPoolExecutor(num_threads, thread_name_prefix="score-part") as pool:
            done = list(pool.map(lambda part: _score_part(bundle, part, windows, points), parts))
    else:
        done = [_score_part(bundle, part, windows, points) for part in parts]
    started = _timed(seconds, "parts", started)
    for part in done:
        for step, spent in part.seconds.items():
            seconds[step] = round(seconds.get(step, 0.0) + spent, 4)
    frame = pl.DataFrame(
        {
            "user_id": [user for part in done for user in part.user_id],
            **{
                name: np.concatenate([part.scored[key] for part in done])
                for name, key in (("raw_score", "score"), ("raw_percentile", "percentile"),
                                  ("provisional", "provisional"))
            },
        },
        schema={"user_id": pl.String, "raw_score": pl.Float64, "raw_percentile": pl.Float64,
                "provisional": pl.Boolean},
    )
    points_column = (
        pl.concat([part.points for part in done]) if points
        else pl.lit(None, POINTS_DTYPE).alias("points")
    )
    hashes = np.concatenate([part.hashes for part in done])
    frame = frame.with_columns(points_column, pl.Series("signal_hash", hashes, dtype=pl.UInt64))
    _timed(seconds, "frame", started)
    return ModelScores(frame, bundle.version, done[0].baseline, seconds)


def published_percentile(calibrator, published: pl.Series) -> np.ndarray:
    """Percentile in the reference population of each published score: the raw output that maps
    to the score, then the reference's CDF there (scores are rounded: few distinct values)."""
    values = published.to_numpy()
    distinct, inverse = np.unique(values, return_inverse=True)
    raw = np.array([calibrator.raw_for_score(float(v)) for v in distinct])
    return np.asarray(calibrator.percentile(raw), dtype=np.float64)[inverse]


def history_rows(
    scores: ModelScores,
    previous: pl.DataFrame,
    day: date,
    rule: SmoothingRule,
    calibrator,
    written_at: datetime | None = None,
) -> pl.DataFrame:
    """The store's rows of `day`: published (smoothed) score and its percentile next to the
    model's score, points, fingerprint and version. A user whose published score is the model's
    score of the day keeps the model's percentile (exact even where the scale is clipped)."""
    today = scores.frame.with_columns(pl.lit(scores.model_version).alias("model_version"))
    rows = publish(today, previous, day, rule)
    percentile = published_percentile(calibrator, rows["score"])
    as_model = rows["score"] == rows["raw_score"].round(rule.decimals)
    rows = rows.with_columns(
        pl.when(pl.Series(as_model))
        .then(pl.col("raw_percentile"))
        .otherwise(pl.Series(percentile))
        .round(2)
        .alias("percentile"),
        pl.lit(day).alias("date"),
        pl.lit(written_at or utc_now()).cast(pl.Datetime("us")).alias("written_at"),
    )
    return rows.select(HISTORY_COLUMNS).sort("user_id")


@dataclass(frozen=True)
class DayReport:
    day: date
    users: int
    model_version: str
    seconds: dict[str, float]
    changed: int
    """Users whose published score differs from their previous one."""

    def as_dict(self) -> dict:
        return {"day": self.day.isoformat(), "users": self.users, "model_version": self.model_version,
                "changed": self.changed, "seconds": self.seconds}


def score_day(
    day: date,
    *,
    build: BuildSnapshots,
    bundle: ModelBundle,
    store: HistoryStore,
    rule: SmoothingRule,
    windows: Sequence[int] = (7, 30, 90),
    points: bool = True,
) -> DayReport:
    """Snapshots as of `day` -> champion scores -> smoothing on the stored history -> the day
    replaced in the store (one transaction)."""
    started = time.perf_counter()
    snapshots = build(day)
    built = time.perf_counter()
    scores = model_scores(bundle, snapshots, windows, points=points)
    previous = store.previous_published(day, rule.max_gap_days)
    smoothing = time.perf_counter()
    rows = history_rows(scores, previous, day, rule, bundle.calibrator)
    written = time.perf_counter()
    store.replace_day(
        rows,
        DayRun(day, scores.model_version, scores.baseline, rule.half_life_days, rule.dead_band,
               round(written - started, 3)),
    )
    done = time.perf_counter()
    seconds = {
        "snapshots": round(built - started, 3),
        **scores.seconds,
        "smoothing": round(written - smoothing, 3),
        "write": round(done - written, 3),
        "total": round(done - started, 3),
    }
    moved = rows.join(previous.select("user_id", pl.col("score").alias("_prev")), on="user_id", how="left")
    changed = moved.filter(pl.col("_prev").is_null() | (pl.col("_prev") != pl.col("score"))).height
    return DayReport(day, rows.height, scores.model_version, seconds, changed)


def days_in(first: date, last: date) -> list[date]:
    """Every day of [first, last]."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


class PointsFor(StrEnum):
    """Which days of a backfill get per-network points (TreeSHAP costs far more than scoring)."""

    ALL = "all"
    LAST = "last"
    """Only the last day: the score lookup shows the latest day's points."""
    NONE = "none"


def backfill(
    days: Iterable[date],
    *,
    points: PointsFor | str = PointsFor.LAST,
    on_day: Callable[[DayReport], None] | None = None,
    **score_day_kwargs,
) -> list[DayReport]:
    """Score every day in order: each day smooths on the one before, so the order matters; each
    day is its own transaction (a crash keeps the days already done)."""
    points = PointsFor(points)
    days = sorted(days)
    reports = []
    for day in days:
        with_points = points is PointsFor.ALL or (points is PointsFor.LAST and day == days[-1])
        report = score_day(day, points=with_points, **score_day_kwargs)
        reports.append(report)
        if on_day is not None:
            on_day(report)
    return reports


def snapshot_builder(params) -> BuildSnapshots:
    """The feature pipeline's builder over the clean folder (`features.stage`)."""
    from features.engine import make_engine
    from features.stage import snapshots_for_date

    engine = make_engine(params.features.engine)
    root = params.base.clean_dir
    return lambda day: snapshots_for_date(engine, root, day, params)


def compare_models(
    snapshots: pl.DataFrame,
    champion: ModelBundle,
    challenger: ModelBundle,
    rule: CompareRule = CompareRule(),
    windows: Sequence[int] = (7, 30, 90),
) -> dict:
    """Both models on the same snapshots (featurized once): the `compare_scores` report with the
    two versions."""
    from features.featurize import featurize_matrix

    features = featurize_matrix(snapshots, tuple(windows))
    report = compare_scores(
        champion.score(features, BULK_THREADS), challenger.score(features, BULK_THREADS), rule
    )
    as_of = snapshots["as_of"].drop_nulls().unique().to_list()
    return {
        "as_of": as_of[0].isoformat() if len(as_of) == 1 else [d.isoformat() for d in sorted(as_of)],
        "champion_version": champion.version,
        "challenger_version": challenger.version,
        **report,
    }
