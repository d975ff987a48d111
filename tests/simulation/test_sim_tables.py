"""The written raw tables: exactly the raw schema, and every row a valid event of the world."""

from __future__ import annotations

import polars as pl
import pytest

from features.raw_schema import RAW_TABLES
from influence.vocabulary import pairs_on_post

TABLES = ("accounts", "profiles", "posts", "interactions")


@pytest.mark.parametrize("table", TABLES)
def test_tables_pass_the_raw_schemas(small_world, table):
    frame = small_world.read(table)
    assert frame.height > 0
    assert set(frame.columns) == set(RAW_TABLES[table].to_schema().columns)
    RAW_TABLES[table].validate(frame)


def test_hive_scan_gives_the_schema_columns_and_dtypes(small_world):
    schema = small_world.scan("interactions").collect_schema()
    expected = {n: c.dtype.type for n, c in RAW_TABLES["interactions"].to_schema().columns.items()}
    assert dict(schema) == expected


def test_partitions_cover_the_window_ending_on_end_date(small_world):
    cfg = small_world.cfg
    for table in ("profiles", "posts", "interactions"):
        dates = sorted(p.name for p in (small_world.raw / table).iterdir())
        assert dates[0] == f"date={cfg.start_date}"
        assert dates[-1] == f"date={cfg.end_date}"
        assert len(dates) == cfg.days


def test_truth_is_not_inside_raw(small_world):
    assert not small_world.truth.resolve().is_relative_to(small_world.raw.resolve())
    assert sorted(p.name for p in small_world.raw.iterdir()) == sorted(TABLES)


def test_interactions_are_valid_events(small_world):
    inter = small_world.read("interactions")
    posts = small_world.read("posts")
    accounts = small_world.read("accounts")

    assert inter["interaction_id"].is_unique().all()
    assert posts["post_id"].is_unique().all()
    assert (inter["actor_id"] != inter["target_id"]).all()
    assert (inter["ts"].dt.date() == inter["date"]).all()
    assert (posts["created_at"].dt.date() == posts["date"]).all()

    on_post = pl.DataFrame(pairs_on_post(), schema=["network", "action"], orient="row")
    flagged = inter.join(
        on_post.with_columns(on_post=pl.lit(True)), on=["network", "action"], how="left"
    ).with_columns(pl.col("on_post").fill_null(False))
    assert (flagged["on_post"] == flagged["post_id"].is_not_null()).all()

    with_post = flagged.filter("on_post").join(
        posts.select(
            "post_id",
            pl.col("user_id").alias("author"),
            pl.col("network").alias("post_network"),
            "created_at",
        ),
        on="post_id",
        how="left",
    )
    assert with_post["author"].null_count() == 0, "dangling post ids"
    assert (with_post["author"] == with_post["target_id"]).all()
    assert (with_post["post_network"] == with_post["network"]).all()
    assert (with_post["ts"] > with_post["created_at"]).all()

    for role in ("actor_id", "target_id"):
        joined = inter.join(
            accounts, left_on=[role, "network"], right_on=["user_id", "network"], how="left"
        )
        assert joined["created_at"].null_count() == 0, f"{role} without an account there"
        assert (joined["ts"] > joined["created_at"]).all(), f"{role} before the account existed"


def test_posts_and_profiles_only_after_account_creation(small_world):
    accounts = small_world.read("accounts")
    posts = small_world.read("posts").join(
        accounts, on=["user_id", "network"], how="left", suffix="_account"
    )
    assert (posts["created_at"] > posts["created_at_account"]).all()
    profiles = small_world.read("profiles").join(accounts, on=["user_id", "network"])
    assert (profiles["date"] > profiles["created_at"].dt.date()).all()
    assert (accounts["linked_at"] > accounts["created_at"]).all()


def test_profiles_have_lists_only_where_the_network_has_them(small_world):
    profiles = small_world.read("profiles")
    assert profiles.filter(pl.col("network") == "twitter")["lists"].null_count() == 0
    assert (
        profiles.filter(pl.col("network") != "twitter")["lists"].null_count()
        == profiles.filter(pl.col("network") != "twitter").height
    )


def test_posts_total_counts_the_posts(small_world):
    posts = small_world.read("posts")
    profiles = small_world.read("profiles").sort("date")
    first_day = small_world.cfg.start_date
    grew = profiles.group_by("user_id", "network").agg(
        (pl.col("posts_total").last() - pl.col("posts_total").first()).alias("grew"),
        pl.col("date").first().alias("first"),
    )
    counted = (
        posts.filter(pl.col("date") > pl.col("date").min()).group_by("user_id", "network").len()
    )
    check = grew.filter(pl.col("first") == first_day).join(counted, on=["user_id", "network"])
    assert check.height > 0
    assert (check["grew"] == check["len"]).all()


def test_no_repeated_reactions_or_subscriptions(small_world):
    inter = small_world.read("interactions")
    on_post = inter.filter(pl.col("post_id").is_not_null())
    assert on_post.select("post_id", "actor_id", "action").is_duplicated().sum() == 0
    once = inter.filter(
        pl.col("action").is_in(["subscribe", "list_add", "recommendation", "endorsement"])
    )
    assert once.height > 0
    assert once.select("actor_id", "target_id", "network", "action").is_duplicated().sum() == 0
