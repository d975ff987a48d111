"""Small synthetic worlds, written once per test session (a few seconds each)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from simulation.config import WorldConfig
from simulation.world import WriteSummary, write_world

SMALL = WorldConfig(users=300, days=40, seed=7, corrupt_share=0.0)


@dataclass(frozen=True)
class WrittenWorld:
    cfg: WorldConfig
    raw: Path
    truth: Path
    summary: WriteSummary

    def scan(self, table: str) -> pl.LazyFrame:
        if table == "accounts":
            return pl.scan_parquet(self.raw / "accounts" / "part-0.parquet")
        return pl.scan_parquet(self.raw / table, hive_partitioning=True)

    def read(self, table: str) -> pl.DataFrame:
        return self.scan(table).collect()

    def truth_table(self, name: str) -> pl.DataFrame:
        return pl.read_parquet(self.truth / f"{name}.parquet")


def write(cfg: WorldConfig, root: Path) -> WrittenWorld:
    summary = write_world(cfg, root / "raw", root / "truth", validate_every=1)
    return WrittenWorld(cfg, root / "raw", root / "truth", summary)


@pytest.fixture(scope="session")
def small_cfg() -> WorldConfig:
    return SMALL


@pytest.fixture(scope="session")
def write_at():
    """write(cfg, root) -> WrittenWorld, for tests that need a world of their own."""
    return write


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> WrittenWorld:
    """300 people over 40 days, no corrupt rows."""
    return write(SMALL, tmp_path_factory.mktemp("small_world"))


@pytest.fixture(scope="session")
def behaviour_world(tmp_path_factory: pytest.TempPathFactory) -> WrittenWorld:
    """Big enough for every behaviour to show (bots, pods, buyers, new accounts)."""
    cfg = WorldConfig(users=2_000, days=45, seed=11, corrupt_share=0.0)
    return write(cfg, tmp_path_factory.mktemp("behaviour_world"))
