"""The score history under rewrites, concurrency and kills: the store stays within a bound of its
data however often days are rewritten (compaction), concurrent writers and readers (separate
processes) lose no day and never see a torn one, and a writer killed at random moments, while
writing or compacting, leaves every committed day whole and no temporary behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from historykit import READER, WRITER, day_of, day_rows, torn
from polars.testing import assert_frame_equal

from serving.history import DayRun, HistoryStore

TESTS = str(Path(__file__).parent)
REPO = Path(__file__).resolve().parents[2]


def _compacted_size(path: Path, scratch: Path) -> int:
    """The size of the store copied into a fresh file: its data without free blocks."""
    copy = scratch / "compacted.duckdb"
    copy.unlink(missing_ok=True)
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{path}' AS src (READ_ONLY)")
        con.execute(f"ATTACH '{copy}' AS dst")
        con.execute("COPY FROM DATABASE src TO dst")
    return copy.stat().st_size


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_rewritten_days_keep_the_store_within_a_bound_of_its_data(tmp_path: Path):
    """Ten 2,000-user days rewritten 40 times: without compaction the file reached 2.07x its
    data (DuckDB reuses freed blocks but never returns them); now at most 1/(1 - 0.25) of the
    blocks in use."""
    store = HistoryStore(tmp_path / "scores.duckdb")
    days, n = 10, 2_000
    for index in range(days):
        store.replace_day(day_rows(day_of(index), 1, n), DayRun(day_of(index), "v1"))
    sizes = []
    for rewrite in range(40):
        index, version = rewrite % days, 2 + rewrite // days
        store.replace_day(day_rows(day_of(index), version, n), DayRun(day_of(index), f"v{version}"))
        sizes.append(store.path.stat().st_size)
    data = _compacted_size(store.path, tmp_path)
    print(f"history file / data over 40 rewrites: max {max(sizes) / data:.2f}x, "
          f"final {sizes[-1] / data:.2f}x ({data:,} bytes of data)")
    assert max(sizes) <= 1.6 * data, [round(s / data, 2) for s in sizes]
    for index in range(days):  # every day is its last write, whole
        assert_frame_equal(store.day(day_of(index)), day_rows(day_of(index), 5, n))
    assert store.runs()["model_version"].to_list() == ["v5"] * days
    assert _leftovers(tmp_path) == []


def test_compaction_keeps_every_row_and_the_user_index(tmp_path: Path):
    store = HistoryStore(tmp_path / "scores.duckdb", compact_free_share=1.0)  # never by itself
    for index in range(4):
        store.replace_day(day_rows(day_of(index), 1, 500), DayRun(day_of(index), "v1"))
    store.replace_day(day_rows(day_of(0), 2, 500), DayRun(day_of(0), "v2"))
    before = {index: store.day(day_of(index)) for index in range(4)}
    result = store.compact()
    assert result.bytes_after <= result.bytes_before
    for index, frame in before.items():
        assert_frame_equal(store.day(day_of(index)), frame)
    with duckdb.connect(str(store.path), read_only=True) as con:
        indexes = con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()
    assert indexes == [("scores_user",)]
    assert store.user_history("user-00007", 30)["date"].to_list() == [day_of(i) for i in range(4)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "scores.duckdb", "scores.duckdb.gate", "scores.duckdb.lock", "scores.duckdb.readers"
    ]


def _spawn(script: str, **fields) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script.format(tests=TESTS, **fields)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _concurrent_run(tmp_path: Path, *, writers: int, days_each: int, versions: int, readers: int,
                    n: int) -> dict:
    path = tmp_path / "scores.duckdb"
    stop = tmp_path / "stop"
    all_days = list(range(writers * days_each))
    writing = [
        _spawn(WRITER, path=str(path), share=0.0, versions=versions, n=n,
               days=all_days[w * days_each:(w + 1) * days_each])
        for w in range(writers)
    ]  # share 0: every write compacts, the hardest case for readers
    reading = [
        _spawn(READER, path=str(path), seed=r, stop=str(stop), days=all_days, n=n)
        for r in range(readers)
    ]
    try:
        outs = [w.communicate(timeout=600) for w in writing]
    finally:
        stop.touch()
        results = [r.communicate(timeout=120) for r in reading]
    for (out, err), proc in zip(outs, writing, strict=True):
        assert proc.returncode == 0, err
        assert len(out.splitlines()) == days_each * versions
    summaries = []
    for (out, err), proc in zip(results, reading, strict=True):
        assert proc.returncode == 0, err
        summaries.append(json.loads(out))
    store = HistoryStore(path)
    for index in all_days:  # no day lost: each is its last write, whole
        assert_frame_equal(store.day(day_of(index)), day_rows(day_of(index), versions, n))
    assert store.runs()["model_version"].to_list() == [f"v{versions}"] * len(all_days)
    assert _leftovers(tmp_path) == []
    return {
        "reads": sum(s["reads"] for s in summaries),
        "problems": [p for s in summaries for p in s["problems"]],
        "busy": sum(s["busy"] for s in summaries),
    }


def test_concurrent_writers_and_readers_lose_no_day_and_see_no_torn_one(tmp_path: Path):
    outcome = _concurrent_run(tmp_path, writers=2, days_each=4, versions=2, readers=2, n=300)
    print(f"history concurrency: {outcome}")
    assert outcome["problems"] == []
    assert outcome["busy"] == 0
    assert outcome["reads"] > 0


@pytest.mark.slow
def test_concurrent_writers_and_readers_at_length(tmp_path: Path):
    outcome = _concurrent_run(tmp_path, writers=3, days_each=10, versions=3, readers=3, n=3_000)
    print(f"history concurrency: {outcome}")
    assert outcome["problems"] == [] and outcome["busy"] == 0 and outcome["reads"] > 50


def _kill_a_writer_at_random_moments(tmp_path: Path, kills: int, n: int, seed: int) -> int:
    """A writer rewriting 6 days over and over (compacting after every write) is SIGKILLed at
    random moments; after each kill every day it reported committed must read whole, the
    store must open, and the next write must remove what the killed one left."""
    rng = random.Random(seed)
    path = tmp_path / "scores.duckdb"
    ever: set[int] = set()
    for _ in range(kills):
        writer = _spawn(WRITER, path=str(path), share=0.0, versions=1_000, n=n, days=list(range(6)))
        first = writer.stdout.readline()  # the process is up and has committed once
        assert first.startswith("committed"), writer.stderr.read()
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(writer.pid, signal.SIGKILL)
        out, _ = writer.communicate(timeout=30)
        reported = {}
        for line in [first, *out.splitlines()]:
            _, index, version = line.split()
            reported[int(index)] = int(version)
        ever |= set(reported)
        store = HistoryStore(path)
        for index in sorted(ever):
            frame = store.day(day_of(index))
            assert frame.height and torn(frame, n) is None, (index, torn(frame, n))
            if index in reported:  # this run's last reported write, or one after it
                assert int(frame["model_version"][0][1:]) >= reported[index]
    HistoryStore(path).replace_day(day_rows(day_of(9), 1, n), DayRun(day_of(9), "v1"))
    assert _leftovers(tmp_path) == []
    return kills


def test_a_writer_killed_while_writing_or_compacting_leaves_every_committed_day(tmp_path: Path):
    assert _kill_a_writer_at_random_moments(tmp_path, kills=3, n=400, seed=11) == 3


@pytest.mark.slow
def test_a_writer_killed_at_many_moments(tmp_path: Path):
    assert _kill_a_writer_at_random_moments(tmp_path, kills=15, n=2_000, seed=12) == 15
