"""Engine arrays -> raw tables in exactly the shape of `features.raw_schema`.

Partitioned tables are written without their `date` column: it lives in the hive path
(`date=YYYY-MM-DD`) and comes back on `pl.scan_parquet(..., hive_partitioning=True)`.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from features.raw_schema import RAW_TABLES
from influence.vocabulary import ALL_ACTIONS, NETWORKS
from simulation.engine import DAY_SEC, DayOutput, World

_EPOCH = date(1970, 1, 1)
_NETWORK_NAMES = dict(enumerate(NETWORKS))
_ACTION_NAMES = dict(enumerate(ALL_ACTIONS))


def schema_of(table: str, with_date: bool = False) -> pl.Schema:
    """Polars dtypes of a raw table, from its pandera model (without `date` unless asked)."""
    columns = RAW_TABLES[table].to_schema().columns
    return pl.Schema(
        {name: col.dtype.type for name, col in columns.items() if with_date or name != "date"}
    )


def epoch_day(d: date) -> int:
    return (d - _EPOCH).days


def _timestamps(epoch_days: np.ndarray | int, sec: np.ndarray) -> pl.Series:
    micros = (np.asarray(epoch_days, dtype=np.int64) * DAY_SEC + sec.astype(np.int64)) * 1_000_000
    return pl.Series(micros, dtype=pl.Int64).cast(pl.Datetime("us"))


def _names(codes: np.ndarray, names: dict[int, str]) -> pl.Series:
    return pl.Series(codes.astype(np.int64)).replace_strict(names, return_dtype=pl.String)


def accounts_frame(world: World) -> pl.DataFrame:
    acc = world.pop.accounts
    start = epoch_day(world.cfg.start_date)
    return pl.DataFrame(
        {
            "user_id": world.pop.users.user_id[acc.user],
            "network": _names(acc.network, _NETWORK_NAMES),
            "created_at": _timestamps(start + acc.created_day, acc.created_sec),
            "linked_at": _timestamps(start + acc.linked_day, acc.linked_sec),
        }
    ).cast(dict(schema_of("accounts")))


def day_frames(world: World, out: DayOutput) -> dict[str, pl.DataFrame]:
    """The posts, interactions and profiles rows of one day (no `date` column)."""
    acc, user_id = world.pop.accounts, world.pop.users.user_id
    day = epoch_day(world.cfg.start_date) + out.day
    posts = pl.DataFrame(
        {
            "post_id": out.post_id,
            "user_id": user_id[acc.user[out.post_account]],
            "network": _names(acc.network[out.post_account], _NETWORK_NAMES),
            "created_at": _timestamps(day, out.post_sec),
            "has_media": out.post_media,
        }
    )
    interactions = pl.DataFrame(
        {
            "interaction_id": out.interaction_id,
            "ts": _timestamps(day, out.interaction_sec),
            "network": _names(acc.network[out.actor], _NETWORK_NAMES),
            "actor_id": user_id[acc.user[out.actor]],
            "target_id": user_id[acc.user[out.target]],
            "action": _names(out.action, _ACTION_NAMES),
            "post_id": pl.Series(out.interaction_post).replace(-1, None),
        }
    )
    profiles = pl.DataFrame(
        {
            "user_id": user_id[acc.user[out.profile_account]],
            "network": _names(acc.network[out.profile_account], _NETWORK_NAMES),
            "followers": out.followers,
            "following": out.following,
            "lists": pl.Series(out.lists).replace(-1, None),
            "posts_total": out.posts_total,
        }
    )
    return {
        name: frame.cast(dict(schema_of(name)))
        for name, frame in (
            ("posts", posts),
            ("interactions", interactions),
            ("profiles", profiles),
        )
    }


def check_dtypes(table: str, frame: pl.DataFrame) -> None:
    """Cheap guard on every chunk written: exactly the schema's columns and dtypes."""
    expected = schema_of(table, with_date="date" in frame.columns)
    if frame.schema != expected:
        raise TypeError(f"{table}: columns {dict(frame.schema)} differ from {dict(expected)}")


def with_date(frame: pl.DataFrame, d: date) -> pl.DataFrame:
    return frame.with_columns(pl.lit(d, dtype=pl.Date).alias("date"))
