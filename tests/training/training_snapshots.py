"""Client snapshots for the behaviour tests, scored the way serving scores them:
SignalSnapshot -> snapshots_to_frame -> featurize -> bundle.score."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import polars as pl

from features.featurize import featurize
from features.snapshot import SignalSnapshot, snapshots_to_frame

AS_OF = date(2026, 10, 3)


def typical_twitter(**changes) -> dict:
    """An ordinary, established Twitter account over a 30-day window."""
    fields = {
        "window_days": 30,
        "followers": 900.0,
        "following": 450.0,
        "lists": 8.0,
        "follower_growth": 25.0,
        "posts": 45.0,
        "posts_with_media": 15.0,
        "active_days": 20.0,
        "account_age_days": 1500.0,
        "days_linked": 600.0,
        "received": {"like": 150.0, "reply": 20.0, "retweet": 25.0, "quote": 4.0, "mention": 12.0},
        "sent": {"like": 120.0, "reply": 25.0, "retweet": 15.0},
        "unique_engagers": 70.0,
        "unique_engagers_by_family": {"approval": 55.0, "conversation": 15.0, "amplification": 18.0},
        "selective_reactions": 90.0,
        "engager_influence": 55.0,
        "pagerank": 1.0,
        "cross_network_pagerank": 1.0,
        "conversations_started": 12.0,
        "reciprocity": 0.3,
    }
    return merge(fields, changes)


def merge(fields: dict, changes: dict) -> dict:
    out = dict(fields)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def snapshot(user_id: str = "u", **networks: dict | list[dict]) -> SignalSnapshot:
    """One user's snapshot; a network's value is one window (a dict) or several (a list)."""
    return SignalSnapshot.model_validate({"user_id": user_id, "as_of": AS_OF, "networks": networks})


def scores(bundle, snapshots: Sequence[SignalSnapshot]) -> pl.DataFrame:
    return bundle.score(featurize(snapshots_to_frame(list(snapshots))))


def score_of(bundle, *snapshots: SignalSnapshot) -> np.ndarray:
    return scores(bundle, snapshots).get_column("score").to_numpy()


# --- the scenarios of the behaviour tests ---------------------------------------------------


def amplified(by_people: float, extra_selective: float, user_id: str = "u") -> SignalSnapshot:
    """A typical user plus 100 retweets from `by_people` distinct people."""
    base = typical_twitter()
    return snapshot(
        user_id,
        twitter=merge(
            base,
            {
                "received": {"retweet": base["received"]["retweet"] + 100},
                "unique_engagers": base["unique_engagers"] + by_people,
                "unique_engagers_by_family": {
                    "amplification": base["unique_engagers_by_family"]["amplification"] + by_people
                },
                "selective_reactions": base["selective_reactions"] + extra_selective,
            },
        ),
    )


def amplification_pair() -> tuple[SignalSnapshot, SignalSnapshot]:
    """100 retweets from 100 people vs from one person (who retweets ~3 times a day, so each
    weighs ~1/3 in the selective reactions)."""
    return amplified(100, 100, "many"), amplified(1, 100 / 3.3, "one")


def posts_pair() -> tuple[SignalSnapshot, SignalSnapshot]:
    """100 reactions earned by 10 posts vs by 1,000 posts."""
    reactions = {"received": {"like": 100.0, "reply": 0.0, "retweet": 0.0, "quote": 0.0, "mention": 0.0}}
    few = snapshot("few", twitter=typical_twitter(**reactions, posts=10.0, posts_with_media=3.0))
    flood = snapshot(
        "flood",
        twitter=typical_twitter(**reactions, posts=1_000.0, posts_with_media=300.0, active_days=30.0),
    )
    return few, flood


def selectivity_pair() -> tuple[SignalSnapshot, SignalSnapshot]:
    """The same reactions from selective people (a full vote each) vs from people who react to
    everything (~40 a day: 1/40 each)."""
    return (
        snapshot("picky", twitter=typical_twitter(selective_reactions=220.0)),
        snapshot("anyone", twitter=typical_twitter(selective_reactions=220.0 / 40)),
    )


def bought(base: dict) -> dict:
    """10,000 bought followers and 5,000 likes from 100 bots that like everything (40 a day)."""
    return merge(
        base,
        {
            "followers": base["followers"] + 10_000,
            "follower_growth": base["follower_growth"] + 10_000,
            "received": {"like": base["received"]["like"] + 5_000},
            "unique_engagers": base["unique_engagers"] + 100,
            "unique_engagers_by_family": {
                "approval": base["unique_engagers_by_family"]["approval"] + 100
            },
            "selective_reactions": base["selective_reactions"] + 5_000 / 40,
            "engager_influence": (base["engager_influence"] * base["unique_engagers"] + 100 * 2.0)
            / (base["unique_engagers"] + 100),
        },
    )


def bought_pair() -> tuple[SignalSnapshot, SignalSnapshot]:
    base = typical_twitter()
    return snapshot("honest", twitter=base), snapshot("bought", twitter=bought(base))


def newcomer() -> SignalSnapshot:
    """A 9-day-old account, Twitter only, sending what a new client has: modest activity, i.e.
    below the simulated world's median engagement (a couple of posts, a few reactions)."""
    return snapshot(
        "newcomer",
        twitter={
            "window_days": 9,
            "followers": 25.0,
            "following": 80.0,
            "posts": 2.0,
            "posts_with_media": 1.0,
            "active_days": 4.0,
            "account_age_days": 9.0,
            "days_linked": 9.0,
            "received": {"like": 3.0, "reply": 1.0},
            "unique_engagers": 3.0,
        },
    )


def worst_drops(bundle, n: int = 1_000, seed: int = 123, change_seed: int = 1_000) -> dict:
    """For each kind of monotone change applied to `n` random snapshots, the largest score drop
    it caused (negative: the score fell somewhere; the promise is that none does)."""
    from training.monotone import apply_change, monotone_changes, random_snapshots

    probes = random_snapshots(n, seed=seed)
    drops = {}
    for i, (name, (network, change)) in enumerate(sorted(monotone_changes().items())):
        before, after = apply_change(probes, network, change, seed=change_seed + i)
        if not before:
            continue
        after = [s.model_copy(update={"user_id": f"{s.user_id}+"}) for s in after]
        was = scores(bundle, before).get_column("score").to_numpy()
        now = scores(bundle, after).get_column("score").to_numpy()
        drops[name] = float(np.min(now - was))
    return drops
