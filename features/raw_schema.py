"""Pandera models of the four raw tables: the shape of a multi-network export.

Ids are the networks' own 64-bit integers; timestamps are naive UTC. Row-level rules live here;
rules that need another table (dangling post ids, rows before the account existed) live in
`features.validate`.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from influence.vocabulary import ALL_ACTIONS, NETWORKS


class RawModel(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True


class Accounts(RawModel):
    """One row per user and linked network."""

    user_id: int = pa.Field(nullable=False)
    network: str = pa.Field(isin=list(NETWORKS))
    created_at: pl.Datetime = pa.Field(nullable=False)
    """When the user's account on that network was created."""
    linked_at: pl.Datetime = pa.Field(nullable=False)
    """When the user linked that network to the platform."""


class Profiles(RawModel):
    """Daily public counters per user and network (hive-partitioned by `date`)."""

    date: pl.Date = pa.Field(nullable=False)
    user_id: int = pa.Field(nullable=False)
    network: str = pa.Field(isin=list(NETWORKS))
    followers: int = pa.Field(ge=0)
    following: int = pa.Field(ge=0)
    lists: int = pa.Field(ge=0, nullable=True)
    """Null on networks without public lists."""
    posts_total: int = pa.Field(ge=0)


class Posts(RawModel):
    """One row per post (hive-partitioned by `date`)."""

    date: pl.Date = pa.Field(nullable=False)
    post_id: int = pa.Field(nullable=False, unique=False)
    user_id: int = pa.Field(nullable=False)
    network: str = pa.Field(isin=list(NETWORKS))
    created_at: pl.Datetime = pa.Field(nullable=False)
    has_media: bool = pa.Field(nullable=False)


class Interactions(RawModel):
    """One row per action of an actor towards a target user (hive-partitioned by `date`)."""

    date: pl.Date = pa.Field(nullable=False)
    interaction_id: int = pa.Field(nullable=False)
    ts: pl.Datetime = pa.Field(nullable=False)
    network: str = pa.Field(isin=list(NETWORKS))
    actor_id: int = pa.Field(nullable=False)
    target_id: int = pa.Field(nullable=False)
    action: str = pa.Field(isin=list(ALL_ACTIONS))
    post_id: int = pa.Field(nullable=True)
    """Null for actions made on the user rather than a post (mention, recommendation...)."""


RAW_TABLES: dict[str, type[RawModel]] = {
    "accounts": Accounts,
    "profiles": Profiles,
    "posts": Posts,
    "interactions": Interactions,
}

# Tables partitioned by day on disk: <raw>/<table>/date=YYYY-MM-DD/part-0.parquet
PARTITIONED_BY_DATE: frozenset[str] = frozenset({"profiles", "posts", "interactions"})
