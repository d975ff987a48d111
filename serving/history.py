"""The score history: one row per user and day in an embedded DuckDB file (the lookups the
service answers from it are `serving.history_api`).

Layout of the store (path `score_daily.store`, default `data/history/scores.duckdb`):

    scores  one row per (user_id, date), index on user_id
        user_id        VARCHAR
        date           DATE       the as-of day T the snapshot was built for
        score          DOUBLE     the published score (smoothed, see `serving.daily`)
        raw_score      DOUBLE     the model's score that day, unsmoothed
        percentile     DOUBLE     percentile of the published score (reference population)
        provisional    BOOLEAN    the model flagged the score provisional (young/thin accounts)
        points         STRUCT(twitter DOUBLE, ..., cross_network DOUBLE, not_linked DOUBLE,
                                  new_account DOUBLE) points of the model's score per network,
                                  split as the service's explanations (null: network not
                                  linked); they add up to raw_score - baseline
        signal_hash    UBIGINT    fingerprint of the day's signal snapshot (smoothing holds the
                                  score exactly when it equals the previous day's)
        model_version  VARCHAR
        written_at     TIMESTAMP  UTC
    runs    one row per day written: date, model_version, users, baseline (the model's score of
            its average user), half_life_days, dead_band, written_at, seconds

A day is replaced in one transaction: DELETE its rows, INSERT the new ones, replace its `runs` row,
COMMIT. Nothing is visible before the commit, and a process killed before it leaves the previous
history as it was (DuckDB discards an uncommitted transaction on the next open).

Concurrency: a DuckDB file is open either by one writer or by any number of readers. The service
opens the file read-only for each lookup (~20 ms) and the daily job opens it for writing only for
the write itself (snapshots and scoring happen before), so each side only waits for the other's
short access; both retry while the file is locked. Lock files beside the store, never replaced,
order the rest (`flock`, released when a process dies):
- `<store>.lock`: writers hold it for a whole write and any compaction after it, so two writers
  queue whole and none opens a file that a compaction is about to replace;
- `<store>.gate` and `<store>.readers`: a readers-writer lock in which writers go first. Without
  it a steady stream of short reads, each holding DuckDB's shared lock, kept a writer out until
  it timed out; and a compaction swaps the file in only while no reader is inside, since a
  reader opening the file during the swap failed ("Failed to deserialize: field id mismatch").
  Both seen with three writers and three readers looping over a 3,000-user store.

Compaction: DuckDB reuses the blocks a rewritten day frees but never gives them back, so a store
whose days are rewritten holds up to about twice its data (measured: 2.07x over 60 rewrites of
ten 2,000-user days). After each write, when more than `compact_free_share` (25%) of the file's
blocks are free, the writer copies the store into a fresh file (`COPY FROM DATABASE`, in a
hidden temporary folder beside it), checks the row counts, flushes it and renames it over the
store in one step. Readers see the old file or the new one, both whole; a process killed while
compacting leaves the store as it was, and the next writer removes its temporary folder
(`influence.publish.clean_stale`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from influence import publish
from influence.vocabulary import NETWORKS

STORE_ENV = "INFLUENCE_HISTORY_STORE"
"""Overrides `score_daily.store` (the service and the CLI read it)."""

CROSS_NETWORK, NOT_LINKED, NEW_ACCOUNT = "cross_network", "not_linked", "new_account"
"""`training.explain`'s bucket names, spelled here so that reading the history does not import
the training stack (scipy); a test checks they agree."""
POINT_BUCKETS: tuple[str, ...] = (*NETWORKS, CROSS_NETWORK, NOT_LINKED, NEW_ACCOUNT)
"""Per-network points of a score, the split of the service's explanations
(`ModelBundle.network_points`): each linked network (cross-network signals shared among them by
engagement), what is left of the cross-network signals, what unlinked networks' missing values
do, and the hold-back of a young account; they add up to the model's score minus the baseline."""
POINTS_DTYPE = pl.Struct({bucket: pl.Float64 for bucket in POINT_BUCKETS})
HISTORY_SCHEMA = pl.Schema(
    {
        "user_id": pl.String,
        "date": pl.Date,
        "score": pl.Float64,
        "raw_score": pl.Float64,
        "percentile": pl.Float64,
        "provisional": pl.Boolean,
        "points": POINTS_DTYPE,
        "signal_hash": pl.UInt64,
        "model_version": pl.String,
        "written_at": pl.Datetime("us"),
    }
)
HISTORY_COLUMNS: tuple[str, ...] = tuple(HISTORY_SCHEMA.names())

_POINTS_SQL = ", ".join(f"{bucket} DOUBLE" for bucket in POINT_BUCKETS)
_USER_INDEX = "CREATE INDEX IF NOT EXISTS scores_user ON scores (user_id)"
_DDL = (
    f"""
    CREATE TABLE IF NOT EXISTS scores (
        user_id VARCHAR NOT NULL,
        date DATE NOT NULL,
        score DOUBLE NOT NULL,
        raw_score DOUBLE NOT NULL,
        percentile DOUBLE,
        provisional BOOLEAN,
        points STRUCT({_POINTS_SQL}),
        signal_hash UBIGINT,
        model_version VARCHAR NOT NULL,
        written_at TIMESTAMP NOT NULL
    )
    """,
    _USER_INDEX,
    """
    CREATE TABLE IF NOT EXISTS runs (
        date DATE NOT NULL,
        model_version VARCHAR NOT NULL,
        users BIGINT NOT NULL,
        baseline DOUBLE,
        half_life_days DOUBLE,
        dead_band DOUBLE,
        written_at TIMESTAMP NOT NULL,
        seconds DOUBLE
    )
    """,
)

COMPACT_FREE_SHARE = 0.25
"""A write that leaves more than this share of the file's blocks free compacts the store."""


class StoreBusy(RuntimeError):
    """The store file stayed locked by another process longer than the timeout."""


class HistoryFrameError(ValueError):
    """Rows handed to the store do not have the layout of `scores`."""


@dataclass(frozen=True)
class DayRun:
    """What the `runs` table records about one written day."""

    day: date
    model_version: str
    baseline: float | None = None
    half_life_days: float | None = None
    dead_band: float | None = None
    seconds: float | None = None


# --------------------------------------------------------------------------------------------
# the store (I/O)
# --------------------------------------------------------------------------------------------


def _is_lock_error(error: Exception) -> bool:
    return isinstance(error, duckdb.IOException) and "lock" in str(error).lower()


@dataclass(frozen=True)
class Compaction:
    """What one compaction did: the file's size before and after, and how long it took."""

    bytes_before: int
    bytes_after: int
    seconds: float


@dataclass(frozen=True)
class HistoryStore:
    path: Path
    lock_timeout_seconds: float = 30.0
    compact_free_share: float = COMPACT_FREE_SHARE

    @contextmanager
    def connect(self, *, write: bool, timeout: float | None = None) -> Iterator[Any]:
        """A connection to the file, retried while another process holds its lock, inside the
        store's readers-writer lock (`_gate`)."""
        timeout = self.lock_timeout_seconds if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if write:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._gate(write, deadline):
            pause = 0.01
            while True:
                try:
                    con = duckdb.connect(str(self.path), read_only=not write)
                    break
                except duckdb.IOException as error:
                    if not _is_lock_error(error) or time.monotonic() >= deadline:
                        if _is_lock_error(error):
                            raise StoreBusy(f"{self.path} is locked by another process: {error}") from error
                        raise
                    time.sleep(pause)
                    pause = min(pause * 2, 0.05 if write else 0.25)
            try:
                if write:
                    for statement in _DDL:
                        con.execute(statement)
                    _add_missing_point_buckets(con)
                yield con
            finally:
                con.close()

    @contextmanager
    def _gate(self, write: bool, deadline: float) -> Iterator[None]:
        """A readers-writer lock that lets writers go first, on two files beside the store: a
        writer closes the turnstile (`<store>.gate`) so that no new reader comes in, then waits
        for the readers inside to leave (`<store>.readers`, exclusive); a reader passes the
        turnstile and holds `<store>.readers` shared while it reads."""
        gate, readers = Path(f"{self.path}.gate"), Path(f"{self.path}.readers")
        flags = os.O_RDWR | os.O_CREAT if write else os.O_RDONLY
        try:
            fds = [os.open(gate, flags, 0o644), os.open(readers, flags, 0o644)]
        except FileNotFoundError:  # no writer ever: nothing to wait for
            yield
            return
        try:
            if write:
                _flock(fds[0], fcntl.LOCK_EX, deadline, self.path)
                _flock(fds[1], fcntl.LOCK_EX, deadline, self.path)
            else:
                _flock(fds[0], fcntl.LOCK_SH, deadline, self.path)
                fcntl.flock(fds[0], fcntl.LOCK_UN)
                _flock(fds[1], fcntl.LOCK_SH, deadline, self.path)
            yield
        finally:
            for fd in fds:
                os.close(fd)  # and the locks with it

    def exists(self) -> bool:
        return Path(self.path).is_file()

    @contextmanager
    def writing(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the writers' lock (`<store>.lock`, never replaced, released if the process
        dies); temporaries of a killed compaction are removed first."""
        timeout = self.lock_timeout_seconds if timeout is None else timeout
        lock = Path(f"{self.path}.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _flock(fd, fcntl.LOCK_EX, time.monotonic() + timeout, self.path)
            publish.clean_stale(Path(self.path))
            yield
        finally:
            os.close(fd)

    def compact(self) -> Compaction:
        """Rewrite the store into a fresh file without its free blocks (see the module's
        docstring)."""
        with self.writing():
            with self.connect(write=True) as con:  # replays a WAL a killed writer left
                con.execute("CHECKPOINT")
            return self._compact()

    def _compact(self) -> Compaction:
        started = time.perf_counter()
        target = Path(self.path)
        before = target.stat().st_size
        folder = publish.temp_path(target)
        folder.mkdir()
        fresh = folder / target.name
        try:
            con = duckdb.connect()
            try:
                con.execute("SET enable_progress_bar = false")  # stdout is the CLI's report
                con.execute(f"ATTACH {_sql_text(target)} AS src (READ_ONLY)")
                con.execute(f"ATTACH {_sql_text(fresh)} AS dst")
                con.execute("COPY FROM DATABASE src TO dst")
                for table in ("scores", "runs"):
                    counts = [
                        con.execute(f"SELECT count(*) FROM {db}.{table}").fetchone()[0]
                        for db in ("src", "dst")
                    ]
                    if counts[0] != counts[1]:
                        raise RuntimeError(f"compacting {target}: {table} {counts[0]} rows, copy {counts[1]}")
                con.execute("DETACH dst")
                con.execute("DETACH src")
            finally:
                con.close()
            publish.sync_tree(folder)
            # no reader may be opening the file while it is swapped: one that was failed to
            # read it ("Failed to deserialize"), once in four runs of the long concurrency test
            with self._gate(True, time.monotonic() + self.lock_timeout_seconds):
                os.replace(fresh, target)
                publish.sync_dir(target.parent)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return Compaction(before, target.stat().st_size, time.perf_counter() - started)

    # --- writing -----------------------------------------------------------------------------

    def replace_day(
        self,
        rows: pl.DataFrame,
        run: DayRun,
        *,
        chunk_rows: int = 50_000,
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> int:
        """Replace day `run.day` by `rows` in one transaction. `on_chunk(written, total)` is called
        after each inserted chunk, inside the transaction. Returns the number of rows written."""
        rows = conform_rows(rows, run.day)
        with self.writing():
            free = self._write_day(rows, run, chunk_rows, on_chunk)
            if free > self.compact_free_share:
                self._compact()
        return rows.height

    def _write_day(
        self,
        rows: pl.DataFrame,
        run: DayRun,
        chunk_rows: int,
        on_chunk: Callable[[int, int], None] | None,
    ) -> float:
        """The transaction of `replace_day`; returns the share of the file's blocks left free."""
        with self.connect(write=True) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("DELETE FROM scores WHERE date = ?", [run.day])
                for start in range(0, rows.height, chunk_rows):
                    chunk = rows.slice(start, chunk_rows).to_arrow()
                    con.register("incoming", chunk)
                    con.execute("INSERT INTO scores BY NAME SELECT * FROM incoming")
                    con.unregister("incoming")
                    if on_chunk is not None:
                        on_chunk(min(start + chunk_rows, rows.height), rows.height)
                con.execute("DELETE FROM runs WHERE date = ?", [run.day])
                con.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run.day, run.model_version, rows.height, run.baseline, run.half_life_days,
                     run.dead_band, utc_now(), run.seconds],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("CHECKPOINT")
            return free_share(con)

    # --- reading -----------------------------------------------------------------------------

    def _read(self, sql: str, parameters: list | None = None, *, timeout: float | None = None) -> pl.DataFrame | None:
        """A query's result, None when there is no store yet."""
        if not self.exists():
            return None
        with self.connect(write=False, timeout=timeout) as con:
            if not _has_table(con, "scores"):
                return None
            return pl.from_arrow(con.sql(sql, params=parameters or []).to_arrow_table())

    def previous_published(self, day: date, max_gap_days: int) -> pl.DataFrame:
        """Each user's latest row before `day`, at most `max_gap_days` old: user_id, date, score,
        signal_hash, model_version (empty when there is none)."""
        frame = self._read(
            """
            SELECT user_id, date, score, signal_hash, model_version FROM scores
            WHERE date < ? AND date >= ?
            QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY date DESC) = 1
            """,
            [day, day - timedelta(days=max_gap_days)],
        )
        return _or_empty(frame, ["user_id", "date", "score", "signal_hash", "model_version"])

    def user_history(self, user_id: str, days: int, *, timeout: float | None = None) -> pl.DataFrame:
        """The user's rows of the `days` days ending on their latest day, oldest first."""
        frame = self._read(
            """
            WITH u AS (SELECT * FROM scores WHERE user_id = ?)
            SELECT * FROM u WHERE date > (SELECT max(date) FROM u) - CAST(? AS INTEGER)
            ORDER BY date
            """,
            [user_id, days],
            timeout=timeout,
        )
        return _or_empty(frame, list(HISTORY_COLUMNS))

    def day(self, day: date) -> pl.DataFrame:
        frame = self._read("SELECT * FROM scores WHERE date = ? ORDER BY user_id", [day])
        return _or_empty(frame, list(HISTORY_COLUMNS))

    def runs(self) -> pl.DataFrame:
        frame = self._read("SELECT * FROM runs ORDER BY date")
        return frame if frame is not None else pl.DataFrame()

    def days(self, model_version: str | None = None) -> list[date]:
        """Days written (by `model_version` only, when given)."""
        runs = self.runs()
        if runs.height and model_version is not None:
            runs = runs.filter(pl.col("model_version") == model_version)
        return runs["date"].to_list() if runs.height else []


def _add_missing_point_buckets(con: Any) -> None:
    """Stores written before a bucket existed get it (null for their days). DuckDB alters a
    column's type only without indexes on the table, so the user index is rebuilt around it."""
    kind = con.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'scores' AND column_name = 'points'"
    ).fetchone()[0]
    missing = [b for b in POINT_BUCKETS if f"{b} DOUBLE" not in kind.replace('"', "")]
    if not missing:
        return
    added = ", ".join(f"{b} := NULL::DOUBLE" for b in missing)
    con.execute("DROP INDEX IF EXISTS scores_user")
    con.execute(
        f"ALTER TABLE scores ALTER points TYPE STRUCT({_POINTS_SQL}) "
        f"USING struct_insert(points, {added})"
    )
    con.execute(_USER_INDEX)


def _flock(fd: int, kind: int, deadline: float, store: Path) -> None:
    """flock `kind` on `fd`, polled until `deadline` (then StoreBusy)."""
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreBusy(f"{store} is being written by another process") from None
            time.sleep(0.005)


def free_share(con: Any) -> float:
    """The share of the open database file's blocks that are free (after a checkpoint)."""
    total, free = con.execute("SELECT total_blocks, free_blocks FROM pragma_database_size()").fetchone()
    return free / total if total else 0.0


def _sql_text(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _has_table(con: Any, name: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return bool(found[0][0])


def _or_empty(frame: pl.DataFrame | None, columns: list[str]) -> pl.DataFrame:
    if frame is not None:
        return frame
    return pl.DataFrame(schema={c: HISTORY_SCHEMA[c] for c in columns})


def utc_now() -> datetime:
    """Naive UTC, as the store keeps it."""
    return datetime.now(UTC).replace(tzinfo=None)


def conform_rows(rows: pl.DataFrame, day: date) -> pl.DataFrame:
    """The rows in the store's column order and types, checked: one day, one row per user, a
    score within 1-100."""
    missing = [c for c in HISTORY_COLUMNS if c not in rows.columns]
    if missing:
        raise HistoryFrameError(f"history rows miss columns {missing}")
    rows = rows.select(HISTORY_COLUMNS).cast(dict(HISTORY_SCHEMA))
    if rows.height == 0:
        return rows
    days = rows["date"].unique().to_list()
    if days != [day]:
        raise HistoryFrameError(f"history rows of day {day} carry dates {sorted(days)[:5]}")
    if rows["user_id"].null_count() or rows["user_id"].n_unique() != rows.height:
        raise HistoryFrameError("history rows need exactly one row per non-null user_id")
    scores = rows["score"]
    if scores.null_count() or scores.min() < 1 or scores.max() > 100:
        raise HistoryFrameError("published scores must be within 1-100")
    return rows


def default_store() -> HistoryStore:
    """The store of params.yaml (`score_daily.store`), or $INFLUENCE_HISTORY_STORE."""
    from influence.params import default_params

    settings = default_params().score_daily
    path = os.environ.get(STORE_ENV) or settings.store
    return HistoryStore(Path(path), settings.lock_timeout_seconds)
