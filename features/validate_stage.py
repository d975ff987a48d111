"""The validate stage: read a raw folder, run `features.validate`, write clean tables, rejects and
a report. Only I/O and bookkeeping live here; the rules are in `features.validate`.

Layout read and written:
    <raw|clean>/accounts/part-0.parquet
    <raw|clean>/{profiles,posts,interactions}/date=YYYY-MM-DD/part-N.parquet
    <rejects>/<table>.parquet          every rejected row, its columns + reject_reason

Every raw file is checked first (`features.parquet_check`: each page decoded, its checksum
verified where the writer stored one, the values held against the footer), so a corrupt,
truncated or garbled file is an error naming that file, never rows read "without complaint".

Clean tables and rejects are written to temporary folders (`influence.publish`) and swapped in
only once every table is written, counted, checked, and under the reject threshold: a run that
fails for any reason publishes nothing, and the previous clean tables and rejects stay exactly
as they were. A run that fails the threshold keeps its rejects apart, in `<rejects>.failed`, for
the operator to look at.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from features.parquet_check import CorruptFile, check_files
from features.raw_schema import PARTITIONED_BY_DATE, RAW_TABLES
from features.validate import (
    REASONS_BY_TABLE,
    REJECT_REASON,
    columns_of,
    flag_accounts,
    flag_interactions,
    flag_posts,
    flag_profiles,
)
from influence import publish

TABLE_ORDER = ("accounts", "profiles", "posts", "interactions")
"""Referenced tables first: cross-table rules check against the accepted rows written before."""

_DATE_DIR = re.compile(r"^date=(.+)$")


class RawInputError(Exception):
    """A raw table cannot be read as the contract says: the message names table, column, file."""


class CleanSchemaError(Exception):
    """Accepted rows failed the pandera model: a bug in the rules, never a data problem."""


class RejectShareExceeded(Exception):
    """Some table's rejected share passed the threshold: nothing was published."""

    def __init__(self, reports: dict, failing: list[str], threshold: float, kept: Path):
        shares = ", ".join(f"{t} {reports[t].reject_share:.2%}" for t in failing)
        super().__init__(
            f"rejected share above {threshold:.2%} in {shares}; the previous clean tables are "
            f"unchanged, this run's rejects are in {kept}"
        )
        self.reports, self.failing, self.threshold, self.kept = reports, failing, threshold, kept


@dataclass(frozen=True)
class TableReport:
    rows_in: int
    accepted: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)
    files: int = 0
    checksummed_files: int = 0
    """Raw files whose every page carries a checksum (verified); in the others a garbled byte
    is caught only where it breaks decoding or contradicts the footer statistics."""

    @property
    def reject_share(self) -> float:
        return self.rejected / self.rows_in if self.rows_in else 0.0

    def to_json(self) -> dict:
        return {**asdict(self), "reject_share": round(self.reject_share, 6)}


# --- reading raw tables --------------------------------------------------------------------------


def expected_schema(table: str) -> pl.Schema:
    columns = RAW_TABLES[table].to_schema().columns
    return pl.Schema({name: column.dtype.type for name, column in columns.items()})


def _part_number(path: Path) -> tuple[int, str]:
    digits = re.findall(r"\d+", path.stem)
    return (int(digits[-1]) if digits else 0, path.name)


@dataclass(frozen=True)
class RawFile:
    path: Path
    day: date | None
    """From the `date=` folder; None for unpartitioned tables."""


def raw_files(root: Path, table: str) -> list[RawFile]:
    """The table's parquet files in reading order: by date, then part number, so "first" in
    duplicate detection means earliest partition, earliest file, earliest row."""
    folder = root / table
    if not folder.is_dir():
        raise RawInputError(f"table {table}: folder {folder} not found")
    paths = [
        p
        for p in folder.rglob("*.parquet")
        if not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    ]
    if not paths:
        raise RawInputError(f"table {table}: no parquet files under {folder}")
    if table not in PARTITIONED_BY_DATE:
        return [RawFile(p, None) for p in sorted(paths, key=_part_number)]
    files = []
    for path in paths:
        match = _DATE_DIR.match(path.parent.name)
        if match is None:
            raise RawInputError(
                f"table {table}: {path} is not inside a date=YYYY-MM-DD partition folder"
            )
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            raise RawInputError(
                f"table {table}: partition folder {path.parent.name!r} is not date=YYYY-MM-DD"
            ) from None
        files.append(RawFile(path, day))
    return sorted(files, key=lambda f: (f.day, _part_number(f.path)))


def _conform(table: str, column: str, found: pl.DataType, expected: pl.DataType, where: Path):
    """An expression casting a column to its contract dtype, or RawInputError if it can't be."""
    col = pl.col(column)
    if found == expected:
        return col
    if isinstance(found, pl.Null):
        return col.cast(expected)
    if expected.is_integer() and found.is_integer():
        return col.cast(expected)  # strict: an id that overflows Int64 is an error, not a null
    if expected == pl.String and isinstance(found, (pl.Categorical, pl.Enum)):
        return col.cast(pl.String)
    if isinstance(expected, pl.Datetime) and isinstance(found, pl.Datetime):
        if found.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return col.cast(expected)
    raise RawInputError(
        f"table {table}, column {column!r}: found {found}, expected {expected} (in {where})"
    )


def _scan_file(table: str, raw: RawFile, expected: pl.Schema) -> tuple[pl.LazyFrame, int]:
    try:
        found = pl.read_parquet_schema(raw.path)
        rows = pq.read_metadata(raw.path).num_rows
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as error:
        raise RawInputError(f"table {table}: cannot read {raw.path}: {error}") from None
    missing = [c for c in expected if c not in found and not (c == "date" and raw.day)]
    extra = [c for c in found if c not in expected]
    if missing:
        raise RawInputError(f"table {table}: missing column(s) {missing} in {raw.path}")
    if extra:
        raise RawInputError(f"table {table}: unexpected column(s) {extra} in {raw.path}")
    frame = pl.scan_parquet(raw.path, hive_partitioning=False)
    if "date" in expected and "date" not in found:
        frame = frame.with_columns(pl.lit(raw.day, pl.Date).alias("date"))
        found = pl.Schema({**found, "date": pl.Date()})
    exprs = [
        _conform(table, c, found[c], dtype, raw.path).alias(c) for c, dtype in expected.items()
    ]
    return frame.select(exprs), rows


def scan_raw(root: Path, table: str) -> tuple[pl.LazyFrame, int]:
    """The whole raw table as one lazy frame with the contract's dtypes, and its row count (from
    the parquet footers, so it is independent of everything the validation computes)."""
    expected = expected_schema(table)
    scans = [_scan_file(table, f, expected) for f in raw_files(root, table)]
    return pl.concat([frame for frame, _ in scans], how="vertical"), sum(n for _, n in scans)


def verify_raw(root: Path, table: str) -> tuple[int, int]:
    """Check every raw file of the table byte by byte (`features.parquet_check`): (files, files
    with page checksums). RawInputError names the first corrupt file."""
    try:
        checks = check_files([f.path for f in raw_files(root, table)])
    except CorruptFile as error:
        raise RawInputError(f"table {table}: {error}") from None
    return len(checks), sum(c.checksummed for c in checks)


def _culprit(root: Path, table: str) -> str:
    """The raw file polars fails to read on its own, to name it when the whole scan failed."""
    expected = expected_schema(table)
    for raw in raw_files(root, table):
        try:
            _scan_file(table, raw, expected)[0].collect()
        except pl.exceptions.PolarsError as error:
            return f" (reading {raw.path} fails: {str(error).splitlines()[0]})"
    return ""


# --- writing -------------------------------------------------------------------------------------


_REJECTED_PARTS = ".rejected"
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def _sink_split(flagged: pl.LazyFrame, table: str, staging: Path) -> None:
    """One streaming pass over a flagged table, partitioned on (reject_reason, date): accepted
    rows (null reason) land in <staging>/<table>/date=D/part-N.parquet, rejected ones in
    <staging>/.rejected/<table>/reject_reason=R/date=D/part-N.parquet. (Two filtered sinks
    would run the whole validation twice: polars does not share the plan between them.)"""
    partitioned = table in PARTITIONED_BY_DATE
    keys = [REJECT_REASON, "date"] if partitioned else [REJECT_REASON]

    def path(args) -> str:
        key = args.partition_keys.row(0, named=True)
        name = f"part-{args.index_in_partition}.parquet"
        day = key.get("date") or _HIVE_NULL
        leaf = f"date={day}/{name}" if partitioned else name
        if key[REJECT_REASON] is None:
            return f"{table}/{leaf}"
        return f"{_REJECTED_PARTS}/{table}/{REJECT_REASON}={key[REJECT_REASON]}/{leaf}"

    (staging / table).mkdir(parents=True, exist_ok=True)
    target = pl.PartitionBy(staging, key=keys, include_key=False, file_path_provider=path)
    flagged.select(*columns_of(table), REJECT_REASON).sink_parquet(
        target, mkdir=True, engine="streaming"
    )


def _gather_rejects(staging: Path, table: str, rejects_file: Path) -> None:
    """The rejected parts of a table as one <rejects>/<table>.parquet."""
    parts = staging / _REJECTED_PARTS / table
    columns = [*columns_of(table), REJECT_REASON]
    if not parts.is_dir():
        schema = {**expected_schema(table), REJECT_REASON: pl.String}
        pl.DataFrame(schema=schema).write_parquet(rejects_file)
        return
    hive_schema = {REJECT_REASON: pl.String}
    if table in PARTITIONED_BY_DATE:
        hive_schema["date"] = pl.Date
    frame = pl.scan_parquet(parts, hive_partitioning=True, hive_schema=hive_schema)
    frame.select(columns).sink_parquet(rejects_file, engine="streaming")


def clean_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))


def read_clean_file(path: Path, table: str) -> pl.DataFrame:
    """One clean file with its partition date put back as a column."""
    df = pl.read_parquet(path, hive_partitioning=False)
    if table in PARTITIONED_BY_DATE and "date" not in df.columns:
        day = date.fromisoformat(_DATE_DIR.match(path.parent.name).group(1))
        df = df.with_columns(pl.lit(day, pl.Date).alias("date"))
    return df.select(columns_of(table))


def scan_clean(folder: Path, table: str) -> pl.LazyFrame:
    """A clean table written by this stage (possibly empty) as a lazy frame."""
    if not clean_files(folder):
        return pl.LazyFrame(schema=expected_schema(table))
    hive = table in PARTITIONED_BY_DATE
    frame = pl.scan_parquet(
        folder, hive_partitioning=hive, hive_schema={"date": pl.Date} if hive else None
    )
    return frame.select(columns_of(table))


def count_rows(folder: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in clean_files(folder))


def reason_counts(rejects_file: Path, table: str) -> dict[str, int]:
    counts = {reason.value: 0 for reason in REASONS_BY_TABLE[table]}
    found = pl.scan_parquet(rejects_file).group_by(REJECT_REASON).len().collect()
    for reason, n in found.iter_rows():
        counts[reason] = n
    return counts


CHECK_BATCH_ROWS = 4_000_000
"""Clean files are checked in batches of about this many rows: pandera's cost is mostly per
call, and a whole large table at once would cost memory."""


def check_batches(folder: Path) -> list[list[Path]]:
    """The clean files of a table grouped into batches of about CHECK_BATCH_ROWS rows."""
    batches: list[list[Path]] = [[]]
    rows = 0
    for path in clean_files(folder):
        n = pq.read_metadata(path).num_rows
        if batches[-1] and rows + n > CHECK_BATCH_ROWS:
            batches.append([])
            rows = 0
        batches[-1].append(path)
        rows += n
    return [batch for batch in batches if batch]


def check_clean(paths: list[Path], table: str) -> None:
    """Run the table's pandera model over clean files, reporting every failure at once."""
    import pandera.errors

    model = RAW_TABLES[table]
    frame = pl.concat([read_clean_file(path, table) for path in paths])
    try:
        model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        where = f"{paths[0]}" + (f" .. {paths[-1]}" if len(paths) > 1 else "")
        raise CleanSchemaError(
            f"accepted {table} rows in {where} fail the {model.__name__} model:\n{errors}"
        ) from None


def write_json(path: Path, payload: dict) -> None:
    publish.write_json(path, payload)


# --- the stage -----------------------------------------------------------------------------------


Progress = Callable[[str, int, int], None]
"""on_progress(description, completed, total): a hook for a progress bar."""


def _flag(table: str, raw_frame: pl.LazyFrame, clean: Path, now: datetime) -> pl.LazyFrame:
    if table == "accounts":
        return flag_accounts(raw_frame, now)
    accounts = scan_clean(clean / "accounts", "accounts")
    if table == "profiles":
        return flag_profiles(raw_frame, accounts, now)
    if table == "posts":
        return flag_posts(raw_frame, accounts, now)
    return flag_interactions(raw_frame, accounts, scan_clean(clean / "posts", "posts"), now)


def validate_table(table: str, raw: Path, clean: Path, rejects: Path, now: datetime) -> TableReport:
    """Validate one table into the (staging) clean and rejects folders and count the outcome."""
    files, checksummed = verify_raw(raw, table)
    raw_frame, rows_in = scan_raw(raw, table)
    rejects_file = rejects / f"{table}.parquet"
    try:
        _sink_split(_flag(table, raw_frame, clean, now), table, clean)
        _gather_rejects(clean, table, rejects_file)
    except pl.exceptions.PolarsError as error:
        raise RawInputError(
            f"table {table}: reading or validating failed: {error}{_culprit(raw, table)}"
        ) from None
    reasons = reason_counts(rejects_file, table)
    accepted = count_rows(clean / table)
    report = TableReport(
        rows_in, accepted, sum(reasons.values()), reasons, files=files, checksummed_files=checksummed
    )
    if report.accepted + report.rejected != report.rows_in:
        raise AssertionError(
            f"table {table}: {report.rows_in} rows in but {report.accepted} accepted + "
            f"{report.rejected} rejected"
        )
    return report


def failed_rejects_dir(rejects: Path) -> Path:
    """Where a run that failed the threshold leaves its rejects."""
    return rejects.with_name(f"{rejects.name}.failed")


def run_validation(
    raw: Path,
    clean: Path,
    rejects: Path,
    now: datetime,
    on_progress: Progress = lambda description, completed, total: None,
    max_reject_share: float = 1.0,
) -> dict[str, TableReport]:
    """Validate every table of `raw`, check the accepted rows against the pandera models, then
    publish `clean` and `rejects` atomically, unless a table's rejected share passes
    `max_reject_share` (RejectShareExceeded: its rejects go to `failed_rejects_dir`, nothing
    else is written). `now` is the naive-UTC reference time."""
    reports: dict[str, TableReport] = {}
    with publish.publishing_dir(clean) as clean_tmp, publish.publishing_dir(rejects) as rejects_tmp:
        for done, table in enumerate(TABLE_ORDER):
            on_progress(f"validating {table}", done, len(TABLE_ORDER))
            reports[table] = validate_table(table, raw, clean_tmp, rejects_tmp, now)
        shutil.rmtree(clean_tmp / _REJECTED_PARTS, ignore_errors=True)
        batches = [(t, batch) for t in TABLE_ORDER for batch in check_batches(clean_tmp / t)]
        total = len(batches)
        for checked, (table, batch) in enumerate(batches):
            on_progress(f"checking accepted {table} (pandera)", checked, total)
            check_clean(batch, table)
        failing = over_threshold(reports, max_reject_share)
        if failing:
            kept = failed_rejects_dir(rejects)
            with publish.publishing_dir(kept) as kept_tmp:
                for table_file in rejects_tmp.iterdir():
                    table_file.rename(kept_tmp / table_file.name)
            raise RejectShareExceeded(reports, failing, max_reject_share, kept)
        on_progress("publishing", total, total)
    return reports


def report_payload(reports: dict[str, TableReport], now: datetime, max_reject_share: float) -> dict:
    return {
        "reference_time": now.isoformat(),
        "max_reject_share": max_reject_share,
        "passed": not over_threshold(reports, max_reject_share),
        "tables": {table: report.to_json() for table, report in reports.items()},
    }


def over_threshold(reports: dict[str, TableReport], max_reject_share: float) -> list[str]:
    """Tables whose rejected share exceeds the threshold."""
    return [t for t, r in reports.items() if r.reject_share > max_reject_share]
