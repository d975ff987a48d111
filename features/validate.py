"""Validation of the raw tables: pure lazy transforms, no I/O.

Each `flag_<table>` adds a `reject_reason` column (null = the row is accepted) and `split` parts
the flagged frame into accepted rows (the table's own columns) and rejected rows (the same columns
plus `reject_reason`). Nothing is dropped: every input row comes out on exactly one side.

A row keeps the first reason it fails in the declaration order of `RejectReason`:

1. row-level rules: vocabulary, ids, values, time;
2. cross-table rules, checked against the *accepted* rows of the referenced table, so the clean
   tables are referentially whole (accounts first, then profiles and posts, then interactions);
3. duplicate ids last, among the rows that passed everything else: of several copies the first
   valid one (in input order) is kept, so a broken first copy never shadows a good second one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum

import polars as pl

from features.raw_schema import RAW_TABLES
from influence.vocabulary import ALL_ACTIONS, NETWORKS, VOCABULARY

REJECT_REASON = "reject_reason"

# Helper columns added by the rules; never part of an output. Network and action are looked up
# as enums (null when not in the vocabulary): joins on them are much cheaper than on strings.
_NET = "_network"
_ACT = "_action"
_ACCOUNT_CREATED = "_account_created_at"
_ON_POST = "_on_post"
_POST_AUTHOR = "_post_author"
_POST_NETWORK = "_post_network"

NETWORK_ENUM = pl.Enum(NETWORKS)
ACTION_ENUM = pl.Enum(ALL_ACTIONS)


class RejectReason(StrEnum):
    """Why a raw row was rejected. Declaration order is the priority order."""

    UNKNOWN_NETWORK = "unknown_network"
    """`network` is null or not one of the vocabulary's networks."""
    UNKNOWN_ACTION = "unknown_action"
    """`action` is null or not an action of any network."""
    ACTION_NOT_ALLOWED = "action_not_allowed"
    """The action exists, but not on this network (e.g. a retweet on facebook)."""
    NULL_ID = "null_id"
    """An id column is null; or `post_id` disagrees with the action's vocabulary entry: null on
    an action made on a post (`on_post=True`), or present on a user-level action (a mention)."""
    NULL_VALUE = "null_value"
    """A required non-id field is null: a timestamp, the partition date, a counter, a flag."""
    NEGATIVE_COUNTER = "negative_counter"
    """A profile counter (followers, following, lists, posts_total) is below zero."""
    FUTURE_TIMESTAMP = "future_timestamp"
    """A timestamp or partition date lies after the validation's reference time."""
    SELF_INTERACTION = "self_interaction"
    """An interaction whose actor is its own target."""
    UNKNOWN_ACCOUNT = "unknown_account"
    """The row's owner has no accepted account on that network: the author of a post or a
    profile row, the target of an interaction. Kept apart from the next reason because it
    points at a different upstream fault (a missing account export, not a clock problem)."""
    BEFORE_ACCOUNT_CREATED = "before_account_created"
    """The row predates the account it belongs to: an account linked before it was created, a
    profile date or post before its author's account was created, an interaction before its
    target's account on that network was created."""
    DANGLING_POST_ID = "dangling_post_id"
    """An interaction's post_id is not an accepted post, or that post belongs to another user or
    network than the interaction's target and network."""
    DUPLICATE_ID = "duplicate_id"
    """An earlier row with the same key passed every other rule and is kept: interaction_id,
    post_id, (user_id, network) for accounts, (date, user_id, network) for profiles."""


def columns_of(table: str) -> list[str]:
    """The contract's columns of a raw table, in schema order."""
    return list(RAW_TABLES[table].to_schema().columns)


def _reason(reason: RejectReason, condition: pl.Expr) -> pl.Expr:
    # when() treats a null condition as false, so comparisons over null fields never reject by
    # themselves: the rule that owns the null (NULL_ID, NULL_VALUE...) does.
    return pl.when(condition).then(pl.lit(reason.value))


def _first_reason(rules: Sequence[tuple[RejectReason, pl.Expr]]) -> pl.Expr:
    return pl.coalesce([_reason(reason, condition) for reason, condition in rules]).alias(
        REJECT_REASON
    )


def _or_reason(reason: RejectReason, condition: pl.Expr) -> pl.Expr:
    """Keep an earlier reason; otherwise set this one where the condition holds."""
    return pl.coalesce(pl.col(REJECT_REASON), _reason(reason, condition)).alias(REJECT_REASON)


def _any_null(columns: Iterable[str]) -> pl.Expr:
    return pl.any_horizontal([pl.col(c).is_null() for c in columns])


def _network_code(column: str = "network") -> pl.Expr:
    return pl.col(column).cast(NETWORK_ENUM, strict=False)


def _later_than(now: datetime, *, timestamps: Iterable[str] = (), dates: Iterable[str] = ()):
    checks = [pl.col(c) > now for c in timestamps] + [pl.col(c) > now.date() for c in dates]
    return pl.any_horizontal(checks)


def _required(table: str, exclude: Iterable[str]) -> list[str]:
    """Non-nullable columns of the table's model, minus those another rule owns."""
    columns = RAW_TABLES[table].to_schema().columns
    skip = set(exclude)
    return [name for name, col in columns.items() if not col.nullable and name not in skip]


def _ids(table: str) -> list[str]:
    return [c for c in columns_of(table) if c.endswith("_id")]


def _flag_duplicates(frame: pl.LazyFrame, key: Sequence[str]) -> pl.LazyFrame:
    """DUPLICATE_ID for every otherwise valid row whose key an earlier valid row holds."""
    valid = pl.col(REJECT_REASON).is_null()
    packed = pl.col(key[0]) if len(key) == 1 else pl.struct(key)
    # Rejected rows all map to one null key, so they never compete with valid ones.
    first = pl.when(valid).then(packed).is_first_distinct()
    return frame.with_columns(_or_reason(RejectReason.DUPLICATE_ID, valid & ~first))


def _with_account_created(frame: pl.LazyFrame, accounts: pl.LazyFrame, owner: str) -> pl.LazyFrame:
    """Add the network code and the owner's account creation time on that network."""
    lookup = accounts.select(
        pl.col("user_id").alias(owner),
        _network_code().alias(_NET),
        pl.col("created_at").alias(_ACCOUNT_CREATED),
    )
    frame = frame.with_columns(_network_code().alias(_NET))
    return frame.join(lookup, on=[owner, _NET], how="left", maintain_order="left")


# --- one transform per table ---------------------------------------------------------------------

Rule = tuple[RejectReason, pl.Expr]


def _flag(frame: pl.LazyFrame, rules: Sequence[Rule], key: Sequence[str]) -> pl.LazyFrame:
    """First failing rule of `rules` (given in priority order), then DUPLICATE_ID."""
    return _flag_duplicates(frame.with_columns(_first_reason(rules)), key)


def _account_rules(predates: pl.Expr) -> list[Rule]:
    R = RejectReason
    return [
        (R.UNKNOWN_ACCOUNT, pl.col(_ACCOUNT_CREATED).is_null()),
        (R.BEFORE_ACCOUNT_CREATED, predates),
    ]


def _accounts_rules(now: datetime) -> list[Rule]:
    R = RejectReason
    return [
        (R.UNKNOWN_NETWORK, pl.col(_NET).is_null()),
        (R.NULL_ID, _any_null(_ids("accounts"))),
        (R.NULL_VALUE, _any_null(_required("accounts", exclude=["network", *_ids("accounts")]))),
        (R.FUTURE_TIMESTAMP, _later_than(now, timestamps=["created_at", "linked_at"])),
        (R.BEFORE_ACCOUNT_CREATED, pl.col("linked_at") < pl.col("created_at")),
    ]


def flag_accounts(accounts: pl.LazyFrame, now: datetime) -> pl.LazyFrame:
    """Accounts with `reject_reason`. `now` is the naive-UTC reference time."""
    flagged = _flag(
        accounts.with_columns(_network_code().alias(_NET)),
        _accounts_rules(now),
        key=["user_id", "network"],
    )
    return flagged.drop(_NET)


def _profiles_rules(now: datetime) -> list[Rule]:
    R = RejectReason
    counters = ["followers", "following", "lists", "posts_total"]
    return [
        (R.UNKNOWN_NETWORK, pl.col(_NET).is_null()),
        (R.NULL_ID, _any_null(_ids("profiles"))),
        (R.NULL_VALUE, _any_null(_required("profiles", exclude=["network", *_ids("profiles")]))),
        (R.NEGATIVE_COUNTER, pl.any_horizontal([pl.col(c) < 0 for c in counters])),
        (R.FUTURE_TIMESTAMP, _later_than(now, dates=["date"])),
        *_account_rules(pl.col("date") < pl.col(_ACCOUNT_CREATED).dt.date()),
    ]


def flag_profiles(profiles: pl.LazyFrame, accounts: pl.LazyFrame, now: datetime) -> pl.LazyFrame:
    """Profiles with `reject_reason`; `accounts` are the accepted accounts."""
    frame = _with_account_created(profiles, accounts, owner="user_id")
    flagged = _flag(frame, _profiles_rules(now), key=["date", "user_id", "network"])
    return flagged.drop(_NET, _ACCOUNT_CREATED)


def _posts_rules(now: datetime) -> list[Rule]:
    R = RejectReason
    return [
        (R.UNKNOWN_NETWORK, pl.col(_NET).is_null()),
        (R.NULL_ID, _any_null(_ids("posts"))),
        (R.NULL_VALUE, _any_null(_required("posts", exclude=["network", *_ids("posts")]))),
        (R.FUTURE_TIMESTAMP, _later_than(now, timestamps=["created_at"], dates=["date"])),
        *_account_rules(pl.col("created_at") < pl.col(_ACCOUNT_CREATED)),
    ]


def flag_posts(posts: pl.LazyFrame, accounts: pl.LazyFrame, now: datetime) -> pl.LazyFrame:
    """Posts with `reject_reason`; `accounts` are the accepted accounts."""
    frame = _with_account_created(posts, accounts, owner="user_id")
    return _flag(frame, _posts_rules(now), key=["post_id"]).drop(_NET, _ACCOUNT_CREATED)


def _vocabulary_lookup() -> pl.LazyFrame:
    """(network, action) codes of every allowed pair, with the action's on_post."""
    rows = [(n, a.name, a.on_post) for n, actions in VOCABULARY.items() for a in actions]
    return pl.LazyFrame(
        rows,
        schema={_NET: NETWORK_ENUM, _ACT: ACTION_ENUM, _ON_POST: pl.Boolean},
        orient="row",
    )


def _interactions_rules(now: datetime) -> list[Rule]:
    R = RejectReason
    ids = [c for c in _ids("interactions") if c != "post_id"]
    post_id_mismatch = (pl.col(_ON_POST) & pl.col("post_id").is_null()) | (
        ~pl.col(_ON_POST) & pl.col("post_id").is_not_null()
    )
    dangling = pl.col("post_id").is_not_null() & (
        pl.col(_POST_AUTHOR).is_null()
        | (pl.col(_POST_AUTHOR) != pl.col("target_id"))
        | (pl.col(_POST_NETWORK) != pl.col(_NET))
    )
    return [
        (R.UNKNOWN_NETWORK, pl.col(_NET).is_null()),
        (R.UNKNOWN_ACTION, pl.col(_ACT).is_null()),
        (R.ACTION_NOT_ALLOWED, pl.col(_ON_POST).is_null()),
        (R.NULL_ID, _any_null(ids) | post_id_mismatch),
        (R.NULL_VALUE, _any_null(_required("interactions", exclude=["network", "action", *ids]))),
        (R.FUTURE_TIMESTAMP, _later_than(now, timestamps=["ts"], dates=["date"])),
        (R.SELF_INTERACTION, pl.col("actor_id") == pl.col("target_id")),
        *_account_rules(pl.col("ts") < pl.col(_ACCOUNT_CREATED)),
        (R.DANGLING_POST_ID, dangling),
    ]


def flag_interactions(
    interactions: pl.LazyFrame, accounts: pl.LazyFrame, posts: pl.LazyFrame, now: datetime
) -> pl.LazyFrame:
    """Interactions with `reject_reason`; `accounts` and `posts` are the accepted ones."""
    post_owner = posts.select(
        "post_id",
        pl.col("user_id").alias(_POST_AUTHOR),
        _network_code().alias(_POST_NETWORK),
    )
    frame = (
        interactions.with_columns(pl.col("action").cast(ACTION_ENUM, strict=False).alias(_ACT))
        .pipe(_with_account_created, accounts, owner="target_id")
        # on_post comes out null exactly when the (network, action) pair is not allowed
        .join(_vocabulary_lookup(), on=[_NET, _ACT], how="left", maintain_order="left")
        .join(post_owner, on="post_id", how="left", maintain_order="left")
    )
    flagged = _flag(frame, _interactions_rules(now), key=["interaction_id"])
    return flagged.drop(_NET, _ACT, _ON_POST, _ACCOUNT_CREATED, _POST_AUTHOR, _POST_NETWORK)


def _reasons(rules: Sequence[Rule]) -> tuple[RejectReason, ...]:
    return (*dict.fromkeys(reason for reason, _ in rules), RejectReason.DUPLICATE_ID)


REASONS_BY_TABLE: dict[str, tuple[RejectReason, ...]] = {
    "accounts": _reasons(_accounts_rules(datetime.min)),
    "profiles": _reasons(_profiles_rules(datetime.min)),
    "posts": _reasons(_posts_rules(datetime.min)),
    "interactions": _reasons(_interactions_rules(datetime.min)),
}
"""The reasons each table can produce, in priority order (stable keys for the report)."""


def split(flagged: pl.LazyFrame, table: str) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """(accepted, rejected): accepted rows keep the table's columns, rejected add the reason."""
    columns = columns_of(table)
    reason = pl.col(REJECT_REASON)
    accepted = flagged.filter(reason.is_null()).select(columns)
    rejected = flagged.filter(reason.is_not_null()).select(*columns, REJECT_REASON)
    return accepted, rejected


def validate_tables(
    tables: dict[str, pl.LazyFrame], now: datetime
) -> dict[str, tuple[pl.DataFrame, pl.DataFrame]]:
    """All four tables in memory: {table: (accepted, rejected)}. For small worlds and tests; the
    stage streams the same transforms to disk instead."""
    out: dict[str, tuple[pl.DataFrame, pl.DataFrame]] = {}

    def run(table: str, flagged: pl.LazyFrame) -> pl.LazyFrame:
        accepted, rejected = pl.collect_all(split(flagged, table))
        out[table] = (accepted, rejected)
        return accepted.lazy()

    accounts = run("accounts", flag_accounts(tables["accounts"], now))
    run("profiles", flag_profiles(tables["profiles"], accounts, now))
    posts = run("posts", flag_posts(tables["posts"], accounts, now))
    run("interactions", flag_interactions(tables["interactions"], accounts, posts, now))
    return out
