"""Partial snapshots for training: the ways real users arrive, made from complete ones.

Applied to the long snapshot table (`features.snapshot.Snapshots`) before featurize, so the
partial rows go through the one featurize function exactly like a partial HTTP request does.
Every augmented snapshot keeps its source's as_of and outcome label; its user_id gets a suffix
(`<user_id>~one`, `~pub`, `~opt`) that `source_user` strips.

- one network:   a user with several networks linked shows only one of them (uniform choice);
- public only:   only the public profile counters (followers, following, lists, posts) are
                 known; half of these rows also keep a single network (Twitter when linked),
                 like a public Twitter profile;
- client counters: only what a client can count itself is known (audience, posts, reactions
                 received and sent, distinct engagers, account age); what only the platform's
                 engagement graph gives (selectivity, engager influence, PageRank, reciprocity,
                 engagers by family, conversations, active days) is unknown: the usual API request;
- drop optional: each optional signal is unknown with probability 1/2 (the same choice for all
                 of the user's networks and windows), like a client sending what it has;
- bought:        on one network, 1,000-20,000 bought followers (a jump in the counter) and
                 500-10,000 likes from 20-400 bots that like everything (~40 a day, so each like
                 weighs 1/40 in the selective reactions, and bots sit at the bottom of engager
                 influence). The label stays: bought audiences and bot likes move nobody, which
                 is the invariance the score promises ("bots don't pay").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.snapshot import SIGNAL_COLUMNS
from influence.vocabulary import Family, actions_in_family

PUBLIC_COUNTERS: tuple[str, ...] = ("followers", "following", "lists", "posts")
PLATFORM_SIGNALS: tuple[str, ...] = (
    "active_days",
    "unique_engagers_approval",
    "unique_engagers_conversation",
    "unique_engagers_amplification",
    "unique_engagers_attention",
    "unique_engagers_endorsement",
    "selective_reactions",
    "engager_influence",
    "pagerank",
    "cross_network_pagerank",
    "conversations_started",
    "reciprocity",
)
"""Signals only the platform's engagement graph gives; a client's own counters are the rest."""
SUFFIX_SEPARATOR = "~"
KEY = ["user_id", "as_of"]


@dataclass(frozen=True)
class AugmentShares:
    one_network: float = 0.15
    public_only: float = 0.10
    drop_optional: float = 0.10
    bought: float = 0.10
    client_counters: float = 0.15

    @classmethod
    def from_params(cls, train) -> AugmentShares:
        return cls(
            train.augment_one_network,
            train.augment_public_only,
            train.augment_drop_optional,
            train.augment_bought,
            train.augment_client_counters,
        )


def source_user(user_id: pl.Expr) -> pl.Expr:
    """The user an (augmented) row comes from."""
    return user_id.str.split(SUFFIX_SEPARATOR).list.first()


def _keys(snapshots: pl.DataFrame) -> pl.DataFrame:
    return (
        snapshots.group_by(KEY)
        .agg(pl.col("network").unique().sort().alias("networks"))
        .sort(KEY)
    )


def _tag(frame: pl.DataFrame, tag: str) -> pl.DataFrame:
    return frame.with_columns((pl.col("user_id") + f"{SUFFIX_SEPARATOR}{tag}").alias("user_id"))


def _pick_network(keys: pl.DataFrame, rng: np.random.Generator, prefer: str | None = None) -> pl.DataFrame:
    picks = []
    for networks in keys["networks"].to_list():
        if prefer is not None and prefer in networks:
            picks.append(prefer)
        else:
            picks.append(networks[int(rng.integers(len(networks)))])
    return keys.select(KEY).with_columns(pl.Series("network", picks, dtype=pl.String))


def one_network(snapshots: pl.DataFrame, share: float, rng: np.random.Generator) -> pl.DataFrame:
    keys = _keys(snapshots).filter(pl.col("networks").list.len() > 1)
    keys = keys.filter(pl.Series(rng.random(keys.height) < share))
    kept = _pick_network(keys, rng)
    return _tag(snapshots.join(kept, on=[*KEY, "network"], how="semi", nulls_equal=True), "one")


def public_only(snapshots: pl.DataFrame, share: float, rng: np.random.Generator) -> pl.DataFrame:
    keys = _keys(snapshots)
    keys = keys.filter(pl.Series(rng.random(keys.height) < share))
    single = pl.Series(rng.random(keys.height) < 0.5)
    kept = _pick_network(keys.filter(single), rng, prefer="twitter")
    rows = pl.concat(
        [
            snapshots.join(keys.filter(~single).select(KEY), on=KEY, how="semi", nulls_equal=True),
            snapshots.join(kept, on=[*KEY, "network"], how="semi", nulls_equal=True),
        ]
    )
    hidden = [c for c in SIGNAL_COLUMNS if c not in PUBLIC_COUNTERS]
    return _tag(rows.with_columns(pl.lit(None, pl.Float64).alias(c) for c in hidden), "pub")


def client_counters(snapshots: pl.DataFrame, share: float, rng: np.random.Generator) -> pl.DataFrame:
    keys = _keys(snapshots).select(KEY)
    keys = keys.filter(pl.Series(rng.random(keys.height) < share))
    rows = snapshots.join(keys, on=KEY, how="semi", nulls_equal=True)
    return _tag(rows.with_columns(pl.lit(None, pl.Float64).alias(c) for c in PLATFORM_SIGNALS), "cli")


def drop_optional(snapshots: pl.DataFrame, share: float, rng: np.random.Generator) -> pl.DataFrame:
    keys = _keys(snapshots).select(KEY)
    keys = keys.filter(pl.Series(rng.random(keys.height) < share))
    masks = rng.random((keys.height, len(SIGNAL_COLUMNS))) < 0.5
    keys = keys.with_columns(
        pl.Series(f"__drop_{c}", masks[:, i]) for i, c in enumerate(SIGNAL_COLUMNS)
    )
    rows = snapshots.join(keys, on=KEY, how="inner", nulls_equal=True)
    rows = rows.with_columns(
        pl.when(pl.col(f"__drop_{c}")).then(None).otherwise(pl.col(c)).alias(c)
        for c in SIGNAL_COLUMNS
    ).select(snapshots.columns)
    return _tag(rows, "opt")


BOT_LIKES_PER_DAY = 40.0
PURCHASE_WINDOW = 30


def _approval_action(network: str) -> str:
    return actions_in_family(network, Family.APPROVAL)[0]


def bought(snapshots: pl.DataFrame, share: float, rng: np.random.Generator) -> pl.DataFrame:
    keys = _keys(snapshots)
    keys = keys.filter(pl.Series(rng.random(keys.height) < share))
    n = keys.height
    plan = _pick_network(keys, rng).with_columns(
        pl.Series("__followers", np.round(np.exp(rng.uniform(np.log(1e3), np.log(2e4), n)))),
        pl.Series("__likes", np.round(np.exp(rng.uniform(np.log(500), np.log(1e4), n)))),
        pl.Series("__bots", np.round(np.exp(rng.uniform(np.log(20), np.log(400), n)))),
        pl.Series("__bot_influence", rng.uniform(0.0, 5.0, n)),
    )
    rows = snapshots.join(keys.select(KEY), on=KEY, how="semi", nulls_equal=True)
    rows = rows.join(plan, on=[*KEY, "network"], how="left", nulls_equal=True)
    hit = pl.col("__likes").is_not_null()
    # the purchase as a client's 30-day window becomes the model's windows (features.snapshot's
    # window rule: counts and changes scale with days), so the partial rows look like a bought
    # account sent through the API as well as like one the batch pipeline saw buying steadily
    share_in_window = pl.col("window_days") / PURCHASE_WINDOW
    likes = pl.col("__likes") * share_in_window
    bots = pl.col("__bots") * share_in_window
    engagers = pl.col("unique_engagers").fill_null(0.0)
    influence = (
        pl.col("engager_influence").fill_null(pl.col("__bot_influence")) * engagers
        + pl.col("__bot_influence") * bots
    ) / (engagers + bots)
    changes = {
        "followers": pl.col("followers").fill_null(0.0) + pl.col("__followers"),
        "follower_growth": pl.col("follower_growth").fill_null(0.0)
        + pl.col("__followers") * share_in_window,
        "unique_engagers": engagers + bots,
        "unique_engagers_approval": pl.col("unique_engagers_approval").fill_null(0.0) + bots,
        "selective_reactions": pl.col("selective_reactions").fill_null(0.0)
        + likes / BOT_LIKES_PER_DAY,
        "engager_influence": influence,
    }
    like_columns = sorted({f"received_{_approval_action(n)}" for n in rows["network"].unique()})
    for column in like_columns:
        action = column.removeprefix("received_")
        mine = pl.col("network").replace_strict(
            {n: _approval_action(n) for n in rows["network"].unique()}, return_dtype=pl.String
        ) == action
        changes[column] = pl.when(mine).then(pl.col(column).fill_null(0.0) + likes).otherwise(pl.col(column))
    rows = rows.with_columns(
        pl.when(hit).then(expr).otherwise(pl.col(name)).alias(name) for name, expr in changes.items()
    ).select(snapshots.columns)
    return _tag(rows, "bot")


def augment_snapshots(
    snapshots: pl.DataFrame, shares: AugmentShares, seed: int
) -> pl.DataFrame:
    """Partial copies of sampled snapshots (see the module docstring); the input is not
    included. Deterministic for a seed and an input set (whatever its row order)."""
    rng = np.random.default_rng(seed)
    snapshots = snapshots.sort([*KEY, "network", "window_days"])
    parts = [
        one_network(snapshots, shares.one_network, rng),
        public_only(snapshots, shares.public_only, rng),
        drop_optional(snapshots, shares.drop_optional, rng),
        bought(snapshots, shares.bought, rng),
        client_counters(snapshots, shares.client_counters, rng),
    ]
    return pl.concat(parts).select(snapshots.columns)
