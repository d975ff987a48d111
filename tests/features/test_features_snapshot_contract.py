"""The snapshot contract: pydantic for HTTP clients, pandera for the long table, the window rule."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandera.errors
import polars as pl
import pytest
from pydantic import ValidationError

from features.snapshot import (
    SIGNAL_COLUMNS,
    NetworkSignals,
    SignalSnapshot,
    SnapshotArrays,
    Snapshots,
    closest_window,
    frame_to_snapshots,
    snapshots_to_arrays,
    snapshots_to_frame,
    validate_snapshots,
)
from influence.vocabulary import NETWORKS, actions_of

EXAMPLE = {
    "user_id": "alice",
    "as_of": "2026-11-25",
    "networks": {
        "twitter": {
            "window_days": 30,
            "followers": 1200,
            "following": 300,
            "lists": 12,
            "account_age_days": 400,
            "posts": 90,
            "posts_with_media": 20,
            "received": {"like": 800, "retweet": 120, "reply": 40, "mention": 60},
            "sent": {"retweet": 10, "reply": 30, "mention": 20},
            "unique_engagers": 350,
            "engager_influence": 42.5,
        },
        "linkedin": {"window_days": 30, "followers": 500, "received": {"recommendation": 3}},
    },
}


def errors_of(payload) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        SignalSnapshot.model_validate_json(
            json.dumps(payload) if not isinstance(payload, str) else payload
        )
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]


def with_twitter(**fields) -> dict:
    return {"networks": {"twitter": {"window_days": 30, **fields}}}


def test_the_serving_example_parses():
    snapshot = SignalSnapshot.model_validate_json(json.dumps(EXAMPLE))
    assert snapshot.as_of == date(2026, 11, 25)
    twitter = snapshot.networks["twitter"]
    assert isinstance(twitter, NetworkSignals)
    assert twitter.received["like"] == 800 and twitter.engager_influence == 42.5
    assert snapshot.networks["linkedin"].followers == 500


def test_only_networks_and_window_days_are_required():
    snapshot = SignalSnapshot.model_validate({"networks": {"youtube": {"window_days": 1}}})
    assert snapshot.user_id is None and snapshot.networks["youtube"].followers is None


@pytest.mark.parametrize(
    ("payload", "where", "says"),
    [
        (with_twitter(followers=-1), "networks.twitter.window.followers", "greater than or equal"),
        (
            '{"networks": {"twitter": {"window_days": 30, "posts": NaN}}}',
            "networks.twitter.window.posts",
            "finite",
        ),
        (
            '{"networks": {"twitter": {"window_days": 30, "posts": Infinity}}}',
            "networks.twitter.window.posts",
            "finite",
        ),
        (with_twitter(followers=1e13), "networks.twitter.window.followers", "less than or equal"),
        (with_twitter(followers="12"), "networks.twitter.window.followers", "valid number"),
        (
            with_twitter(engager_influence=101),
            "networks.twitter.window.engager_influence",
            "less than",
        ),
        (with_twitter(received={"like": -3}), "networks.twitter.window.received.like", "greater"),
        (
            with_twitter(received={"poke": 3}),
            "networks.twitter.window.received.poke.[key]",
            "'like'",
        ),
        (with_twitter(bogus=3), "networks.twitter.window.bogus", "Extra inputs"),
        (
            {"networks": {"twitter": {"followers": 3}}},
            "networks.twitter.window.window_days",
            "Field required",
        ),
        (with_twitter(window_days=0), "networks.twitter.window.window_days", "greater than"),
        ({"networks": {}}, "networks", "at least 1 item"),
        ({"networks": {"myspace": {"window_days": 7}}}, "networks.myspace.[key]", "'twitter'"),
        ({}, "networks", "Field required"),
        (with_twitter(active_days=31), "networks.twitter.window", "exceeds window_days"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(payload, where, says):
    errors = errors_of(payload)
    assert any(loc == where and says in msg for loc, msg in errors), errors


def test_unknown_network_lists_the_allowed_ones():
    ((_, message),) = errors_of({"networks": {"myspace": {"window_days": 7}}})
    assert all(n in message for n in NETWORKS)


def test_an_action_of_another_network_is_rejected_listing_the_allowed_ones():
    ((where, message),) = errors_of(
        {"networks": {"linkedin": {"window_days": 30, "received": {"retweet": 3}}}}
    )
    assert where == "networks"
    assert "networks.linkedin.received" in message and "'retweet'" in message
    assert ", ".join(actions_of("linkedin")) in message


def test_snapshots_are_frozen():
    snapshot = SignalSnapshot.model_validate(EXAMPLE)
    with pytest.raises(ValidationError):
        snapshot.user_id = "bob"


def test_window_rule_scales_counts_not_levels_and_caps_active_days():
    snapshot = SignalSnapshot.model_validate(
        with_twitter(
            followers=1000,
            posts=30,
            received={"like": 300},
            follower_growth=-60,
            active_days=20,
            engager_influence=40,
            reciprocity=0.5,
            account_age_days=99,
        )
    )
    frame = snapshots_to_frame([snapshot], windows=(7, 30, 90))
    by_window = {r["window_days"]: r for r in frame.to_dicts()}
    assert [by_window[w]["posts"] for w in (7, 30, 90)] == [7, 30, 90]
    assert [by_window[w]["received_like"] for w in (7, 30, 90)] == [70, 300, 900]
    assert [by_window[w]["follower_growth"] for w in (7, 30, 90)] == [-14, -60, -180]
    assert [by_window[w]["active_days"] for w in (7, 30, 90)] == pytest.approx(
        [20 * 7 / 30, 20, 60]
    )
    for w in (7, 30, 90):
        r = by_window[w]
        assert (
            r["followers"],
            r["engager_influence"],
            r["reciprocity"],
            r["account_age_days"],
        ) == (1000, 40, 0.5, 99)
        assert r["received_retweet"] is None and r["lists"] is None  # unknown stays unknown
    Snapshots.validate(frame)


def test_active_days_never_exceed_the_model_window():
    from features.snapshot import scale_to_window

    values = [math.nan] * len(SIGNAL_COLUMNS)
    values[SIGNAL_COLUMNS.index("active_days")] = 30.0
    scaled = scale_to_window(np.array(values), 10, 7)  # inconsistent input: 30 active of 10
    assert scaled[SIGNAL_COLUMNS.index("active_days")] == 7


def test_several_client_windows_use_the_closest_one():
    assert closest_window((7, 28), 30) == 28
    assert closest_window((7, 28), 7) == 7
    assert closest_window((10, 40), 20) == 40  # same ratio 2: the longer
    snapshot = SignalSnapshot.model_validate(
        {
            "networks": {
                "twitter": [{"window_days": 7, "posts": 1}, {"window_days": 60, "posts": 30}]
            }
        }
    )
    frame = snapshots_to_frame([snapshot], windows=(7, 30, 90))
    assert frame.sort("window_days")["posts"].to_list() == [1, 15, 45]


def test_repeated_window_lengths_are_rejected():
    errors = errors_of({"networks": {"twitter": [{"window_days": 7}, {"window_days": 7}]}})
    assert any("repeated" in msg for _, msg in errors)


def test_rows_keep_input_order_and_repeated_users_stay_apart():
    a = SignalSnapshot.model_validate({**EXAMPLE})
    b = SignalSnapshot.model_validate({"networks": {"youtube": {"window_days": 7, "posts": 2}}})
    frame = snapshots_to_frame([a, b, a], windows=(7, 30))
    assert frame["user_id"].unique(maintain_order=True).to_list() == ["alice", "#1", "alice#2"]
    Snapshots.validate(frame)


def test_batch_snapshots_round_trip_through_the_http_schema():
    a = SignalSnapshot.model_validate(EXAMPLE)
    frame = snapshots_to_frame([a], windows=(7, 30, 90))
    again = snapshots_to_frame(frame_to_snapshots(frame), windows=(7, 30, 90))
    assert again.equals(frame)


def test_arrays_and_frame_agree():
    a = SignalSnapshot.model_validate(EXAMPLE)
    arrays = snapshots_to_arrays([a])
    frame = snapshots_to_frame([a])
    assert arrays.values.shape == (6, len(SIGNAL_COLUMNS))
    values = frame.select(SIGNAL_COLUMNS).fill_null(math.nan).to_numpy()
    known = ~np.isnan(values)
    assert (np.isnan(arrays.values) == ~known).all() and (
        values[known] == arrays.values[known]
    ).all()


def test_snapshot_table_failures_name_the_column():
    frame = snapshots_to_frame([SignalSnapshot.model_validate(EXAMPLE)])
    with pytest.raises(pandera.errors.SchemaError, match="followers"):
        Snapshots.validate(frame.with_columns(pl.lit(-5.0).alias("followers")))
    with pytest.raises(pandera.errors.SchemaError, match="reciprocity"):
        validate_snapshots(frame.drop("reciprocity"))
    with pytest.raises(pandera.errors.SchemaError, match="extra_signal"):
        validate_snapshots(frame.with_columns(extra_signal=pl.lit(1.0)))
    with pytest.raises(pandera.errors.SchemaError, match="network"):
        Snapshots.validate(frame.with_columns(pl.lit("myspace").alias("network")))


@pytest.mark.parametrize("interleaved", [False, True])
def test_split_parts_featurize_to_the_rows_of_the_whole(interleaved):
    """The batch path featurizes a day in parts: their rows, in turn, are the whole's."""
    from features.featurize import featurize_matrix
    from serving.samples import random_snapshots

    frame = snapshots_to_frame(random_snapshots(150, seed=21))
    if interleaved:  # rows of a user not next to each other
        frame = frame.sort("network", "window_days", "user_id")
    arrays = SnapshotArrays.from_frame(frame)
    whole = featurize_matrix(arrays)
    parts = arrays.split(40)
    assert [len(p.keys) for p in parts] == [40, 40, 40, 30]
    assert sum(len(p) for p in parts) == len(arrays)
    featurized = [featurize_matrix(p) for p in parts]
    assert [u for f in featurized for u in f.user_id] == whole.user_id
    assert np.array_equal(np.concatenate([f.values for f in featurized]), whole.values, equal_nan=True)
    assert arrays.split(1000) == [arrays]
    with pytest.raises(ValueError, match="keys_per_part"):
        arrays.split(0)


def test_with_keys_numbers_user_and_date_in_first_seen_order():
    from serving.samples import random_snapshots

    arrays = SnapshotArrays.from_frame(snapshots_to_frame(random_snapshots(30, seed=22)))
    bare = SnapshotArrays(arrays.user_id, arrays.as_of, arrays.network, arrays.window_days,
                          arrays.values)
    keyed = bare.with_keys()
    assert keyed.keys == arrays.keys and np.array_equal(keyed.key_index, arrays.key_index)
    assert arrays.with_keys() is arrays
