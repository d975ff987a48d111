"""Where frames come from and where they go: Polars (default) or Spark.

The feature logic (`features.build`, `features.graph`, `features.labels`) is written once against
narwhals; an engine only reads the partitions an as-of date needs, turns small Python data into
frames of its backend, pins intermediate results (PageRank iterations), and hands results back as
Polars. Only these few methods know which backend runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import narwhals as nw
import polars as pl

from features.raw_schema import PARTITIONED_BY_DATE, RAW_TABLES

_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def table_schema(table: str) -> pl.Schema:
    columns = RAW_TABLES[table].to_schema().columns
    return pl.Schema({name: column.dtype.type for name, column in columns.items()})


def partition_days(root: Path, table: str) -> dict[date, Path]:
    """The `date=` partition folders of a table, by day."""
    folder = Path(root) / table
    days = {}
    for child in folder.iterdir() if folder.is_dir() else ():
        match = _DATE_DIR.match(child.name)
        if match and child.is_dir():
            days[date.fromisoformat(match.group(1))] = child
    return dict(sorted(days.items()))


def data_end(root: Path) -> date:
    """The day after the last interaction partition (exclusive end of the data)."""
    days = partition_days(root, "interactions")
    if not days:
        raise FileNotFoundError(f"no interactions partitions under {Path(root) / 'interactions'}")

    return max(days) + timedelta(days=1)


def _parquet_files(folders: Iterable[Path]) -> list[Path]:
    return [
        path
        for folder in folders
        for path in sorted(folder.glob("*.parquet"))
        if not path.name.startswith((".", "_"))
    ]


def _table_files(root: Path, table: str, days: Iterable[date] | None) -> list[Path]:
    """The table's parquet files; for a partitioned table only those of the given days
    (partition pruning by folder name, before any file is opened)."""
    if table not in PARTITIONED_BY_DATE:
        return _parquet_files([Path(root) / table])
    available = partition_days(root, table)
    wanted = sorted(available) if days is None else sorted(d for d in set(days) if d in available)
    return _parquet_files(available[d] for d in wanted)


@dataclass
class PolarsEngine:
    """Polars LazyFrames over the selected parquet files, collected with the streaming engine."""

    name: str = "polars"

    def scan(
        self,
        root: Path,
        table: str,
        columns: list[str],
        days: Iterable[date] | None = None,
        codes: dict[str, Sequence[str]] | None = None,
    ) -> nw.LazyFrame:
        files = _table_files(root, table, days)
        schema = table_schema(table)
        if not files:
            frame = pl.LazyFrame(schema={c: schema[c] for c in columns})
        elif table in PARTITIONED_BY_DATE and "date" not in pl.read_parquet_schema(files[0]):
            frame = pl.scan_parquet(files, hive_partitioning=True, hive_schema={"date": pl.Date})
        else:
            frame = pl.scan_parquet(files, hive_partitioning=False)
        selected = [_polars_column(c, (codes or {}).get(c)) for c in columns]
        return nw.from_native(frame.select(selected))

    def from_polars(self, frame: pl.DataFrame) -> nw.LazyFrame:
        return nw.from_native(frame.lazy())

    def materialize(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        return nw.from_native(self.to_polars(frame).lazy())

    def to_polars(self, frame: nw.LazyFrame) -> pl.DataFrame:
        return frame.to_native().collect(engine="streaming", optimizations=PLAN_AS_WRITTEN)


PLAN_AS_WRITTEN = pl.QueryOptFlags(join_order=False)
"""Joins run in the order written: Polars 2's join reordering may join two lookups of the same
table on a shared low-cardinality key first (a per-graph cross product: quadratic memory)."""


def _polars_column(name: str, vocabulary: Sequence[str] | None) -> pl.Expr:
    """A column as read; a vocabulary column becomes its position in the vocabulary (Int8),
    null when unknown: Enum decoding is the cheapest way from parquet strings to codes."""
    if vocabulary is None:
        return pl.col(name)
    return pl.col(name).cast(pl.Enum(list(vocabulary)), strict=False).to_physical().cast(pl.Int8)


@dataclass
class SparkEngine:
    """PySpark DataFrames (local mode here; any cluster by passing its session)."""

    session: Any = None
    name: str = "spark"

    def __post_init__(self) -> None:
        if self.session is None:
            self.session = local_spark_session()

    def scan(
        self,
        root: Path,
        table: str,
        columns: list[str],
        days: Iterable[date] | None = None,
        codes: dict[str, Sequence[str]] | None = None,
    ) -> nw.LazyFrame:
        files = _table_files(root, table, days)
        if not files:
            schema = table_schema(table)
            empty = pl.DataFrame(schema={c: schema[c] for c in columns})
            return self.from_polars(empty).select(_spark_columns(columns, codes))
        reader = self.session.read
        if table in PARTITIONED_BY_DATE:
            # whole partition folders under their base path: `date` comes from the folder name
            reader = reader.option("basePath", str(Path(root) / table))
            paths = sorted({str(f.parent) for f in files})
        else:
            paths = [str(f) for f in files]
        frame = nw.from_native(reader.parquet(*paths))
        if "date" in columns:
            frame = frame.with_columns(nw.col("date").cast(nw.Date))
        return frame.select(_spark_columns(columns, codes))

    def from_polars(self, frame: pl.DataFrame) -> nw.LazyFrame:
        return nw.from_native(self.session.createDataFrame(frame.to_arrow()))

    def materialize(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        return nw.from_native(frame.to_native().localCheckpoint(eager=True))

    def to_polars(self, frame: nw.LazyFrame) -> pl.DataFrame:
        return frame.collect(backend="polars").to_native()


def _spark_columns(columns: list[str], codes: dict[str, Sequence[str]] | None) -> list[nw.Expr]:
    exprs = []
    for name in columns:
        vocabulary = (codes or {}).get(name)
        if vocabulary is None:
            exprs.append(nw.col(name))
        else:
            mapping = {v: i for i, v in enumerate(vocabulary)}
            exprs.append(
                nw.col(name)
                .replace_strict(mapping, default=nw.lit(None, nw.Int8), return_dtype=nw.Int8)
                .alias(name)
            )
    return exprs


def local_spark_session(cores: int = 2):
    """A local Spark session with UTC timestamps and few shuffle partitions (small data)."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("influence-features")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(2 * cores))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def make_engine(name: str) -> PolarsEngine | SparkEngine:
    if name == "polars":
        return PolarsEngine()
    if name == "spark":
        return SparkEngine()
    raise ValueError(f"unknown engine {name!r}; allowed: polars, spark")
