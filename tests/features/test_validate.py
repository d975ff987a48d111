"""`influence validate`: every reject reason, the row accounting, the threshold, broken input."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from rawbuild import NOW, frame, good_row, tiny_world, with_rows, write_raw
from typer.testing import CliRunner

from features.raw_schema import RAW_TABLES
from features.validate import (
    REASONS_BY_TABLE,
    REJECT_REASON,
    RejectReason,
    columns_of,
    validate_tables,
)
from features.validate_stage import RawInputError, run_validation
from influence.cli import app

R = RejectReason
TABLES = ("accounts", "profiles", "posts", "interactions")
OLD = datetime(2025, 12, 31)
FUTURE = datetime(2026, 7, 1)

# (table, bad row, expected reason): one spoiled row per rule, appended to tiny_world().
BAD_ROWS: dict[str, tuple[str, dict, RejectReason]] = {
    "accounts/unknown_network": (
        "accounts",
        good_row("accounts", network="myspace"),
        R.UNKNOWN_NETWORK,
    ),
    "accounts/null_network": ("accounts", good_row("accounts", network=None), R.UNKNOWN_NETWORK),
    "accounts/null_id": ("accounts", good_row("accounts", user_id=None), R.NULL_ID),
    "accounts/null_value": ("accounts", good_row("accounts", created_at=None), R.NULL_VALUE),
    "accounts/future": (
        "accounts",
        good_row("accounts", created_at=FUTURE, linked_at=FUTURE),
        R.FUTURE_TIMESTAMP,
    ),
    "accounts/linked_before_created": (
        "accounts",
        good_row("accounts", linked_at=datetime(2025, 1, 1)),
        R.BEFORE_ACCOUNT_CREATED,
    ),
    "accounts/duplicate": (
        "accounts",
        good_row("accounts", user_id=1, network="twitter"),
        R.DUPLICATE_ID,
    ),
    "profiles/unknown_network": (
        "profiles",
        good_row("profiles", network="Twitter"),
        R.UNKNOWN_NETWORK,
    ),
    "profiles/null_id": ("profiles", good_row("profiles", user_id=None), R.NULL_ID),
    "profiles/null_value": ("profiles", good_row("profiles", followers=None), R.NULL_VALUE),
    "profiles/negative_counter": (
        "profiles",
        good_row("profiles", following=-1),
        R.NEGATIVE_COUNTER,
    ),
    "profiles/negative_lists": ("profiles", good_row("profiles", lists=-3), R.NEGATIVE_COUNTER),
    "profiles/future": ("profiles", good_row("profiles", date=FUTURE.date()), R.FUTURE_TIMESTAMP),
    "profiles/unknown_account": (
        "profiles",
        good_row("profiles", user_id=2, network="facebook", lists=None),
        R.UNKNOWN_ACCOUNT,
    ),
    "profiles/before_account": (
        "profiles",
        good_row("profiles", date=OLD.date()),
        R.BEFORE_ACCOUNT_CREATED,
    ),
    "profiles/duplicate": (
        "profiles",
        good_row("profiles", date=date(2026, 3, 1), followers=999),
        R.DUPLICATE_ID,
    ),
    "posts/unknown_network": ("posts", good_row("posts", network="myspace"), R.UNKNOWN_NETWORK),
    "posts/null_post_id": ("posts", good_row("posts", post_id=None), R.NULL_ID),
    "posts/null_author": ("posts", good_row("posts", user_id=None), R.NULL_ID),
    "posts/null_value": ("posts", good_row("posts", has_media=None), R.NULL_VALUE),
    "posts/future": (
        "posts",
        good_row("posts", created_at=FUTURE, date=FUTURE.date()),
        R.FUTURE_TIMESTAMP,
    ),
    "posts/unknown_account": (
        "posts",
        good_row("posts", network="instagram"),
        R.UNKNOWN_ACCOUNT,
    ),
    "posts/before_account": (
        "posts",
        good_row("posts", created_at=OLD, date=OLD.date()),
        R.BEFORE_ACCOUNT_CREATED,
    ),
    "posts/duplicate": ("posts", good_row("posts", post_id=100), R.DUPLICATE_ID),
    "interactions/unknown_network": (
        "interactions",
        good_row("interactions", network="fb"),
        R.UNKNOWN_NETWORK,
    ),
    "interactions/unknown_action": (
        "interactions",
        good_row("interactions", action="poke"),
        R.UNKNOWN_ACTION,
    ),
    "interactions/null_action": (
        "interactions",
        good_row("interactions", action=None),
        R.UNKNOWN_ACTION,
    ),
    "interactions/action_not_allowed": (
        "interactions",
        good_row("interactions", network="facebook", action="retweet", post_id=102),
        R.ACTION_NOT_ALLOWED,
    ),
    "interactions/null_interaction_id": (
        "interactions",
        good_row("interactions", interaction_id=None),
        R.NULL_ID,
    ),
    "interactions/null_actor": ("interactions", good_row("interactions", actor_id=None), R.NULL_ID),
    "interactions/null_target": (
        "interactions",
        good_row("interactions", target_id=None),
        R.NULL_ID,
    ),
    "interactions/null_post_id_on_post_action": (
        "interactions",
        good_row("interactions", post_id=None),
        R.NULL_ID,
    ),
    "interactions/post_id_on_user_action": (
        "interactions",
        good_row("interactions", action="mention", post_id=100),
        R.NULL_ID,
    ),
    "interactions/null_value": ("interactions", good_row("interactions", ts=None), R.NULL_VALUE),
    "interactions/future": (
        "interactions",
        good_row("interactions", ts=FUTURE, date=FUTURE.date()),
        R.FUTURE_TIMESTAMP,
    ),
    "interactions/self": (
        "interactions",
        good_row("interactions", actor_id=1, target_id=1),
        R.SELF_INTERACTION,
    ),
    "interactions/unknown_account": (
        "interactions",
        good_row("interactions", target_id=2, network="facebook", action="mention", post_id=None),
        R.UNKNOWN_ACCOUNT,
    ),
    "interactions/before_account": (
        "interactions",
        good_row("interactions", ts=OLD, date=OLD.date()),
        R.BEFORE_ACCOUNT_CREATED,
    ),
    "interactions/missing_post": (
        "interactions",
        good_row("interactions", post_id=999),
        R.DANGLING_POST_ID,
    ),
    "interactions/post_of_another_user": (
        "interactions",
        good_row("interactions", post_id=101),
        R.DANGLING_POST_ID,
    ),
    "interactions/post_on_another_network": (
        "interactions",
        good_row("interactions", post_id=102),
        R.DANGLING_POST_ID,
    ),
    "interactions/duplicate": (
        "interactions",
        good_row("interactions", interaction_id=1000),
        R.DUPLICATE_ID,
    ),
}


def _validate(world: dict[str, pl.DataFrame], tmp_path: Path):
    """Write a world, run the stage, read back {table: (accepted, rejected)}."""
    raw, clean, rejects = tmp_path / "raw", tmp_path / "clean", tmp_path / "rejects"
    write_raw(world, raw)
    reports = run_validation(raw, clean, rejects, NOW)
    out = {}
    for table in TABLES:
        hive = table != "accounts"
        accepted = pl.scan_parquet(clean / table, hive_partitioning=hive).select(columns_of(table))
        out[table] = (accepted.collect(), pl.read_parquet(rejects / f"{table}.parquet"))
    return reports, out


def _same_rows(left: pl.DataFrame, right: pl.DataFrame) -> None:
    assert_frame_equal(left, right, check_row_order=False, check_dtypes=False)


def test_tiny_world_is_all_accepted(tmp_path: Path) -> None:
    world = tiny_world()
    reports, out = _validate(world, tmp_path)
    for table in TABLES:
        accepted, rejected = out[table]
        _same_rows(accepted, world[table])
        assert rejected.is_empty()
        assert rejected.columns == [*columns_of(table), REJECT_REASON]
        assert reports[table].rows_in == world[table].height == reports[table].accepted


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_each_bad_row_lands_in_rejects_with_its_reason(case: str, tmp_path: Path) -> None:
    table, row, reason = BAD_ROWS[case]
    good = tiny_world()
    reports, out = _validate(with_rows(good, table, row), tmp_path)

    rejected = out[table][1]
    assert rejected[REJECT_REASON].to_list() == [reason.value]
    _same_rows(rejected.drop(REJECT_REASON), frame(table, [row]))
    for name in TABLES:  # every good row accepted, including the kept copy of a duplicate
        _same_rows(out[name][0], good[name])
        assert reports[name].rows_in == reports[name].accepted + reports[name].rejected
    assert reports[table].reasons[reason.value] == 1


def test_every_reason_is_exercised() -> None:
    assert {reason for _, _, reason in BAD_ROWS.values()} == set(RejectReason)


def test_first_reason_in_priority_order_wins(tmp_path: Path) -> None:
    # unknown network and self-interaction at once: the earlier reason is reported
    row = good_row("interactions", network="fb", actor_id=1, target_id=1)
    _, out = _validate(with_rows(tiny_world(), "interactions", row), tmp_path)
    assert out["interactions"][1][REJECT_REASON].to_list() == [R.UNKNOWN_NETWORK]


def test_a_broken_first_copy_does_not_shadow_a_good_second_one(tmp_path: Path) -> None:
    broken = good_row("interactions", ts=None)
    good = good_row("interactions")
    _, out = _validate(with_rows(tiny_world(), "interactions", broken, good, good), tmp_path)
    accepted, rejected = out["interactions"]
    assert accepted.filter(pl.col("interaction_id") == 1999).height == 1
    assert sorted(rejected[REJECT_REASON].to_list()) == [R.DUPLICATE_ID, R.NULL_VALUE]


def test_rejected_rows_cascade_to_the_rows_referencing_them(tmp_path: Path) -> None:
    # a post dated before its author's account is rejected; an interaction on it then dangles
    post = good_row("posts", post_id=500, user_id=1, created_at=OLD, date=OLD.date())
    on_it = good_row("interactions", target_id=1, post_id=500)
    world = with_rows(with_rows(tiny_world(), "posts", post), "interactions", on_it)
    _, out = _validate(world, tmp_path)
    assert out["posts"][1][REJECT_REASON].to_list() == [R.BEFORE_ACCOUNT_CREATED]
    assert out["interactions"][1][REJECT_REASON].to_list() == [R.DANGLING_POST_ID]


def test_accepted_output_passes_the_pandera_models(tmp_path: Path) -> None:
    world = with_rows(
        tiny_world(), "interactions", *[r for t, r, _ in BAD_ROWS.values() if t == "interactions"]
    )
    _, out = _validate(world, tmp_path)
    for table, (accepted, _) in out.items():
        RAW_TABLES[table].validate(accepted, lazy=True)


def test_report_json_and_stage_outputs(tmp_path: Path) -> None:
    table, row, reason = BAD_ROWS["interactions/self"]
    write_raw(with_rows(tiny_world(), table, row), tmp_path / "raw")
    result = _cli(tmp_path, max_share=0.5)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "reports" / "validate.json").read_text())
    interactions = report["tables"]["interactions"]
    assert interactions["rows_in"] == 7
    assert (interactions["accepted"], interactions["rejected"]) == (6, 1)
    assert interactions["reasons"][reason.value] == 1
    assert set(interactions["reasons"]) == {r.value for r in REASONS_BY_TABLE["interactions"]}
    assert interactions["reject_share"] == pytest.approx(1 / 7, abs=1e-6)
    assert report["passed"] is True
    assert (tmp_path / "clean" / "interactions" / "date=2026-03-01" / "part-0.parquet").exists()
    assert sorted(p.name for p in (tmp_path / "rejects").iterdir()) == sorted(
        f"{t}.parquet" for t in TABLES
    )
    assert "self_interaction" in result.output
    # nothing but the published folders is left next to them
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clean", "params.yaml", "raw", "rejects", "reports",
    ]  # fmt: skip


# --- the command line and its threshold ----------------------------------------------------------


def _cli(tmp_path: Path, max_share: float, *extra: str):
    params = tmp_path / "params.yaml"
    params.write_text(f"validate:\n  max_reject_share: {max_share}\n")
    args = [
        "validate",
        "--raw", str(tmp_path / "raw"),
        "--clean", str(tmp_path / "clean"),
        "--rejects", str(tmp_path / "rejects"),
        "--report", str(tmp_path / "reports" / "validate.json"),
        "--params", str(params),
        "--now", NOW.isoformat(),
        *extra,
    ]  # fmt: skip
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize(("max_share", "exit_code"), [(0.5, 0), (0.1, 1)])
def test_threshold_sets_the_exit_code(tmp_path: Path, max_share: float, exit_code: int) -> None:
    # one bad interaction out of seven: 14% rejected
    write_raw(with_rows(tiny_world(), *BAD_ROWS["interactions/self"][:2]), tmp_path / "raw")
    result = _cli(tmp_path, max_share)
    assert result.exit_code == exit_code, result.output
    if exit_code:
        assert "interactions" in result.output and "rejected share" in result.output
    # a failed run publishes nothing: its report and rejects are kept apart
    name = "validate.failed.json" if exit_code else "validate.json"
    report = json.loads((tmp_path / "reports" / name).read_text())
    assert report["passed"] is (exit_code == 0)
    assert (tmp_path / "reports" / "validate.json").exists() is (exit_code == 0)
    assert (tmp_path / "clean").exists() is (exit_code == 0)
    assert (tmp_path / "rejects.failed" / "interactions.parquet").exists() is bool(exit_code)


def test_a_clean_world_passes_a_zero_threshold(tmp_path: Path) -> None:
    write_raw(tiny_world(), tmp_path / "raw")
    assert _cli(tmp_path, 0.0).exit_code == 0


# --- broken input: a clear error naming table and column, never a traceback ----------------------


def _mistyped(column: str, values: list) -> dict[str, pl.DataFrame]:
    world = tiny_world()
    profiles = world["profiles"].with_columns(pl.Series(column, values))
    return {**world, "profiles": profiles}


def test_a_mistyped_column_is_a_clear_error(tmp_path: Path) -> None:
    world = _mistyped("followers", [str(i) for i in range(10)])
    write_raw(world, tmp_path / "raw")
    with pytest.raises(RawInputError, match=r"profiles, column 'followers': found String"):
        run_validation(tmp_path / "raw", tmp_path / "clean", tmp_path / "rejects", NOW)
    result = _cli(tmp_path, 0.5)
    assert result.exit_code == 1
    assert "followers" in result.output and "profiles" in result.output
    assert "Traceback" not in result.output


def test_compatible_dtypes_are_accepted(tmp_path: Path) -> None:
    world = tiny_world()
    world["profiles"] = world["profiles"].with_columns(pl.col("followers").cast(pl.Int32))
    world["accounts"] = world["accounts"].with_columns(
        pl.col("network").cast(pl.Categorical),
        pl.col("created_at").dt.replace_time_zone("UTC"),
    )
    _, out = _validate(world, tmp_path)
    _same_rows(out["profiles"][0], tiny_world()["profiles"])
    _same_rows(out["accounts"][0], tiny_world()["accounts"])


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda df: df.drop("following"), r"missing column\(s\) \['following'\]"),
        (
            lambda df: df.with_columns(pl.lit(1).alias("karma")),
            r"unexpected column\(s\) \['karma'\]",
        ),
    ],
)
def test_missing_or_extra_columns_are_named(tmp_path: Path, spoil, message: str) -> None:
    world = tiny_world()
    write_raw({**world, "profiles": spoil(world["profiles"])}, tmp_path / "raw")
    with pytest.raises(RawInputError, match=message):
        run_validation(tmp_path / "raw", tmp_path / "clean", tmp_path / "rejects", NOW)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    raw = write_raw(tiny_world(), tmp_path / "raw")
    broken = raw / "posts" / "date=2026-03-02" / "part-0.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(RawInputError, match=r"table posts: .*part-0.parquet is corrupt: unreadable footer"):
        run_validation(raw, tmp_path / "clean", tmp_path / "rejects", NOW)


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    world = tiny_world()
    del world["posts"]
    write_raw(world, tmp_path / "raw")
    with pytest.raises(RawInputError, match=r"table posts: folder .* not found"):
        run_validation(tmp_path / "raw", tmp_path / "clean", tmp_path / "rejects", NOW)


def test_a_failed_run_leaves_the_previous_clean_folder_untouched(tmp_path: Path) -> None:
    write_raw(tiny_world(), tmp_path / "raw")
    run_validation(tmp_path / "raw", tmp_path / "clean", tmp_path / "rejects", NOW)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "clean").rglob("*"))

    world = tiny_world()
    world["interactions"] = world["interactions"].with_columns(pl.col("actor_id").cast(pl.String))
    write_raw(world, tmp_path / "raw")  # accounts, profiles and posts are still fine
    with pytest.raises(RawInputError, match="actor_id"):
        run_validation(tmp_path / "raw", tmp_path / "clean", tmp_path / "rejects", NOW)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "clean").rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean", "raw", "rejects"]


# --- rows in = accepted + rejected, whatever the mix ---------------------------------------------

# Cases whose bad row can be repeated with a fresh id and still fail for the same reason.
_FRESH_ID = {
    "accounts": None,
    "profiles": None,
    "posts": "post_id",
    "interactions": "interaction_id",
}
_REPEATABLE = [
    case
    for case, (table, row, reason) in BAD_ROWS.items()
    if reason != R.DUPLICATE_ID and (_FRESH_ID[table] is None or row[_FRESH_ID[table]] is not None)
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_REPEATABLE), max_size=25), st.integers(0, 3))
def test_rows_in_equals_accepted_plus_rejected(cases: list[str], good_copies: int) -> None:
    world = tiny_world()
    expected: dict[str, list[str]] = {table: [] for table in TABLES}
    for n, case in enumerate(cases):
        table, row, reason = BAD_ROWS[case]
        if _FRESH_ID[table]:
            row = {**row, _FRESH_ID[table]: 10_000 + n}
        world = with_rows(world, table, row)
        expected[table].append(reason.value)
    for copy in range(good_copies):  # valid rows with fresh ids are accepted
        world = with_rows(
            world, "interactions", good_row("interactions", interaction_id=20_000 + copy)
        )

    out = validate_tables({t: df.lazy() for t, df in world.items()}, NOW)
    for table in TABLES:
        accepted, rejected = out[table]
        assert accepted.height + rejected.height == world[table].height
        assert sorted(rejected[REJECT_REASON].to_list()) == sorted(expected[table])
        assert set(rejected[REJECT_REASON]) <= {r.value for r in REASONS_BY_TABLE[table]}
    assert out["interactions"][0].height == tiny_world()["interactions"].height + good_copies
