"""The hidden truth of a synthetic world: only the simulator writes it, only evaluation reads it.

Layout under the truth directory (`base.truth_dir`, never inside the raw folder):
- `users.parquet`      one row per user: static hidden traits (UserTruth)
- `accounts.parquet`   one row per user and linked network (AccountTruth)
- `influence.parquet`  latent influence per user over time, weekly (InfluenceTruth)
- `corruption.parquet` how many rows of which kind were broken, per table and day (CorruptionTruth)
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandera.polars as pa
import polars as pl

from influence.vocabulary import NETWORKS
from simulation.engine import World


class TruthModel(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True


class UserTruth(TruthModel):
    user_id: int = pa.Field(unique=True)
    is_bot: bool
    bought_followers: bool
    """Bought followers on one account (before or inside the window)."""
    bought_likes: bool
    """Gets bot likes on every post of one account."""
    in_pod: bool
    pod_id: int = pa.Field(nullable=True)
    selectivity: float = pa.Field(ge=0)
    """Exponent on a post's appeal when reacting: ~0 reacts to anything, >2 is picky."""
    reactivity: float = pa.Field(ge=0)
    """How much the person engages with others at all (0 for bots)."""
    indiscriminate: bool
    """Reacts to almost everything (selectivity < 0.2); bots included."""
    activity: float
    base_influence: float
    """Long-run level the latent influence reverts to."""
    created_at: pl.Date
    """Day the user's first account was created."""
    n_networks: int = pa.Field(ge=1, le=len(NETWORKS))
    networks: pl.List(pl.String)


class AccountTruth(TruthModel):
    user_id: int
    network: str = pa.Field(isin=list(NETWORKS))
    audience_potential: float = pa.Field(ge=0)
    """Real followers the account grows towards (bought ones excluded)."""
    bought_followers_total: float = pa.Field(ge=0)
    bought_followers_day: pl.Date = pa.Field(nullable=True)
    """Day of an in-window follower purchase (a jump in the counter); null if none."""
    buys_likes: bool
    post_rate: float = pa.Field(ge=0)
    influence_offset: float
    """Network-specific shift of the user's latent influence on this account."""
    pod_id: int = pa.Field(nullable=True)


class InfluenceTruth(TruthModel):
    user_id: int
    date: pl.Date
    latent_influence: float
    """Standard-normal scale for people; bots sit at -3. Valid from `date` until the next row."""


class CorruptionTruth(TruthModel):
    table: str
    date: pl.Date
    kind: str
    rows: int = pa.Field(ge=0)


TRUTH_MODELS: dict[str, type[TruthModel]] = {
    "users": UserTruth,
    "accounts": AccountTruth,
    "influence": InfluenceTruth,
    "corruption": CorruptionTruth,
}


def _day(world: World, day: np.ndarray) -> pl.Series:
    start = world.cfg.start_date
    return pl.Series([start + timedelta(days=int(d)) for d in day], dtype=pl.Date)


def users_truth(world: World) -> pl.DataFrame:
    users, acc = world.pop.users, world.pop.accounts
    n = len(users.user_id)
    first_day = np.full(n, np.iinfo(np.int32).max)
    np.minimum.at(first_day, acc.user, acc.created_day)
    pod = np.full(n, -1)
    np.maximum.at(pod, acc.user, acc.pod)
    networks = (
        pl.DataFrame({"u": acc.user, "network": np.array(NETWORKS)[acc.network]})
        .group_by("u", maintain_order=True)
        .agg("network")
        .sort("u")
    )
    start = world.cfg.start_date
    return pl.DataFrame(
        {
            "user_id": users.user_id,
            "is_bot": users.is_bot,
            "bought_followers": users.bought_followers,
            "bought_likes": users.bought_likes,
            "in_pod": pod >= 0,
            "pod_id": pl.Series(pod).replace(-1, None),
            "selectivity": users.selectivity,
            "reactivity": users.reactivity,
            "indiscriminate": users.selectivity < 0.2,
            "activity": users.activity,
            "base_influence": users.influence,
            "created_at": [start + timedelta(days=int(d)) for d in first_day],
            "n_networks": np.bincount(acc.user, minlength=n),
            "networks": networks["network"],
        }
    ).pipe(UserTruth.validate)


def accounts_truth(world: World) -> pl.DataFrame:
    acc = world.pop.accounts
    return pl.DataFrame(
        {
            "user_id": world.pop.users.user_id[acc.user],
            "network": np.array(NETWORKS)[acc.network],
            "audience_potential": acc.audience_potential,
            "bought_followers_total": acc.bought_before + acc.buy_size,
            "bought_followers_day": _day(world, np.maximum(acc.buy_day, 0)).set(
                pl.Series(acc.buy_day < 0), None
            ),
            "buys_likes": acc.buys_likes,
            "post_rate": acc.post_rate,
            "influence_offset": acc.influence_offset,
            "pod_id": pl.Series(acc.pod).replace(-1, None),
        }
    ).pipe(AccountTruth.validate)


def influence_rows(world: World, d: date, influence: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": world.pop.users.user_id,
            "date": pl.Series([d], dtype=pl.Date).extend_constant(d, len(influence) - 1),
            "latent_influence": influence.astype(np.float64),
        }
    )


def corruption_rows(counts: list[tuple[str, date, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        counts,
        schema={"table": pl.String, "date": pl.Date, "kind": pl.String, "rows": pl.Int64},
        orient="row",
    ).pipe(CorruptionTruth.validate)
