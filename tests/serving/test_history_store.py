"""The score-history store: idempotent day replacement, crash safety, reads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from historybuild import history_rows
from polars.testing import assert_frame_equal

from serving.history import DayRun, HistoryFrameError, HistoryStore, StoreBusy

DAY = date(2026, 10, 1)
REPO = Path(__file__).resolve().parents[2]


def _without_written_at(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("written_at").sort("date", "user_id")


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "history" / "scores.duckdb", lock_timeout_seconds=2)


def test_a_day_written_reads_back_as_it_was(store: HistoryStore):
    rows = history_rows(DAY, {"a": 41.5, "b": 63.25, "c": 1.0})
    store.replace_day(rows, DayRun(DAY, "1"))
    assert_frame_equal(store.day(DAY), rows)
    runs = store.runs()
    assert runs["date"].to_list() == [DAY] and runs["users"].to_list() == [3]


def test_rewriting_a_day_replaces_it_and_leaves_other_days_alone(store: HistoryStore):
    other = history_rows(DAY - timedelta(days=1), {"a": 40.0, "b": 60.0})
    store.replace_day(other, DayRun(other["date"][0], "1"))
    first = history_rows(DAY, {"a": 41.0, "b": 61.0, "c": 20.0})
    store.replace_day(first, DayRun(DAY, "1"))
    second = history_rows(DAY, {"a": 45.0, "d": 30.0}, model_version="2")
    store.replace_day(second, DayRun(DAY, "2"))
    store.replace_day(second, DayRun(DAY, "2"))  # and again: nothing changes

    assert_frame_equal(store.day(DAY), second)
    assert_frame_equal(store.day(other["date"][0]), other)
    runs = store.runs()
    assert runs["date"].to_list() == [other["date"][0], DAY]
    assert runs["model_version"].to_list() == ["1", "2"]
    assert runs["users"].to_list() == [2, 2]


def test_rows_of_another_day_or_repeated_users_are_refused(store: HistoryStore):
    with pytest.raises(HistoryFrameError, match="dates"):
        store.replace_day(history_rows(DAY, {"a": 40.0}), DayRun(DAY + timedelta(days=1), "1"))
    twice = pl.concat([history_rows(DAY, {"a": 40.0})] * 2)
    with pytest.raises(HistoryFrameError, match="one row per"):
        store.replace_day(twice, DayRun(DAY, "1"))
    with pytest.raises(HistoryFrameError, match="1-100"):
        store.replace_day(history_rows(DAY, {"a": 140.0}), DayRun(DAY, "1"))
    assert not store.exists() or store.day(DAY).height == 0


def test_a_failed_write_rolls_back_the_whole_day(store: HistoryStore):
    before = history_rows(DAY, {u: 40.0 for u in "abcdef"})
    store.replace_day(before, DayRun(DAY, "1"))

    def fail_after_first_chunk(written: int, total: int) -> None:
        raise RuntimeError("disk full")

    after = history_rows(DAY, {u: 50.0 for u in "abcdef"}, model_version="2")
    with pytest.raises(RuntimeError, match="disk full"):
        store.replace_day(after, DayRun(DAY, "2"), chunk_rows=2, on_chunk=fail_after_first_chunk)
    assert_frame_equal(store.day(DAY), before)
    assert store.runs()["model_version"].to_list() == ["1"]


def test_previous_published_is_each_users_latest_row_within_the_gap(store: HistoryStore):
    for offset, scores in ((40, {"old": 10.0}), (3, {"a": 30.0, "b": 31.0}), (1, {"a": 33.0})):
        day = DAY - timedelta(days=offset)
        store.replace_day(history_rows(day, scores), DayRun(day, "1"))
    store.replace_day(history_rows(DAY, {"a": 99.0}), DayRun(DAY, "1"))  # not before DAY

    previous = store.previous_published(DAY, max_gap_days=30).sort("user_id")
    assert previous["user_id"].to_list() == ["a", "b"]
    assert previous["score"].to_list() == [33.0, 31.0]
    assert previous["date"].to_list() == [DAY - timedelta(days=1), DAY - timedelta(days=3)]


def test_reads_of_a_missing_store_are_empty(store: HistoryStore):
    assert store.user_history("a", 30).height == 0
    assert store.previous_published(DAY, 30).height == 0
    assert store.days() == []
    assert not store.exists()


def test_user_history_is_the_last_days_ending_on_the_users_latest_day(store: HistoryStore):
    for offset in range(10):
        day = DAY - timedelta(days=offset)
        scores = {"a": 40.0 + offset} | ({"b": 20.0} if offset > 5 else {})
        store.replace_day(history_rows(day, scores), DayRun(day, "1"))
    a = store.user_history("a", 3)
    assert a["date"].to_list() == [DAY - timedelta(days=2), DAY - timedelta(days=1), DAY]
    b = store.user_history("b", 2)
    assert b["date"].to_list() == [DAY - timedelta(days=7), DAY - timedelta(days=6)]
    assert store.user_history("nobody", 30).height == 0


# --- concurrency and crash safety ------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import date
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from historybuild import history_rows
    from serving.history import DayRun, HistoryStore

    store = HistoryStore(Path({path!r}))
    day = date.fromisoformat({day!r})
    rows = history_rows(day, {{f"u{{i:05d}}": 77.0 for i in range(8_000)}}, model_version="2")

    def stall(written, total):
        Path({marker!r}).write_text(f"{{written}}/{{total}}")
        time.sleep(600)  # killed here, mid-transaction, with rows already inserted

    store.replace_day(rows, DayRun(day, "2"), chunk_rows=2_000, on_chunk=stall)
    """
)


def test_a_run_killed_mid_write_leaves_the_store_readable_and_unchanged(
    store: HistoryStore, tmp_path: Path
):
    previous_day = DAY - timedelta(days=1)
    yesterday = history_rows(previous_day, {f"u{i:05d}": 40.0 for i in range(500)})
    today = history_rows(DAY, {f"u{i:05d}": 41.0 for i in range(500)})
    store.replace_day(yesterday, DayRun(previous_day, "1"))
    store.replace_day(today, DayRun(DAY, "1"))
    before_scores = store.day(DAY)
    size_before = store.path.stat().st_size

    marker = tmp_path / "inside-transaction"
    script = _WRITER.format(
        tests=str(Path(__file__).parent), path=str(store.path), day=DAY.isoformat(), marker=str(marker)
    )
    writer = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert writer.poll() is None, "the writer ended before the kill"
            assert time.monotonic() < deadline, "the writer never reached its first chunk"
            time.sleep(0.05)
        assert marker.read_text() == "2000/8000"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    # readable by a reader (read-only), then by a writer, and unchanged
    with duckdb.connect(str(store.path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM scores").fetchone() == (1000,)
    assert_frame_equal(store.day(DAY), before_scores)
    assert_frame_equal(store.day(previous_day), yesterday)
    assert store.runs()["model_version"].to_list() == ["1", "1"]
    # and still writable
    store.replace_day(history_rows(DAY, {"z": 50.0}), DayRun(DAY, "3"))
    assert store.day(DAY)["user_id"].to_list() == ["z"]
    assert size_before > 0


def test_a_reader_waits_for_a_short_write_and_gives_up_on_a_long_one(store: HistoryStore):
    store.replace_day(history_rows(DAY, {"a": 40.0}), DayRun(DAY, "1"))
    holder = subprocess.Popen(
        [sys.executable, "-c",
         (f"import duckdb, time; c = duckdb.connect({str(store.path)!r}); "
          "print('held', flush=True); time.sleep(float(input()))")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(StoreBusy):
            store.user_history("a", 30, timeout=0.3)
        assert time.monotonic() - started < 5
        holder.stdin.write("0.5\n")
        holder.stdin.flush()
        assert store.user_history("a", 30, timeout=20)["score"].to_list() == [40.0]
    finally:
        holder.kill()
        holder.wait()


def test_the_point_buckets_are_those_of_the_explanations():
    from serving import history
    from training import explain

    assert (history.CROSS_NETWORK, history.NOT_LINKED, history.NEW_ACCOUNT) == (
        explain.CROSS_NETWORK, explain.NOT_LINKED, explain.NEW_ACCOUNT
    )


def test_a_store_from_before_new_account_points_gains_the_bucket(tmp_path):
    """A store written when points had no `new_account` is altered in place on the next write:
    its rows are kept (the new bucket null for them), new rows carry it."""
    from serving.history import NETWORKS, POINT_BUCKETS

    path = tmp_path / "old.duckdb"
    old_buckets = [b for b in POINT_BUCKETS if b != "new_account"]
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE scores (user_id VARCHAR NOT NULL, date DATE NOT NULL, score DOUBLE NOT NULL, "
        "raw_score DOUBLE NOT NULL, percentile DOUBLE, provisional BOOLEAN, points STRUCT("
        + ", ".join(f"{b} DOUBLE" for b in old_buckets)
        + "), signal_hash UBIGINT, model_version VARCHAR NOT NULL, written_at TIMESTAMP NOT NULL)"
    )
    con.execute("CREATE INDEX scores_user ON scores (user_id)")
    points = "{" + ", ".join(f"'{b}': {1.0 if b == NETWORKS[0] else 'NULL'}" for b in old_buckets) + "}"
    con.execute(
        f"INSERT INTO scores VALUES ('a', DATE '2026-10-01', 40, 40, 50, false, {points}, 1, 'v1', "
        "TIMESTAMP '2026-10-01 03:00:00')"
    )
    con.close()
    store = HistoryStore(path)
    store.replace_day(history_rows(date(2026, 10, 2), {"b": 41.0}), DayRun(date(2026, 10, 2), "v1"))
    old = store.user_history("a", 30).row(0, named=True)
    assert old["score"] == 40 and old["points"][NETWORKS[0]] == 1.0
    assert old["points"]["new_account"] is None
    assert set(store.day(date(2026, 10, 2))["points"].struct.fields) == set(POINT_BUCKETS)
