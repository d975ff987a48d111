"""Break a tiny share of rows the way a real broken export does, so validation has work.

Pure: (frame, share, rng) -> (frame with some rows broken, counts per kind). The dtypes stay
those of the raw schema (a broken export still parses); only the values are wrong.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from influence.vocabulary import NETWORKS, actions_of

DANGLING_POST_BASE = 9_000_000_000_000
UNKNOWN_NETWORK = "myspace"
UNKNOWN_ACTION = "poke"

KINDS: dict[str, tuple[str, ...]] = {
    "interactions": (
        "unknown_action",
        "action_not_on_network",
        "unknown_network",
        "self_interaction",
        "dangling_post",
        "null_post_on_post_action",
        "duplicate_id",
        "null_id",
        "before_account",
        "future_ts",
    ),
    "posts": ("duplicate_id", "null_id", "unknown_network", "future_ts", "before_account"),
    "profiles": ("negative_counter", "null_id", "unknown_network"),
}

_TIME_COLUMN = {"interactions": "ts", "posts": "created_at"}
_ANCIENT = datetime(2001, 1, 1)
_CLOCK_BUG = datetime(2099, 1, 1)
"""Where a broken clock puts timestamps: decades after any export."""
_ROW = "__row"


def _foreign_action(network: str) -> str:
    """An action of the vocabulary that this network does not have."""
    allowed = set(actions_of(network)) if network in NETWORKS else set()
    for candidate in ("subscribe", "retweet", "reblog", "tip_save"):
        if candidate not in allowed:
            return candidate
    raise AssertionError("unreachable")


def _break(
    table: str, kind: str, rows: pl.DataFrame, rng: np.random.Generator, export_time: datetime
) -> pl.DataFrame:
    n = rows.height
    if kind == "duplicate_id":
        return rows  # the caller keeps the original too
    if kind == "unknown_action":
        return rows.with_columns(action=pl.lit(UNKNOWN_ACTION))
    if kind == "action_not_on_network":
        return rows.with_columns(
            action=pl.col("network").map_elements(_foreign_action, return_dtype=pl.String)
        )
    if kind == "unknown_network":
        return rows.with_columns(network=pl.lit(UNKNOWN_NETWORK))
    if kind == "self_interaction":
        return rows.with_columns(target_id=pl.col("actor_id"))
    if kind == "dangling_post":
        ids = DANGLING_POST_BASE + rng.integers(0, 10**9, n)
        return rows.with_columns(post_id=pl.Series(ids, dtype=pl.Int64))
    if kind == "null_post_on_post_action":
        return rows.with_columns(post_id=pl.lit(None, dtype=pl.Int64))
    if kind == "null_id":
        column = "actor_id" if table == "interactions" else "user_id"
        return rows.with_columns(pl.lit(None, dtype=pl.Int64).alias(column))
    if kind == "negative_counter":
        return rows.with_columns(followers=-pl.col("followers") - 1)
    if kind in ("before_account", "future_ts"):
        col = _TIME_COLUMN[table]
        offsets = rng.integers(0, 86_400 * 365, n)
        anchor = _ANCIENT if kind == "before_account" else max(_CLOCK_BUG, export_time)
        times = [anchor + timedelta(seconds=int(s)) for s in offsets]
        return rows.with_columns(pl.Series(col, times, dtype=pl.Datetime("us")))
    raise ValueError(f"unknown corruption kind {kind!r}")


def corrupt(
    table: str, frame: pl.DataFrame, share: float, rng: np.random.Generator, export_time: datetime
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Break about `share` of the rows of one chunk (kinds drawn evenly)."""
    kinds = KINDS.get(table, ())
    n_bad = rng.binomial(frame.height, share) if kinds and frame.height and share > 0 else 0
    if n_bad == 0:
        return frame, {}
    frame = frame.with_row_index(_ROW)
    picked = np.sort(rng.choice(frame.height, size=n_bad, replace=False))
    kind_of = rng.integers(0, len(kinds), n_bad)
    if table == "interactions":
        has_post = frame["post_id"].is_not_null().to_numpy()[picked]
        needs_post = np.array([kinds[k] == "null_post_on_post_action" for k in kind_of])
        kind_of = np.where(needs_post & ~has_post, kinds.index("dangling_post"), kind_of)
    counts: dict[str, int] = {}
    broken = []
    for k in np.unique(kind_of):
        kind = kinds[k]
        idx = picked[kind_of == k]
        broken.append(_break(table, kind, frame[idx], rng, export_time))
        counts[kind] = len(idx)
    duplicated = picked[np.array([kinds[k] == "duplicate_id" for k in kind_of])]
    replaced = np.setdiff1d(picked, duplicated)
    keep = np.ones(frame.height, dtype=bool)
    keep[replaced] = False
    out = pl.concat([frame.filter(pl.Series(keep)), *broken]).sort(_ROW, maintain_order=True)
    return out.drop(_ROW), counts
