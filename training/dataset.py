"""The training table and its splits; the reference population and its fingerprint.

Rows are (user_id, as_of): model features, the outcome label, and the long snapshot table they
came from (kept so partial snapshots can be made at the snapshot level, see `training.augment`).

Splits:
- by time (the one the model is trained and judged on): the latest `test_dates` as-of dates are
  the test set, the `validation_dates` before them the validation set (early stopping), all
  earlier dates the training set;
- user-disjoint (reported next to it): a stable hash puts `user_disjoint_share` of the users
  aside; the model is trained on the other users' training dates and judged on the held-out
  users' test dates, so no test user was ever seen in training.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

KEYS = ["user_id", "as_of"]
LABEL = "label"


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    valid: pl.DataFrame
    test: pl.DataFrame

    def describe(self) -> dict[str, object]:
        def dates(frame: pl.DataFrame) -> list[str]:
            return [str(d) for d in frame.get_column("as_of").unique().sort().to_list()]

        return {
            "train_rows": self.train.height,
            "valid_rows": self.valid.height,
            "test_rows": self.test.height,
            "train_dates": dates(self.train),
            "valid_dates": dates(self.valid),
            "test_dates": dates(self.test),
        }


def as_of_dates(rows: pl.DataFrame) -> list[date]:
    return rows.get_column("as_of").unique().sort().to_list()


def time_split(rows: pl.DataFrame, validation_dates: int = 1, test_dates: int = 1) -> Split:
    dates = as_of_dates(rows)
    if len(dates) < validation_dates + test_dates + 1:
        raise ValueError(
            f"a time split needs at least {validation_dates + test_dates + 1} as-of dates, "
            f"the table has {len(dates)}"
        )
    test_from = dates[-test_dates]
    valid_from = dates[-(test_dates + validation_dates)]
    as_of = pl.col("as_of")
    return Split(
        train=rows.filter(as_of < valid_from),
        valid=rows.filter((as_of >= valid_from) & (as_of < test_from)),
        test=rows.filter(as_of >= test_from),
    )


def held_out_user(user_id: str, share: float, seed: int) -> bool:
    """Stable across runs, machines and library versions (crc32, not Python's hash)."""
    return zlib.crc32(f"{seed}:{user_id}".encode()) % 10_000 < share * 10_000


def user_disjoint_split(split: Split, share: float, seed: int) -> Split:
    """Train/valid on the kept users only, test on the held-out users only."""
    users = pl.concat([split.train, split.valid, split.test]).get_column("user_id").unique()
    held = {u for u in users.to_list() if held_out_user(u, share, seed)}
    is_held = pl.col("user_id").is_in(list(held))
    return Split(
        train=split.train.filter(~is_held),
        valid=split.valid.filter(~is_held),
        test=split.test.filter(is_held),
    )


def latest_population(snapshots: pl.DataFrame) -> pl.DataFrame:
    """Every user's snapshot at the latest as-of date: the default reference population."""
    latest = snapshots.get_column("as_of").max()
    return snapshots.filter(pl.col("as_of") == latest)


def fingerprint(frame: pl.DataFrame) -> str:
    """sha256 of the frame's content in a canonical order (rows sorted, columns by name)."""
    columns = sorted(frame.columns)
    canonical = frame.select(columns).sort(columns, nulls_last=True)
    digest = hashlib.sha256()
    digest.update(",".join(f"{c}:{canonical.schema[c]}" for c in columns).encode())
    digest.update(canonical.write_csv(float_precision=None).encode())
    return f"sha256:{digest.hexdigest()}"


# --- files --------------------------------------------------------------------------------------

TRAIN_FILE = "train.parquet"
SNAPSHOTS_FILE = "snapshots.parquet"


def read_training_rows(features_dir: Path) -> pl.DataFrame:
    path = Path(features_dir) / TRAIN_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `influence features --training` first")
    return pl.read_parquet(path)


def read_snapshots(features_dir: Path) -> pl.DataFrame | None:
    path = Path(features_dir) / SNAPSHOTS_FILE
    return pl.read_parquet(path) if path.exists() else None


def reference_snapshots(path: Path, snapshots: pl.DataFrame | None) -> tuple[pl.DataFrame, bool]:
    """The reference population at `path`; when missing, every user of the latest as-of date of
    `snapshots`, written to `path` so later retrains map through the same people.
    Returns (reference, created)."""
    path = Path(path)
    if path.exists():
        return pl.read_parquet(path), False
    if snapshots is None:
        raise FileNotFoundError(f"no reference population at {path} and no snapshots to make one")
    reference = latest_population(snapshots).sort(["user_id", "network", "window_days"])
    write_parquet_atomically(reference, path)
    return reference, True


def write_parquet_atomically(frame: pl.DataFrame, path: Path) -> Path:
    from influence.publish import publishing_file

    with publishing_file(path) as tmp:
        frame.write_parquet(tmp)
    return path
