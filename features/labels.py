"""Outcome labels: how much a user's activity moved people to act in the H days from T.

For a user and as-of date T the outcome is computed from interactions dated in [T, T + H) only
(H = `labels.horizon_days`), on the networks the user had linked before T (the networks their
features at T describe):

    outcome = sum over distinct engagers e of  sel(e) * k(e) ** repeat_exponent
              ---------------------------------------------------------------
                          (1 + posts in [T, T + H)) ** post_exponent

- k(e): reactions engager e gave the user in the horizon. With `repeat_exponent` < 1 the 100th
  reaction from one person is worth far less than the first from someone new (0.25: 100 likes
  from one person count like 3.2 people), so pods and superfans cannot stand in for an audience:
  "100 retweets from 100 people count more than 100 from one".
- sel(e): the mean selectivity of e's reactions to the user, each reaction weighing
  n ** -selectivity_power where n is how many reactions e gave that day on that network (1: one
  vote per person and day, as in the `selective_reactions` signal). Bots that like 40 posts a day
  hand out 1/40 each: bought and automated volume earns almost nothing.
- posts: reactions earned per piece of content, with diminishing returns (`post_exponent` 0.5):
  posting four times as much with the same response per post doubles the outcome instead of
  quadrupling it, and a flood of posts that each draw little is not rewarded.

The label is the outcome itself (>= 0, heavy-tailed); training applies `train.label_transform`
(log1p). Diagnostics kept beside it: raw reactions, distinct engagers and posts in the horizon.
Every linked user gets a label (0 when nobody reacted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import narwhals as nw

from features.build import VOCABULARY_COLUMNS, days_between, linked_accounts

LABEL_COLUMNS = ("label", "label_reactions", "label_engagers", "label_posts")


@dataclass(frozen=True)
class LabelSources:
    accounts: nw.LazyFrame
    posts: nw.LazyFrame
    interactions: nw.LazyFrame


def read_label_sources(engine, root: Path, as_of: date, horizon_days: int) -> LabelSources:
    """Only the partitions of the horizon [T, T + H)."""
    days = days_between(as_of, as_of + timedelta(days=horizon_days))
    codes = VOCABULARY_COLUMNS
    return LabelSources(
        accounts=engine.scan(
            root, "accounts", ["user_id", "network", "created_at", "linked_at"], codes=codes
        ),
        posts=engine.scan(root, "posts", ["date", "user_id", "network"], days, codes),
        interactions=engine.scan(
            root, "interactions", ["date", "network", "actor_id", "target_id"], days, codes
        ),
    )


def in_horizon(as_of: date, horizon_days: int) -> list[nw.Expr]:
    return [
        nw.col("date") >= nw.lit(as_of),
        nw.col("date") < nw.lit(as_of + timedelta(days=horizon_days)),
    ]


def outcome_labels(
    sources: LabelSources,
    as_of: date,
    *,
    horizon_days: int = 30,
    selectivity_power: float = 1.0,
    repeat_exponent: float = 0.25,
    post_exponent: float = 0.5,
) -> nw.LazyFrame:
    """(user_id, as_of, label, label_reactions, label_engagers, label_posts) for every user
    with a network linked before T."""
    linked = linked_accounts(sources.accounts, as_of).select("user_id", "network")
    events = sources.interactions.filter(
        *in_horizon(as_of, horizon_days), ~nw.col("network").is_null()
    )
    actor_days = events.group_by("network", "actor_id", "date").agg(
        nw.len().cast(nw.Float64).alias("n")
    )
    weighted = events.join(actor_days, on=["network", "actor_id", "date"]).with_columns(
        (nw.col("n").log() * -selectivity_power).exp().alias("selectivity")
    )
    received = weighted.join(
        linked.rename({"user_id": "target_id"}), on=["target_id", "network"], how="semi"
    )
    engagers = (
        received.group_by("target_id", "actor_id")
        .agg(nw.len().cast(nw.Float64).alias("k"), nw.col("selectivity").mean())
        .with_columns(
            (nw.col("selectivity") * (nw.col("k").log() * repeat_exponent).exp()).alias("value")
        )
        .group_by("target_id")
        .agg(
            nw.col("value").sum().alias("engagement"),
            nw.col("k").sum().alias("label_reactions"),
            nw.len().cast(nw.Float64).alias("label_engagers"),
        )
        .rename({"target_id": "user_id"})
    )
    posts = (
        sources.posts.filter(*in_horizon(as_of, horizon_days), ~nw.col("network").is_null())
        .join(linked, on=["user_id", "network"], how="semi")
        .group_by("user_id")
        .agg(nw.len().cast(nw.Float64).alias("label_posts"))
    )
    users = linked.select("user_id").unique()
    return (
        users.join(engagers, on="user_id", how="left")
        .join(posts, on="user_id", how="left")
        .with_columns(
            nw.col("engagement", "label_reactions", "label_engagers", "label_posts").fill_null(0.0)
        )
        .select(
            nw.col("user_id").cast(nw.String),
            nw.lit(as_of).alias("as_of"),
            (
                nw.col("engagement") / ((nw.col("label_posts") + 1.0).log() * post_exponent).exp()
            ).alias("label"),
            "label_reactions",
            "label_engagers",
            "label_posts",
        )
    )


def training_as_of_dates(
    data_end: date, *, horizon_days: int, step_days: int, n_as_of: int
) -> list[date]:
    """Rolling as-of dates, oldest first: the latest T with T + H <= the end of the data
    (exclusive), then every `step_days` before it."""
    latest = data_end - timedelta(days=horizon_days)
    return sorted(latest - timedelta(days=step_days * i) for i in range(n_as_of))
