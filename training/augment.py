"""Partial snapshots for training: the ways real users arrive, made from complete ones.

Applied to the long snapshot table (`features.snapshot.Snapshots`) before featurize, so the
partial rows go through the one featurize function exactly like a partial HTTP request does.
Every augmented snapshot keeps its source's as_of and outcome label; its user_id gets a suffix
(`<user_id>~one`, `~pub`, `~opt`) that `source_user` strips.

- one network:   a user with several networks linked shows only one of them (uniform choice);
- public only:   only the public profile counters (followers, following, lists, posts) are
                 known; half of these rows also keep a single network (Twitter when linked),
                 like a public Twitter profile;
- drop optional: each optional signal is unknown with probability 1/2 (the same choice for all
                 of the user's networks and windows), like a client sending what it has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.snapshot import SIGNAL_COLUMNS

PUBLIC_COUNTERS: tuple[str, ...] = ("followers", "following", "lists", "posts")
SUFFIX_SEPARATOR = "~"
KEY = ["user_id", "as_of"]


@dataclass(frozen=True)
class AugmentShares:
    one_network: float = 0.15
    public_only: float = 0.10
    drop_optional: float = 0.10

    @classmethod
    def from_params(cls, train) -> AugmentShares:
        return cls(train.augment_one_network, train.augment_public_only, train.augment_drop_optional)


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
    return _tag(snapshots.join(kept, on=[*KEY, "network"], how="semi"), "one")


def public_only(snapshots: pl.DataFrame, share: float, rng: np.random.Generator) -> pl.DataFrame:
    keys = _keys(snapshots)
    keys = keys.filter(pl.Series(rng.random(keys.height) < share))
    single = pl.Series(rng.random(keys.height) < 0.5)
    kept = _pick_network(keys.filter(single), rng, prefer="twitter")
    rows = pl.concat(
        [
            snapshots.join(keys.filter(~single).select(KEY), on=KEY, how="semi"),
            snapshots.join(kept, on=[*KEY, "network"], how="semi"),
        ]
    )
    hidden = [c for c in SIGNAL_COLUMNS if c not in PUBLIC_COUNTERS]
    return _tag(rows.with_columns(pl.lit(None, pl.Float64).alias(c) for c in hidden), "pub")


def drop_optional(snapshots: pl.DataFrame, share: float, rng: np.random.Generator) -> pl.DataFrame:
    keys = _keys(snapshots).select(KEY)
    keys = keys.filter(pl.Series(rng.random(keys.height) < share))
    masks = rng.random((keys.height, len(SIGNAL_COLUMNS))) < 0.5
    keys = keys.with_columns(
        pl.Series(f"__drop_{c}", masks[:, i]) for i, c in enumerate(SIGNAL_COLUMNS)
    )
    rows = snapshots.join(keys, on=KEY, how="inner")
    rows = rows.with_columns(
        pl.when(pl.col(f"__drop_{c}")).then(None).otherwise(pl.col(c)).alias(c)
        for c in SIGNAL_COLUMNS
    ).select(snapshots.columns)
    return _tag(rows, "opt")


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
    ]
    return pl.concat(parts).select(snapshots.columns)
