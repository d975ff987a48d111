"""The features stage: read, call, validate, write. No feature logic lives here.

- `features_for_date`: snapshots and features of one as-of date (the serving-parity and
  benchmark unit), both validated (`Snapshots`, `Features`).
- `training_set`: every rolling as-of date with its outcome labels, written as
  `<out>/snapshots.parquet`, `<out>/labels.parquet` and `<out>/train.parquet` (features + labels,
  one row per user_id and as_of), plus the signal catalog.

Writes are atomic (`influence.publish`): each file is written under a temporary name in its
folder, flushed to disk and renamed into place (one-date outputs: the whole `as_of=` folder,
exchanged with the previous one), and `train.parquet`, the file training reads, is published
last. A run that fails publishes nothing; a killed one leaves temporaries that the next run
removes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

import narwhals as nw
import polars as pl
import pyarrow.parquet as pq

from features.build import build_snapshots, read_sources
from features.engine import data_end
from features.feature_schema import validate_features
from features.featurize import catalog_frame, featurize
from features.labels import outcome_labels, read_label_sources, training_as_of_dates
from features.snapshot import validate_snapshots
from influence import publish
from influence.params import Params

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class DateTables:
    as_of: date
    snapshots: pl.DataFrame
    features: pl.DataFrame


class Profile(Protocol):
    """What a profiler gives `features_for_date` (the benchmark's per-part seconds)."""

    def part(self, name: str, frame: nw.LazyFrame) -> nw.LazyFrame:
        """Compute a named piece of the snapshot build (and time it)."""
        ...

    def step(self, name: str) -> AbstractContextManager:
        """Time a named step of the stage."""
        ...


def snapshots_for_date(
    engine, root: Path, as_of: date, params: Params, profile: Profile | None = None
) -> pl.DataFrame:
    """The validated long snapshot table of one as-of date."""
    step = profile.step if profile else _untimed
    p = params.features
    sources = read_sources(engine, root, as_of, p.windows, p.profile_lookback_days)
    frame = build_snapshots(
        sources,
        as_of,
        windows=p.windows,
        damping=p.pagerank_damping,
        iterations=p.pagerank_iterations,
        pagerank_window_days=p.pagerank_window_days,
        profile_lookback_days=p.profile_lookback_days,
        materialize=engine.materialize,
        parts=profile.part if profile else None,
    )
    with step("collect"):
        long = engine.to_polars(frame).sort(["user_id", "network", "window_days"])
    with step("validate_snapshots"):
        return validate_snapshots(long)


def features_for_date(
    engine,
    root: Path,
    as_of: date,
    params: Params,
    progress: Progress = _quiet,
    profile: Profile | None = None,
) -> DateTables:
    """Snapshots and validated features of one as-of date (`profile`: see `Profile`)."""
    step = profile.step if profile else _untimed
    progress(f"{as_of}: snapshots")
    snapshots = snapshots_for_date(engine, root, as_of, params, profile)
    progress(f"{as_of}: features")
    with step("featurize"):
        features = featurize(snapshots, params.features.windows)
    with step("validate_features"):
        features = validate_features(features, params.features.windows)
    return DateTables(as_of, snapshots, features)


def _untimed(_: str) -> AbstractContextManager:
    return nullcontext()


def labels_for_date(engine, root: Path, as_of: date, params: Params) -> pl.DataFrame:
    p = params.labels
    frame = outcome_labels(
        read_label_sources(engine, root, as_of, p.horizon_days),
        as_of,
        horizon_days=p.horizon_days,
        selectivity_power=p.selectivity_power,
        repeat_exponent=p.repeat_exponent,
        post_exponent=p.post_exponent,
    )
    return engine.to_polars(frame)


def training_dates(root: Path, params: Params) -> list[date]:
    return training_as_of_dates(
        data_end(root),
        horizon_days=params.labels.horizon_days,
        step_days=params.features.as_of_step_days,
        n_as_of=params.features.n_as_of,
    )


# --- writing -----------------------------------------------------------------------------------


def _temporary(final: Path) -> Path:
    """A temporary beside `final` named by this process; those of killed runs go first."""
    publish.clean_stale(final)
    return publish.temp_path(final)


def _publish(tmp: Path, final: Path) -> None:
    """Flush the finished temporary to disk and swap it in."""
    publish.sync_tree(tmp)
    publish.swap_in(tmp, final)


def write_parquet_atomically(frame: pl.DataFrame, path: Path) -> Path:
    with publish.publishing_file(path) as tmp:
        frame.write_parquet(tmp)
    return path


@contextmanager
def parquet_appender(path: Path) -> Iterator[Callable[[pl.DataFrame], None]]:
    """Append frames (same schema) to one parquet file as row groups; the file appears at
    `path` only when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    writer: list[pq.ParquetWriter] = []

    def append(frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if not writer:
            writer.append(pq.ParquetWriter(tmp, table.schema, compression="zstd"))
        writer[0].write_table(table)

    try:
        yield append
        if writer:
            writer[0].close()
            _publish(tmp, path)
    finally:
        if writer:
            writer[0].close()
        tmp.unlink(missing_ok=True)


def write_date(tables: DateTables, out: Path) -> Path:
    """<out>/as_of=<T>/{snapshots,features}.parquet, the folder published in one rename."""
    final = out / f"as_of={tables.as_of.isoformat()}"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(final)
    tmp.mkdir()
    try:
        tables.snapshots.write_parquet(tmp / "snapshots.parquet")
        tables.features.write_parquet(tmp / "features.parquet")
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def write_catalog(out: Path, windows) -> None:
    catalog = catalog_frame(windows)
    publish.write_text(out / "catalog.csv", catalog.write_csv())
    publish.write_text(out / "catalog.json", json.dumps(catalog.to_dicts(), indent=1) + "\n")


def training_set(
    engine, root: Path, out: Path, params: Params, progress: Progress = _quiet
) -> dict[str, object]:
    """Snapshots, labels and features of every training as-of date, written under `out`."""
    dates = training_dates(root, params)
    summary: dict[str, object] = {"as_of": [d.isoformat() for d in dates], "rows": 0}
    # contexts close in reverse order: train.parquet, the file training reads, appears last
    with (
        parquet_appender(out / "train.parquet") as add_train,
        parquet_appender(out / "labels.parquet") as add_labels,
        parquet_appender(out / "snapshots.parquet") as add_snapshots,
    ):
        for as_of in dates:
            tables = features_for_date(engine, root, as_of, params, progress)
            progress(f"{as_of}: labels")
            labels = labels_for_date(engine, root, as_of, params)
            add_snapshots(tables.snapshots)
            add_labels(labels)
            train = tables.features.join(labels, on=["user_id", "as_of"], how="left")
            add_train(train)
            summary["rows"] = int(summary["rows"]) + train.height
        write_catalog(out, params.features.windows)  # inside: a failure publishes no table
    return summary
