"""Signal snapshots for an as-of date T from the raw (or clean) tables, written once in narwhals.

`build_snapshots(sources, as_of, ...)` returns the long `features.snapshot.Snapshots` table: one
row per linked account (user, network) and window. It runs unchanged on Polars LazyFrames and on
PySpark DataFrames; `features.engine` decides which.

Point in time: every row used is dated strictly before T (partition `date` < T), and an account
is part of the snapshot only once it was created and linked before T. Windows are the last w days
before T: dates in [T - w, T). Counters over a window with no events are 0 for a linked account;
signals that are undefined (engager influence without engagers, follower growth without a
profile at the window's start) stay null.

Definitions worth knowing (the meanings are in `features.snapshot.SIGNALS`):
- selectivity: each reaction weighs 1/n, n = reactions its actor gave that day on that network,
  so a person who gives one reaction a day hands out a full vote and one who likes 40 posts a
  day hands out 40 fortieths: "the more a person likes in a day, the less each like counts";
- engagement graph: actor -> target, weighted by the number of reactions in the last
  `pagerank_window_days` (30) days, one graph per network and one across networks
  (`features.graph`: 10 power iterations put percentiles within 0.3 points of convergence,
  and the 30-day graph is half the 90-day one while describing influence now); ranks are scaled
  so the mean node has 1; a user's influence as an engager is the percentile (0-100) of their
  cross-network PageRank, and `engager_influence` is the mean over their distinct engagers;
- the graph and the engagers count every interaction dated before T, whoever was linked then:
  an engager's influence does not depend on whether they use the platform;
- reciprocity: share of distinct engagers of the window that the user also reacted to within
  the same window, on that network;
- conversations started: distinct posts of the user that received a reply/comment in the window;
- active days: days of the window with a post or a reaction sent on that network;
- audience: the profile of the last day before T (or the latest within
  `profile_lookback_days`); follower growth over w days compares it with the profile of the day
  before the window (T - w - 1), null when the account has no profile then (too young).

Speed: the events of the longest window are read once (only those partitions, the vocabulary as
small integer codes) and pinned with their selectivity weight (a window count) and their window
bucket (the shortest window holding the day); every aggregation over them is a single group-by:
received and sent per action and bucket (the per-window columns are made on the aggregated
rows, not per event), one pair-level aggregation (network, target, actor) that carries the
latest bucket per action family. Each PageRank iteration is pinned by the engine so plans stay
flat, and so is every piece before the wide join (one plan of seven aggregations ran slower).
`make bench` times every piece (`parts` hook of `build_snapshots`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import narwhals as nw

from features.graph import weighted_pagerank
from features.snapshot import SIGNAL_BY_NAME, SIGNAL_COLUMNS, Kind
from influence.vocabulary import (
    ALL_ACTIONS,
    FAMILIES,
    NETWORKS,
    VOCABULARY,
    Family,
)

Parts = Callable[[str, nw.LazyFrame], nw.LazyFrame]
"""A profiler's hook: computes a named piece of the snapshot build and returns it."""

ALL_GRAPH = -1
"""Graph key of the cross-network engagement graph (per-network graphs use the network code)."""
KEYS = ["user_id", "network"]


def _action_families() -> dict[str, str]:
    families: dict[str, str] = {}
    for actions in VOCABULARY.values():
        for a in actions:
            if families.setdefault(a.name, str(a.family)) != str(a.family):
                raise ValueError(f"action {a.name!r} belongs to two families")
    return families


ACTION_FAMILY = _action_families()
"""An action's family does not depend on its network (checked here), so one map serves all."""
NETWORKS_WITH_ACTION: dict[str, list[str]] = {
    a: [n for n in NETWORKS if a in {x.name for x in VOCABULARY[n]}] for a in ALL_ACTIONS
}

# Vocabulary columns travel as small integer codes (their position in the vocabulary): grouping
# and joining on them is several times faster than on strings.
NETWORK_CODE = {n: i for i, n in enumerate(NETWORKS)}
ACTION_CODE = {a: i for i, a in enumerate(ALL_ACTIONS)}
FAMILY_NAMES = tuple(str(f) for f in FAMILIES)
FAMILY_CODE = {f: i for i, f in enumerate(FAMILY_NAMES)}
FAMILY_OF_ACTION_CODE = {ACTION_CODE[a]: FAMILY_CODE[f] for a, f in ACTION_FAMILY.items()}
ACTION_CODES_OF_FAMILY = {
    f: [ACTION_CODE[a] for a, family in ACTION_FAMILY.items() if family == f] for f in FAMILY_CODE
}
VOCABULARY_COLUMNS = {"network": NETWORKS, "action": ALL_ACTIONS}


@dataclass(frozen=True)
class Sources:
    """The raw tables an as-of date needs (lazy; only the needed partitions)."""

    accounts: nw.LazyFrame
    profiles: nw.LazyFrame
    posts: nw.LazyFrame
    interactions: nw.LazyFrame


# --- what to read ----------------------------------------------------------------------------


def days_between(start: date, end: date) -> list[date]:
    """Days in [start, end)."""
    return [start + timedelta(days=i) for i in range((end - start).days)]


def profile_anchor_days(as_of: date, windows: Sequence[int]) -> list[date]:
    """Days whose end-of-day profile gives a window's end (T-1) and starts (T-1-w)."""
    return [as_of - timedelta(days=1 + w) for w in (0, *windows)]


def profile_days(as_of: date, windows: Sequence[int], lookback: int) -> list[date]:
    """Profile partitions to read: each anchor day and `lookback - 1` days before it."""
    days = {
        anchor - timedelta(days=k)
        for anchor in profile_anchor_days(as_of, windows)
        for k in range(lookback)
    }
    return sorted(days)


INTERACTION_COLUMNS = ["date", "network", "actor_id", "target_id", "action", "post_id"]
POST_COLUMNS = ["date", "user_id", "network", "has_media"]
PROFILE_COLUMNS = ["date", "user_id", "network", "followers", "following", "lists"]
ACCOUNT_COLUMNS = ["user_id", "network", "created_at", "linked_at"]


def read_sources(engine, root: Path, as_of: date, windows: Sequence[int], lookback: int) -> Sources:
    """Only the partitions an as-of date needs: the longest window of events before T, and the
    profile days around the window anchors."""
    event_days = days_between(as_of - timedelta(days=max(windows)), as_of)
    codes = VOCABULARY_COLUMNS
    return Sources(
        accounts=engine.scan(root, "accounts", ACCOUNT_COLUMNS, codes=codes),
        profiles=engine.scan(
            root, "profiles", PROFILE_COLUMNS, profile_days(as_of, windows, lookback), codes
        ),
        posts=engine.scan(root, "posts", POST_COLUMNS, event_days, codes),
        interactions=engine.scan(root, "interactions", INTERACTION_COLUMNS, event_days, codes),
    )


# --- small expression helpers ----------------------------------------------------------------


def suffix(name: str, window: int) -> str:
    return f"{name}__w{window}"


def in_window(window: int, as_of: date, column: str = "date") -> nw.Expr:
    return nw.col(column) >= nw.lit(as_of - timedelta(days=window))


def dated_before(as_of: date, days: int, column: str = "date") -> list[nw.Expr]:
    return [nw.col(column) >= nw.lit(as_of - timedelta(days=days)), nw.col(column) < nw.lit(as_of)]


def windowed(values: dict[str, nw.Expr], windows: Sequence[int], as_of: date, column: str = "date"):
    """Columns `<name>__w<w>` = value where the row's date is in window w, else 0."""
    return [
        nw.when(in_window(w, as_of, column)).then(value).otherwise(0).alias(suffix(name, w))
        for name, value in values.items()
        for w in windows
    ]


def summed(names: Iterable[str], windows: Sequence[int]) -> list[nw.Expr]:
    return [nw.col(suffix(name, w)).sum() for name in names for w in windows]


def spread(
    frame: nw.LazyFrame,
    keys: list[str],
    category: str,
    categories: dict[str, int],
    values: dict[str, str],
) -> nw.LazyFrame:
    """One row per key: column `template.format(name)` = the value column where the category
    column holds that name's code, summed. `values` maps a value column to a name template."""
    columns = [
        nw.when(nw.col(category) == code)
        .then(nw.col(value))
        .otherwise(0)
        .alias(template.format(name))
        for name, code in categories.items()
        for value, template in values.items()
    ]
    names = [template.format(name) for name in categories for template in values.values()]
    return frame.with_columns(columns).group_by(keys).agg(nw.col(names).sum())


def epoch_day(expr: nw.Expr) -> nw.Expr:
    """Days since 1970-01-01 of a date or datetime (its calendar day), from year and day of
    year, because narwhals has no portable date difference for Spark."""
    y = expr.dt.year().cast(nw.Int64) - 1
    return y * 365 + y // 4 - y // 100 + y // 400 + expr.dt.ordinal_day().cast(nw.Int64) - 719_163


def days_before(as_of: date, expr: nw.Expr) -> nw.Expr:
    """Whole calendar days from the day of `expr` to T."""
    return (nw.lit((as_of - date(1970, 1, 1)).days) - epoch_day(expr)).cast(nw.Float64)


# --- the pieces of a snapshot ----------------------------------------------------------------


def linked_accounts(accounts: nw.LazyFrame, as_of: date) -> nw.LazyFrame:
    """Accounts created and linked before T, with their age and days since linked."""
    return accounts.filter(
        nw.col("created_at") < nw.lit(_midnight(as_of)),
        nw.col("linked_at") < nw.lit(_midnight(as_of)),
        ~nw.col("network").is_null(),
    ).select(
        "user_id",
        "network",
        days_before(as_of, nw.col("created_at")).alias("account_age_days"),
        days_before(as_of, nw.col("linked_at")).alias("days_linked"),
    )


def _midnight(day: date):
    from datetime import datetime

    return datetime(day.year, day.month, day.day)


def with_selectivity(interactions: nw.LazyFrame) -> nw.LazyFrame:
    """Interactions with their selectivity weight 1/n, n = the actor's reactions that day on
    that network (a window count: no join back)."""
    reactions_that_day = nw.len().over("network", "actor_id", "date").cast(nw.Float64)
    return interactions.with_columns((1.0 / reactions_that_day).alias("weight"))


def in_family(family: str) -> nw.Expr:
    return nw.col("action").is_in(ACTION_CODES_OF_FAMILY[family])


def reaction_days(interactions: nw.LazyFrame) -> nw.LazyFrame:
    """Distinct (user_id, network, date) on which the user reacted to someone."""
    return interactions.select(nw.col("actor_id").alias("user_id"), "network", "date").unique(
        ["user_id", "network", "date"]
    )


def window_bucket(windows: Sequence[int], as_of: date, column: str = "date") -> nw.Expr:
    """Index (Int8) of the shortest window that holds the row's date: a row is in window
    `windows[i]` exactly when its bucket is at most i (windows ascending; rows older than the
    longest window get len(windows))."""
    return nw.sum_horizontal(*((~in_window(w, as_of, column)).cast(nw.Int8) for w in windows)).cast(
        nw.Int8
    )


def per_window(
    frame: nw.LazyFrame, keys: list[str], values: dict[str, nw.Expr], windows: Sequence[int]
) -> nw.LazyFrame:
    """Events grouped by keys and window bucket, then summed over the buckets of each window:
    `<name>__w<w>` per key. The events pass one group-by that carries only the bucket, so the
    per-window columns are built on the (much smaller) aggregated rows, not once per event."""
    buckets = frame.group_by(*keys, "bucket").agg(
        *(value.alias(name) for name, value in values.items())
    )
    return (
        buckets.with_columns(
            nw.when(nw.col("bucket") <= i).then(nw.col(name)).otherwise(0.0).alias(suffix(name, w))
            for name in values
            for i, w in enumerate(windows)
        )
        .group_by(keys)
        .agg(summed(values, windows))
    )


def received_reactions(interactions: nw.LazyFrame, windows, as_of) -> nw.LazyFrame:
    """received_<action>__w and selective_reactions__w per (user_id, network). The events
    carry their `bucket` (`window_bucket`)."""
    per_action = per_window(
        interactions,
        ["target_id", "network", "action"],
        {"n": nw.len().cast(nw.Float64), "s": nw.col("weight").sum()},
        windows,
    )
    counts = spread(
        per_action,
        ["target_id", "network"],
        "action",
        ACTION_CODE,
        {suffix("n", w): suffix("received_{}", w) for w in windows},
    )
    selective = per_action.group_by("target_id", "network").agg(
        [nw.col(suffix("s", w)).sum().alias(suffix("selective_reactions", w)) for w in windows]
    )
    return counts.join(selective, on=["target_id", "network"]).rename({"target_id": "user_id"})


def sent_reactions(interactions: nw.LazyFrame, windows, as_of) -> nw.LazyFrame:
    """sent_<action>__w per (user_id, network). The events carry their `bucket`."""
    per_action = per_window(
        interactions,
        ["actor_id", "network", "action"],
        {"n": nw.len().cast(nw.Float64)},
        windows,
    )
    return spread(
        per_action,
        ["actor_id", "network"],
        "action",
        ACTION_CODE,
        {suffix("n", w): suffix("sent_{}", w) for w in windows},
    ).rename({"actor_id": "user_id"})


def family_bucket(family: str) -> str:
    return f"last_bucket_{family}"


def engager_pairs(interactions: nw.LazyFrame, as_of: date, graph_days: int) -> nw.LazyFrame:
    """Distinct (network, target, actor): the window bucket of the last day they met
    (`window_bucket`: the pair met within window `windows[i]` when it is at most i), the same
    per action family (null if never in that family), and the number of reactions in the last
    `graph_days` days (the weight of the engagement graph's edge actor -> target). One
    aggregation over the events (which carry their `bucket`): the per-family buckets make a
    second, per-family one needless, and a small integer is cheaper to carry than a date."""
    per_family_buckets = [
        nw.when(in_family(name)).then(nw.col("bucket")).alias(family_bucket(name))
        for name in FAMILY_CODE
    ]
    return (
        interactions.select(
            "network",
            "target_id",
            "actor_id",
            *per_family_buckets,
            in_window(graph_days, as_of).cast(nw.Float64).alias("graph_reactions"),
        )
        .group_by("network", "target_id", "actor_id")
        .agg(
            *(nw.col(family_bucket(name)).min() for name in FAMILY_CODE),
            nw.col("graph_reactions").sum(),
        )
        .with_columns(
            nw.min_horizontal(*(family_bucket(name) for name in FAMILY_CODE)).alias("last_bucket")
        )
    )


def in_bucket_window(i: int, column: str) -> nw.Expr:
    """The row's window bucket (`window_bucket`) is within window `windows[i]`."""
    return nw.col(column) <= i


def unique_engagers(pairs, influence, windows, as_of) -> nw.LazyFrame:
    """unique_engagers__w, unique_engagers_<family>__w, engager_influence__w, reciprocity__w."""
    back = pairs.select(
        "network",
        nw.col("actor_id").alias("target_id"),
        nw.col("target_id").alias("actor_id"),
        nw.col("last_bucket").alias("back_bucket"),
    )
    families = [f"u_{name}" for name in FAMILY_CODE]
    values = {"u": nw.lit(1.0), "pct": nw.col("percentile")}
    return (
        pairs.join(influence, left_on="actor_id", right_on="node", how="left")
        .join(back, on=["network", "target_id", "actor_id"], how="left")
        .with_columns(
            *(
                nw.when(in_bucket_window(i, "last_bucket"))
                .then(value)
                .otherwise(0)
                .alias(suffix(name, w))
                for name, value in values.items()
                for i, w in enumerate(windows)
            ),
            # mutual in window w only if the user answered within w too
            *(
                nw.when(in_bucket_window(i, "last_bucket") & in_bucket_window(i, "back_bucket"))
                .then(1.0)
                .otherwise(0.0)
                .alias(suffix("mutual", w))
                for i, w in enumerate(windows)
            ),
            # a family counts in window w if the pair met in that family within w
            *(
                nw.when(in_bucket_window(i, family_bucket(name)))
                .then(1.0)
                .otherwise(0.0)
                .alias(suffix(f"u_{name}", w))
                for name in FAMILY_CODE
                for i, w in enumerate(windows)
            ),
        )
        .group_by("target_id", "network")
        .agg(summed(["u", "pct", "mutual", *families], windows))
        .select(
            nw.col("target_id").alias("user_id"),
            "network",
            *(nw.col(suffix("u", w)).alias(suffix("unique_engagers", w)) for w in windows),
            *(
                nw.col(suffix(f"u_{name}", w)).alias(suffix(f"unique_engagers_{name}", w))
                for name in FAMILY_CODE
                for w in windows
            ),
            *(
                _mean_or_null(suffix("pct", w), suffix("u", w)).alias(
                    suffix("engager_influence", w)
                )
                for w in windows
            ),
            *(
                _mean_or_null(suffix("mutual", w), suffix("u", w)).alias(suffix("reciprocity", w))
                for w in windows
            ),
        )
    )


def _mean_or_null(total: str, count: str) -> nw.Expr:
    return nw.when(nw.col(count) > 0).then(nw.col(total) / nw.col(count))


def conversations_started(interactions: nw.LazyFrame, windows, as_of) -> nw.LazyFrame:
    """conversations_started__w: distinct posts of the user with a reply/comment in window w."""
    return (
        interactions.filter(
            in_family(str(Family.CONVERSATION)),
            ~nw.col("post_id").is_null(),
        )
        .group_by("network", "target_id", "post_id")
        .agg(nw.col("date").max().alias("last_date"))
        .with_columns(windowed({"c": nw.lit(1.0)}, windows, as_of, "last_date"))
        .group_by("target_id", "network")
        .agg(
            [
                nw.col(suffix("c", w)).sum().alias(suffix("conversations_started", w))
                for w in windows
            ]
        )
        .rename({"target_id": "user_id"})
    )


def activity(posts: nw.LazyFrame, actor_days: nw.LazyFrame, windows, as_of) -> nw.LazyFrame:
    """posts__w, posts_with_media__w, active_days__w (days with a post or a reaction sent)."""
    post_counts = (
        posts.with_columns(
            windowed(
                {"posts": nw.lit(1.0), "posts_with_media": nw.col("has_media").cast(nw.Float64)},
                windows,
                as_of,
            )
        )
        .group_by(KEYS)
        .agg(summed(["posts", "posts_with_media"], windows))
    )
    active = (
        nw.concat([posts.select("user_id", "network", "date"), actor_days], how="vertical")
        .unique(["user_id", "network", "date"])
        .with_columns(windowed({"active_days": nw.lit(1.0)}, windows, as_of))
        .group_by(KEYS)
        .agg(summed(["active_days"], windows))
    )
    return active.join(post_counts, on=KEYS, how="left")


def latest_profile(profiles: nw.LazyFrame, anchor: date, lookback: int) -> nw.LazyFrame:
    """Each account's last profile row among the `lookback` days ending on `anchor`."""
    recent = profiles.filter(
        nw.col("date") <= nw.lit(anchor), nw.col("date") > nw.lit(anchor - timedelta(days=lookback))
    )
    last = recent.group_by(KEYS).agg(nw.col("date").max())
    return recent.join(last, on=[*KEYS, "date"])


def audience(profiles: nw.LazyFrame, windows, as_of, lookback: int) -> nw.LazyFrame:
    """followers, following, lists at the end of the last day before T, and
    follower_growth__w = followers then minus followers at the end of the day before the window."""
    end = latest_profile(profiles, as_of - timedelta(days=1), lookback).select(
        *KEYS, *(nw.col(c).cast(nw.Float64) for c in ("followers", "following", "lists"))
    )
    for w in windows:
        start = latest_profile(profiles, as_of - timedelta(days=w + 1), lookback).select(
            *KEYS, nw.col("followers").cast(nw.Float64).alias(suffix("start", w))
        )
        end = end.join(start, on=KEYS, how="left")
    return end.select(
        *KEYS,
        "followers",
        "following",
        "lists",
        *(
            (nw.col("followers") - nw.col(suffix("start", w))).alias(suffix("follower_growth", w))
            for w in windows
        ),
    )


def engagement_edges(pairs: nw.LazyFrame) -> nw.LazyFrame:
    """Edges (graph, src, dst, weight) of every network's graph and of the cross-network one."""
    per_network = pairs.filter(nw.col("graph_reactions") > 0).select(
        nw.col("network").cast(nw.Int8).alias("graph"),
        nw.col("actor_id").alias("src"),
        nw.col("target_id").alias("dst"),
        nw.col("graph_reactions").alias("weight"),
    )
    # the same edges again in the cross-network graph: an actor -> target pair met on two
    # networks is two parallel edges there, which PageRank treats as one with summed weight
    across = per_network.with_columns(nw.lit(ALL_GRAPH, nw.Int8).alias("graph"))
    return nw.concat([per_network, across], how="vertical")


def engagement_ranks(pairs, accounts, damping, iterations, materialize):
    """PageRank per network and across networks (mean 1 per graph), and the cross-network
    percentile (0-100) of every node."""
    nodes = nw.concat(
        [
            accounts.select(
                nw.col("network").cast(nw.Int8).alias("graph"), nw.col("user_id").alias("node")
            ),
            accounts.select(
                nw.lit(ALL_GRAPH, nw.Int8).alias("graph"), nw.col("user_id").alias("node")
            ),
        ],
        how="vertical",
    )
    ranks = weighted_pagerank(
        engagement_edges(pairs),
        nodes,
        damping=damping,
        iterations=iterations,
        materialize=materialize,
    ).with_columns((nw.col("rank") * nw.col("n_nodes")).alias("scaled"))
    cross = ranks.filter(nw.col("graph") == ALL_GRAPH)
    percentile = cross.select(
        "node",
        (
            100.0
            * (nw.col("scaled").rank(method="average") - 1.0)
            / nw.max_horizontal(nw.col("n_nodes") - 1.0, nw.lit(1.0))
        ).alias("percentile"),
    )
    per_network = ranks.filter(nw.col("graph") != ALL_GRAPH).select(
        nw.col("node").alias("user_id"),
        nw.col("graph").alias("network"),
        nw.col("scaled").alias("pagerank"),
    )
    cross_rank = cross.select(
        nw.col("node").alias("user_id"), nw.col("scaled").alias("cross_network_pagerank")
    )
    return per_network, cross_rank, percentile


# --- assembly ----------------------------------------------------------------------------------


def build_snapshots(
    sources: Sources,
    as_of: date,
    *,
    windows: Sequence[int] = (7, 30, 90),
    damping: float = 0.85,
    iterations: int = 10,
    pagerank_window_days: int = 30,
    profile_lookback_days: int = 3,
    materialize,
    parts: Parts | None = None,
) -> nw.LazyFrame:
    """The long snapshot table (columns of `Snapshots`) for as-of date T. `materialize` is the
    engine's (it pins shared intermediates and every PageRank iteration). `parts`, a profiler's,
    receives every named piece and returns it computed (the benchmark's per-part seconds);
    without it only the shared intermediates are pinned and the rest stays one lazy plan."""

    def part(name: str, frame: nw.LazyFrame, *, pin: bool = False) -> nw.LazyFrame:
        if parts is not None:
            return parts(name, frame)
        return materialize(frame) if pin else frame

    windows = tuple(sorted(windows))
    accounts = part("accounts", linked_accounts(sources.accounts, as_of), pin=True)
    events = sources.interactions.filter(
        *dated_before(as_of, max(windows)),
        ~nw.col("network").is_null(),
        ~nw.col("action").is_null(),
    ).select("date", "network", "actor_id", "target_id", "action", "post_id")
    events = part(
        "selectivity",
        with_selectivity(part("read", events)).with_columns(
            window_bucket(windows, as_of).alias("bucket")
        ),
        pin=True,
    )
    actor_days = reaction_days(events)
    pairs = part(
        "pairs", engager_pairs(events, as_of, min(pagerank_window_days, max(windows))), pin=True
    )
    pagerank, cross_rank, percentile = (
        part("pagerank", frame)
        for frame in engagement_ranks(
            pairs, accounts, damping, iterations, lambda f: part("pagerank", f, pin=True)
        )
    )
    posts = sources.posts.filter(*dated_before(as_of, max(windows)))
    # every piece pinned: the wide join then joins small tables, and the streaming engine does
    # not run seven aggregations of one plan at once (about 1 CPU s less on the default world)
    pieces = [
        part(
            "audience", audience(sources.profiles, windows, as_of, profile_lookback_days), pin=True
        ),
        part("activity", activity(posts, actor_days, windows, as_of), pin=True),
        part("received", received_reactions(events, windows, as_of), pin=True),
        part("sent", sent_reactions(events, windows, as_of), pin=True),
        part("unique_engagers", unique_engagers(pairs, percentile, windows, as_of), pin=True),
        part("conversations", conversations_started(events, windows, as_of), pin=True),
        pagerank,
    ]
    wide = accounts
    for piece in pieces:
        wide = wide.join(piece, on=KEYS, how="left")
    wide = part("assemble", wide.join(cross_rank, on="user_id", how="left"))
    return part("to_long", to_long(wide, as_of, windows))


def _signal_in_window(name: str, window: int, columns: set[str]) -> nw.Expr:
    kind = SIGNAL_BY_NAME[name].kind
    if kind is Kind.LEVEL:
        return nw.col(name).cast(nw.Float64)
    column = nw.col(suffix(name, window))
    if name.startswith(("received_", "sent_")):
        action = name.split("_", 1)[1]
        on_network = nw.col("network").is_in(
            [NETWORK_CODE[n] for n in NETWORKS_WITH_ACTION[action]]
        )
        return nw.when(on_network).then(column.fill_null(0.0))
    if name in ("engager_influence", "reciprocity", "follower_growth"):
        return column  # undefined without engagers / without a starting profile: stays null
    return column.fill_null(0.0)


def to_long(wide: nw.LazyFrame, as_of: date, windows: Sequence[int]) -> nw.LazyFrame:
    """One row per (user, network) and window, with the columns of `Snapshots` in order."""
    columns = set(wide.collect_schema().names())
    per_window = [
        wide.select(
            nw.col("user_id").cast(nw.String),
            nw.lit(as_of).alias("as_of"),
            nw.col("network")
            .replace_strict(
                {code: name for name, code in NETWORK_CODE.items()},
                default=nw.lit(None, nw.String),
                return_dtype=nw.String,
            )
            .alias("network"),
            nw.lit(w).cast(nw.Int64).alias("window_days"),
            *(
                _signal_in_window(name, w, columns).cast(nw.Float64).alias(name)
                for name in SIGNAL_COLUMNS
            ),
        )
        for w in windows
    ]
    return nw.concat(per_window, how="vertical")
