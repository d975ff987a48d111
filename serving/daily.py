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
and window of the snapshot except the account's age and days since linking, which grow by one
each day whatever the user does: time passing is not a signal change. Consequences worth
knowing: the score catches up with the model only on days the signals change (in practice every
active user's signals change daily, as events enter and leave the 7/30/90-day windows); a new
champion moves a user's score through the same smoothing, so a model change is spread over days
too (compare-models shows its size before promotion). The percentile is that of the published
score in the model's reference population; `raw_score` and the per-network points are those of
the model's score of the day.

Re-running a day replaces it; later days are not recomputed (re-run them with `backfill`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from features.snapshot import SIGNAL_COLUMNS
from influence.vocabulary import NETWORKS

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
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def signal_fingerprints(snapshots: pl.DataFrame) -> pl.DataFrame:
    """One 64-bit fingerprint per user of a long snapshot table (user_id, signal_hash): equal
    exactly when every (network, window) row carries the same signals, nulls included. Built
    from the IEEE bits of the values, so it does not depend on library versions."""
    if snapshots.height == 0:
        return pl.DataFrame(schema={"user_id": pl.String, "signal_hash": pl.UInt64})
    frame = snapshots.sort("user_id", "network", "window_days")
    values = frame.select(pl.col(FINGERPRINT_SIGNALS).cast(pl.Float64)).to_numpy()
    values = np.ascontiguousarray(values + 0.0)  # -0.0 and 0.0 are the same signal
    values[np.isnan(values)] = np.nan  # one bit pattern for every null
    bits = values.view(np.uint64)
    network_code = frame["network"].replace_strict(
        {n: i + 1 for i, n in enumerate(NETWORKS)}, default=len(NETWORKS) + 1, return_dtype=pl.UInt64
    )
    key = network_code.to_numpy() * np.uint64(1_000) + frame["window_days"].cast(pl.UInt64).to_numpy()
    with np.errstate(over="ignore"):
        row_hash = _mix(key + _GOLDEN)
        for j in range(bits.shape[1]):
            row_hash = _mix(row_hash ^ _mix(bits[:, j] + _GOLDEN * np.uint64(j + 1)))
        users = frame["user_id"]
        starts = np.flatnonzero(np.r_[True, users[1:].to_numpy() != users[:-1].to_numpy()])
        # rows of a user are distinct (network, window) pairs: their sum does not depend on order
        user_hash = np.add.reduceat(row_hash, starts)
    return pl.DataFrame(
        {"user_id": users.gather(starts), "signal_hash": user_hash},
        schema={"user_id": pl.String, "signal_hash": pl.UInt64},
    )


# --------------------------------------------------------------------------------------------
# smoothing
# --------------------------------------------------------------------------------------------


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
