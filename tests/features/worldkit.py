"""Hand-built raw folders for the feature tests: every interaction written out, so each signal's
expected value can be worked out by hand (see `signal_world`).

`World` holds the four raw tables as row lists; `write(root)` lays them out the way the
simulator and the validation stage do (accounts in one file, the rest hive-partitioned by date,
without a `date` column in the files).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from features.engine import table_schema
from features.raw_schema import PARTITIONED_BY_DATE

T = date(2026, 3, 31)
"""The as-of date of the signal world."""

ALICE, BOB, CAROL, DAVE, BOT = 1, 2, 3, 4, 5


def day(offset: int) -> date:
    """T + offset days (offset -1 is the last day before T)."""
    return T + timedelta(days=offset)


@dataclass(frozen=True)
class World:
    accounts: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    interactions: list[dict[str, Any]] = field(default_factory=list)

    def with_interactions(self, *rows: dict[str, Any]) -> World:
        return replace(self, interactions=[*self.interactions, *rows])

    def with_posts(self, *rows: dict[str, Any]) -> World:
        return replace(self, posts=[*self.posts, *rows])

    def frames(self) -> dict[str, pl.DataFrame]:
        return {
            table: pl.DataFrame(rows, schema=table_schema(table), orient="row")
            for table, rows in (
                ("accounts", self.accounts),
                ("profiles", self.profiles),
                ("posts", self.posts),
                ("interactions", self.interactions),
            )
        }

    def write(self, root: Path) -> Path:
        for table, frame in self.frames().items():
            folder = root / table
            folder.mkdir(parents=True, exist_ok=True)
            if table not in PARTITIONED_BY_DATE:
                frame.write_parquet(folder / "part-0.parquet")
                continue
            for (d,), part in frame.group_by("date", maintain_order=True):
                out = folder / f"date={d}"
                out.mkdir(parents=True, exist_ok=True)
                part.drop("date").write_parquet(out / "part-0.parquet")
        return root


def account(
    user: int, network: str, created: date = date(2025, 1, 1), linked: date = date(2025, 6, 1)
) -> dict[str, Any]:
    return {
        "user_id": user,
        "network": network,
        "created_at": datetime.combine(created, datetime.min.time()),
        "linked_at": datetime.combine(linked, datetime.min.time()),
    }


def profile(
    user: int, network: str, d: date, followers: int, following: int = 10, lists: int | None = None
) -> dict[str, Any]:
    return {
        "date": d,
        "user_id": user,
        "network": network,
        "followers": followers,
        "following": following,
        "lists": lists if network == "twitter" else None,
        "posts_total": 0,
    }


def post(post_id: int, user: int, network: str, d: date, media: bool = False) -> dict[str, Any]:
    return {
        "date": d,
        "post_id": post_id,
        "user_id": user,
        "network": network,
        "created_at": datetime.combine(d, datetime.min.time()) + timedelta(hours=9),
        "has_media": media,
    }


_ids = iter(range(10_000, 10**9))


def hit(
    d: date,
    actor: int,
    target: int,
    action: str,
    post_id: int | None = None,
    network: str = "twitter",
) -> dict[str, Any]:
    return {
        "date": d,
        "interaction_id": next(_ids),
        "ts": datetime.combine(d, datetime.min.time()) + timedelta(hours=12),
        "network": network,
        "actor_id": actor,
        "target_id": target,
        "action": action,
        "post_id": post_id,
    }


def signal_world() -> World:
    """Five twitter users (Alice also on facebook) around T = 2026-03-31.

    What Alice's twitter snapshot must say (worked out in test_features_signals.py):
    posts 100 (T-6, media), 101 (T-21), 102 (T-75); Bob likes 100 at T-2 and mentions her at
    T-80; Carol likes and retweets 100 at T-2; Dave replies to 101 at T-11; the bot likes 100
    at T-1 among its four likes that day; Alice replies to Bob's post 200 at T-1. Rows dated T
    and later must change nothing.
    """
    accounts = [account(u, "twitter") for u in (ALICE, BOB, CAROL, DAVE, BOT)]
    accounts.append(account(ALICE, "facebook", linked=date(2026, 3, 1)))
    accounts.append(account(BOB, "facebook", linked=T))  # linked at T: not in the snapshot
    profiles = [
        profile(ALICE, "twitter", day(-1), 500, lists=7),
        profile(ALICE, "twitter", day(-8), 450, lists=7),
        profile(ALICE, "twitter", day(-31), 300, lists=6),
        profile(ALICE, "twitter", day(-92), 100, lists=1),  # 1 day before the T-91 anchor
        profile(ALICE, "twitter", day(0), 99_999, lists=99),  # at T: never read
        profile(ALICE, "facebook", day(-2), 40),
        *(profile(u, "twitter", day(-1), 10 * u) for u in (BOB, CAROL, DAVE, BOT)),
    ]
    posts = [
        post(100, ALICE, "twitter", day(-6), media=True),
        post(101, ALICE, "twitter", day(-21)),
        post(102, ALICE, "twitter", day(-75)),
        post(103, ALICE, "facebook", day(-3)),
        post(200, BOB, "twitter", day(-3)),
        post(300, CAROL, "twitter", day(-3)),
        post(400, DAVE, "twitter", day(-3)),
    ]
    interactions = [
        hit(day(-2), BOB, ALICE, "like", 100),
        hit(day(-2), CAROL, ALICE, "like", 100),
        hit(day(-2), CAROL, ALICE, "retweet", 100),
        hit(day(-11), DAVE, ALICE, "reply", 101),
        hit(day(-1), BOT, ALICE, "like", 100),
        hit(day(-1), BOT, BOB, "like", 200),
        hit(day(-1), BOT, CAROL, "like", 300),
        hit(day(-1), BOT, DAVE, "like", 400),
        hit(day(-1), ALICE, BOB, "reply", 200),
        hit(day(-80), BOB, ALICE, "mention"),
        hit(day(-95), CAROL, ALICE, "mention"),  # before the 90-day window
        hit(day(0), CAROL, ALICE, "like", 100),  # at T: not before T
    ]
    return World(accounts, profiles, posts, interactions)


def random_world(
    seed: int = 0, users: int = 30, first: int = -100, last: int = 40, per_day: int = 40
) -> World:
    """A random valid world on twitter, facebook and linkedin from T+first to T+last days."""
    import numpy as np

    from influence.vocabulary import VOCABULARY

    rng = np.random.default_rng(seed)
    networks = ("twitter", "facebook", "linkedin")
    accounts = [
        account(
            u, n, created=date(2024, 1, 1), linked=T + timedelta(days=int(rng.integers(-200, 20)))
        )
        for u in range(1, users + 1)
        for n in networks
        if rng.random() < 0.7 or n == "twitter"
    ]
    linked = [(a["user_id"], a["network"]) for a in accounts]
    profiles, posts, interactions = [], [], []
    post_id = 1
    for offset in range(first, last + 1):
        d = day(offset)
        for u, n in linked:
            if offset % 3 == 0 or offset in (-1, -8, -31, -91):
                profiles.append(
                    profile(
                        u,
                        n,
                        d,
                        int(100 + 5 * u + offset + rng.integers(0, 9)),
                        lists=int(rng.integers(0, 5)),
                    )
                )
        today = []
        for _ in range(per_day // 4):
            u, n = linked[int(rng.integers(len(linked)))]
            today.append(post(post_id, u, n, d, media=bool(rng.random() < 0.3)))
            post_id += 1
        posts += today
        for _ in range(per_day):
            target = today[int(rng.integers(len(today)))]
            actions = VOCABULARY[target["network"]]
            chosen = actions[int(rng.integers(len(actions)))]
            actor = int(rng.integers(1, users + 1))
            if actor == target["user_id"]:
                continue
            interactions.append(
                hit(
                    d,
                    actor,
                    target["user_id"],
                    chosen.name,
                    target["post_id"] if chosen.on_post else None,
                    network=target["network"],
                )
            )
    return World(accounts, profiles, posts, interactions)


def scrambled(world: World, keep, seed: int = 1) -> World:
    """The same world with every interaction for which keep(date) is False replaced by a
    random other one (other actor, target post and action), and extra rows there too."""
    import numpy as np

    rng = np.random.default_rng(seed)
    posts = world.posts
    out = []
    for row in world.interactions:
        if keep(row["date"]):
            out.append(row)
            continue
        for _ in range(2):
            target = posts[int(rng.integers(len(posts)))]
            actor = int(rng.integers(1, 40))
            if actor != target["user_id"]:
                out.append(
                    {
                        **hit(
                            row["date"],
                            actor,
                            target["user_id"],
                            "like",
                            target["post_id"],
                            network=target["network"],
                        )
                    }
                )
    return replace(world, interactions=out)
