"""Hand-built raw folders for the validation tests (no simulator involved).

`tiny_world()` is a valid world small enough to read in full: three users, five linked accounts,
two days. `good_row(table)` is a valid row to copy and spoil one field of. `random_world()` is a
vectorised valid world of any size, for scale checks. `write_raw()` lays a world out on disk the
way the simulator does: accounts in one file, the other tables hive-partitioned by date.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.raw_schema import PARTITIONED_BY_DATE, RAW_TABLES
from influence.vocabulary import VOCABULARY

# Reference time the tests validate against: everything in tiny_world() is before it.
NOW = datetime(2026, 6, 1)

World = dict[str, pl.DataFrame]


def schema_of(table: str) -> pl.Schema:
    columns = RAW_TABLES[table].to_schema().columns
    return pl.Schema({name: column.dtype.type for name, column in columns.items()})


def frame(table: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema_of(table), orient="row")


def _dt(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour)


def tiny_world() -> World:
    accounts = [
        (1, "twitter"),
        (1, "facebook"),
        (2, "twitter"),
        (3, "twitter"),
        (3, "linkedin"),
    ]
    account_rows = [
        {
            "user_id": u,
            "network": n,
            "created_at": datetime(2026, 1, 1),
            "linked_at": datetime(2026, 2, 1),
        }
        for u, n in accounts
    ]
    profile_rows = [
        {
            "date": date(2026, 3, day),
            "user_id": u,
            "network": n,
            "followers": 10 * u + day,
            "following": 5,
            "lists": 1 if n == "twitter" else None,
            "posts_total": day,
        }
        for day in (1, 2)
        for u, n in accounts
    ]
    post_rows = [
        {"post_id": pid, "user_id": u, "network": n, "created_at": _dt(d, 9), "has_media": m}
        for pid, u, n, d, m in [
            (100, 1, "twitter", 1, True),
            (101, 2, "twitter", 1, False),
            (102, 1, "facebook", 2, False),
            (103, 3, "linkedin", 2, True),
        ]
    ]
    for row in post_rows:
        row["date"] = row["created_at"].date()
    interaction_rows = [
        {
            "date": date(2026, 3, d),
            "interaction_id": iid,
            "ts": _dt(d),
            "network": n,
            "actor_id": actor,
            "target_id": target,
            "action": act,
            "post_id": post,
        }
        for iid, d, n, actor, target, act, post in [
            (1000, 1, "twitter", 2, 1, "like", 100),
            (1001, 1, "twitter", 3, 2, "retweet", 101),
            (1002, 1, "twitter", 1, 3, "mention", None),
            (1003, 2, "facebook", 2, 1, "comment", 102),
            (1004, 2, "linkedin", 1, 3, "recommendation", None),
            (1005, 2, "linkedin", 1, 3, "like", 103),
        ]
    ]
    return {
        "accounts": frame("accounts", account_rows),
        "profiles": frame("profiles", profile_rows),
        "posts": frame("posts", post_rows),
        "interactions": frame("interactions", interaction_rows),
    }


def good_row(table: str, **overrides: Any) -> dict[str, Any]:
    """A valid row for tiny_world() (fresh id), with some fields overridden to spoil it."""
    rows: dict[str, dict[str, Any]] = {
        "accounts": {
            "user_id": 2,
            "network": "instagram",
            "created_at": datetime(2026, 1, 1),
            "linked_at": datetime(2026, 2, 1),
        },
        "profiles": {
            "date": date(2026, 3, 3),
            "user_id": 1,
            "network": "twitter",
            "followers": 3,
            "following": 4,
            "lists": 0,
            "posts_total": 7,
        },
        "posts": {
            "date": date(2026, 3, 2),
            "post_id": 199,
            "user_id": 2,
            "network": "twitter",
            "created_at": _dt(2, 15),
            "has_media": False,
        },
        "interactions": {
            "date": date(2026, 3, 2),
            "interaction_id": 1999,
            "ts": _dt(2, 18),
            "network": "twitter",
            "actor_id": 3,
            "target_id": 1,
            "action": "reply",
            "post_id": 100,
        },
    }
    return {**rows[table], **overrides}


def with_rows(world: World, table: str, *rows: dict[str, Any]) -> World:
    """A copy of world with rows appended to one table."""
    extra = frame(table, list(rows))
    return {**world, table: pl.concat([world[table], extra])}


def write_raw(world: dict[str, pl.DataFrame], root: Path) -> Path:
    """Write a world as <root>/accounts/part-0.parquet and <root>/<table>/date=D/part-0.parquet.

    Frames may carry any dtypes (tests write mistyped columns on purpose)."""
    for table, df in world.items():
        folder = root / table
        if table not in PARTITIONED_BY_DATE:
            folder.mkdir(parents=True, exist_ok=True)
            df.write_parquet(folder / "part-0.parquet")
            continue
        for (day,), part in df.group_by("date", maintain_order=True):
            out = folder / f"date={day}"
            out.mkdir(parents=True, exist_ok=True)
            part.drop("date").write_parquet(out / "part-0.parquet")
    return root


# --- a valid world of any size, vectorised -------------------------------------------------------

_PAIRS = [(n, a.name, a.on_post) for n, actions in VOCABULARY.items() for a in actions]


def random_world(
    users: int,
    days: int,
    *,
    posts_per_day: int,
    interactions_per_day: int,
    seed: int = 0,
    start: date = date(2026, 1, 1),
) -> RandomWorld:
    return RandomWorld(users, days, posts_per_day, interactions_per_day, seed, start)


class RandomWorld:
    """A valid world generated one day at a time, so a large one streams to disk."""

    def __init__(
        self,
        users: int,
        days: int,
        posts_per_day: int,
        interactions_per_day: int,
        seed: int,
        start: date,
    ) -> None:
        self.days, self.start = days, start
        self.posts_per_day, self.interactions_per_day = posts_per_day, interactions_per_day
        self.rng = np.random.default_rng(seed)
        networks = np.array(list(VOCABULARY))
        linked = self.rng.random((users, len(networks))) < 0.35
        linked[np.arange(users), self.rng.integers(0, len(networks), users)] = True
        user_idx, net_idx = np.nonzero(linked)
        origin = datetime.combine(start, datetime.min.time()) - timedelta(days=400)
        created = np.datetime64(origin) + self.rng.integers(0, 300 * 86400, len(user_idx)).astype(
            "timedelta64[s]"
        )
        self.accounts = pl.DataFrame(
            {
                "user_id": user_idx.astype(np.int64) + 1,
                "network": networks[net_idx],
                "created_at": created.astype("datetime64[us]"),
                "linked_at": (created + np.timedelta64(30, "D")).astype("datetime64[us]"),
            }
        )
        self._next_post = 1
        self._next_interaction = 1
        self._posts_so_far: list[pl.DataFrame] = []

    def _day_seconds(self, day: date, n: int) -> np.ndarray:
        base = np.datetime64(datetime.combine(day, datetime.min.time()))
        return (base + self.rng.integers(0, 86400, n).astype("timedelta64[s]")).astype(
            "datetime64[us]"
        )

    def posts_on(self, day: date) -> pl.DataFrame:
        n = self.posts_per_day
        authors = self.accounts.sample(n, with_replacement=True, seed=int(self.rng.integers(1e9)))
        posts = pl.DataFrame(
            {
                "post_id": np.arange(self._next_post, self._next_post + n, dtype=np.int64),
                "user_id": authors["user_id"],
                "network": authors["network"],
                "created_at": self._day_seconds(day, n),
                "has_media": self.rng.random(n) < 0.3,
            }
        )
        self._next_post += n
        self._posts_so_far.append(posts.select("post_id", "user_id", "network"))
        return posts

    def interactions_on(self, day: date) -> pl.DataFrame:
        n = self.interactions_per_day
        known = pl.concat(self._posts_so_far[-30:])
        on = known.sample(n, with_replacement=True, seed=int(self.rng.integers(1e9)))
        pairs = pl.DataFrame(_PAIRS, schema=["network", "action", "on_post"], orient="row")
        pairs = pairs.with_columns(k=pl.int_range(pl.len()).over("network"))
        per_network = pairs.group_by("network").len(name="n_actions")
        on = (
            on.with_columns(choice=pl.Series(self.rng.integers(0, 1 << 30, n)))
            .join(per_network, on="network", maintain_order="left")
            .with_columns(k=pl.col("choice") % pl.col("n_actions"))
            .join(pairs, on=["network", "k"], maintain_order="left")
        )
        networks, actions = on["network"], on["action"]
        post_ids = pl.select(pl.when(on["on_post"]).then(on["post_id"])).to_series()
        targets = on["user_id"].to_numpy()
        actors = self.rng.integers(1, self.accounts["user_id"].max() + 1, n)
        actors = np.where(actors == targets, actors + 1, actors)
        frame_ = pl.DataFrame(
            {
                "interaction_id": np.arange(
                    self._next_interaction, self._next_interaction + n, dtype=np.int64
                ),
                "ts": self._day_seconds(day, n),
                "network": networks,
                "actor_id": actors.astype(np.int64),
                "target_id": targets,
                "action": actions,
                "post_id": post_ids,
            }
        )
        self._next_interaction += n
        return frame_

    def write(self, root: Path) -> Path:
        (root / "accounts").mkdir(parents=True, exist_ok=True)
        self.accounts.write_parquet(root / "accounts" / "part-0.parquet")
        for offset in range(self.days):
            day = self.start + timedelta(days=offset)
            tables = {
                "posts": self.posts_on(day),
                "interactions": self.interactions_on(day),
                "profiles": self.accounts.select(
                    "user_id",
                    "network",
                    followers=pl.lit(10, pl.Int64),
                    following=pl.lit(5, pl.Int64),
                    lists=pl.when(pl.col("network") == "twitter").then(pl.lit(1, pl.Int64)),
                    posts_total=pl.lit(offset, pl.Int64),
                ),
            }
            for table, df in tables.items():
                out = root / table / f"date={day}"
                out.mkdir(parents=True, exist_ok=True)
                df.write_parquet(out / "part-0.parquet")
        return root
