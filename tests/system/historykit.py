"""Score-history rows whose every value says which day and which write they came from, so that a
reader can tell a whole day from a torn one, and the writer and reader scripts the concurrency and
kill tests run as separate processes (DuckDB locks are per process)."""

from __future__ import annotations

import zlib
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from serving.history import HISTORY_SCHEMA, POINT_BUCKETS

START = date(2026, 9, 1)


def day_of(index: int) -> date:
    return START + timedelta(days=index)


def users(n: int) -> list[str]:
    return [f"user-{i:05d}" for i in range(n)]


def version_score(day: date, version: int, user: str) -> float:
    """The score `user` gets on `day` in write `version`: 1..100, different for every version."""
    seed = zlib.crc32(f"{day}|{user}".encode())
    return float(1 + (seed + 37 * version) % 99)


def day_rows(day: date, version: int, n: int) -> pl.DataFrame:
    """One day of `n` users from write `version`; the points and fingerprint are random (as real
    ones compress: poorly), the score and model_version say (day, version)."""
    rng = np.random.default_rng(zlib.crc32(f"{day}|{version}".encode()))
    ids = users(n)
    points = pl.DataFrame({b: rng.normal(0, 5, n).round(2) for b in POINT_BUCKETS})
    return pl.DataFrame(
        {
            "user_id": ids,
            "date": [day] * n,
            "score": [version_score(day, version, u) for u in ids],
            "raw_score": rng.uniform(1, 100, n).round(2),
            "percentile": rng.uniform(0, 100, n).round(2),
            "provisional": rng.random(n) < 0.1,
            "points": points.to_struct(),
            "signal_hash": rng.integers(0, 2**63, n, dtype=np.uint64),
            "model_version": [f"v{version}"] * n,
            "written_at": [datetime(2026, 11, 2, 6, 0)] * n,
        }
    ).cast(dict(HISTORY_SCHEMA))


def torn(frame: pl.DataFrame, n: int) -> str | None:
    """What is wrong with a day as read (None: it is absent, or whole and from one write)."""
    if frame.height == 0:
        return None
    versions = frame["model_version"].unique().to_list()
    if len(versions) != 1:
        return f"rows of writes {sorted(versions)} mixed"
    if frame.height != n:
        return f"{frame.height} rows of {n}"
    version = int(versions[0][1:])
    day = frame["date"][0]
    expected = [version_score(day, version, u) for u in frame["user_id"].to_list()]
    if frame["score"].to_list() != expected:
        return f"scores of {day} are not those of write {version}"
    return None


WRITER = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from historykit import day_of, day_rows
from serving.history import DayRun, HistoryStore
store = HistoryStore(Path({path!r}), lock_timeout_seconds=60, compact_free_share={share!r})
for version in range(1, {versions} + 1):
    for index in {days!r}:
        day = day_of(index)
        store.replace_day(day_rows(day, version, {n}), DayRun(day, f"v{{version}}"))
        print(f"committed {{index}} {{version}}", flush=True)
"""

READER = """
import json, random, sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from historykit import day_of, torn, users
from serving.history import HistoryStore, StoreBusy
store = HistoryStore(Path({path!r}), lock_timeout_seconds=60)
rng = random.Random({seed})
stop = Path({stop!r})
reads, problems, busy, seen = 0, [], 0, set()
while not stop.exists():
    index = rng.choice({days!r})
    try:
        frame = store.day(day_of(index))
        history = store.user_history(rng.choice(users({n})), 400)
    except StoreBusy:
        busy += 1
        continue
    reads += 1
    problem = torn(frame, {n})
    if problem:
        problems.append(f"day {{index}}: {{problem}}")
    if frame.height:
        seen.add(index)
    if history["date"].n_unique() != history.height:
        problems.append("a user's history repeats a day")
print(json.dumps({{"reads": reads, "problems": problems[:5], "busy": busy, "seen": len(seen)}}))
"""
