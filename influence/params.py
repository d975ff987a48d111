"""Frozen, validated settings read from params.yaml, one model per stage section."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

PARAMS_FILE = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseParams(_Section):
    seed: int = 42
    raw_dir: Path = Path("data/raw")
    truth_dir: Path = Path("data/truth")
    rejects_dir: Path = Path("data/rejects")
    clean_dir: Path = Path("data/clean")
    features_dir: Path = Path("data/features")
    reports_dir: Path = Path("reports")


class SimulateParams(_Section):
    users: int = Field(20_000, gt=0)
    days: int = Field(150, gt=0)
    end_date: date = date(2026, 11, 1)
    bot_share: float = Field(0.04, ge=0, le=0.5)
    bought_share: float = Field(0.03, ge=0, le=0.5)
    pod_share: float = Field(0.03, ge=0, le=0.5)
    corrupt_share: float = Field(0.0005, ge=0, le=0.2)
    """Share of rows the simulator corrupts the way a broken export would (0 = clean)."""


class ValidateParams(_Section):
    max_reject_share: float = Field(0.02, ge=0, le=1)


class FeaturesParams(_Section):
    windows: tuple[int, ...] = (7, 30, 90)
    as_of_step_days: int = Field(7, gt=0)
    n_as_of: int = Field(6, gt=0)
    pagerank_damping: float = Field(0.85, gt=0, lt=1)
    pagerank_iterations: int = Field(20, gt=0)


class LabelsParams(_Section):
    horizon_days: int = Field(30, gt=0)


class ScoreDailyParams(_Section):
    """The daily scoring job, its score-history store and the published-score smoothing
    (`serving.daily`, `serving.history`)."""

    store: Path = Path("data/history/scores.duckdb")
    half_life_days: float = Field(3.0, gt=0)
    """Exponential smoothing: a lasting change of the model's score is half published after this
    many days (counted on days the user's signals change)."""
    dead_band: float = Field(0.5, ge=0)
    """Changes smaller than this many points between the model's score and the published one are
    not published."""
    max_gap_days: int = Field(30, gt=0)
    """A published score older than this is forgotten: the user starts afresh at the model score."""
    score_decimals: int = Field(2, ge=0, le=6)
    backfill_days: int = Field(30, gt=0)
    """Days `make backfill` fills, ending with the last day of data."""
    history_max_days: int = Field(730, gt=0)
    """Longest series `GET /users/{id}/history?days=` returns."""
    lock_timeout_seconds: float = Field(30.0, ge=0)
    """How long a writer waits for readers of the store file to let go (DuckDB: one writer)."""
    compare_report: Path = Path("reports/compare_models.json")
    compare_thresholds: tuple[float, ...] = (1.0, 5.0)
    """Report the share of users whose score moves by more than each of these points."""
    compare_top_movers: int = Field(20, ge=0)
    compare_max_median_abs_delta: float = Field(1.0, ge=0)
    compare_max_p99_abs_delta: float = Field(5.0, ge=0)


class Params(_Section):
    """All of params.yaml. Sections added by later stages are kept as plain mappings until
    they get a model of their own, so an unknown key in a known section is still an error."""

    model_config = ConfigDict(frozen=True, extra="allow")

    base: BaseParams = BaseParams()
    simulate: SimulateParams = SimulateParams()
    validate_: ValidateParams = Field(ValidateParams(), alias="validate")
    features: FeaturesParams = FeaturesParams()
    labels: LabelsParams = LabelsParams()
    score_daily: ScoreDailyParams = ScoreDailyParams()


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    """Read params.yaml; a missing file gives the embedded defaults."""
    path = Path(path)
    raw: dict[str, Any] = yaml.safe_load(path.read_text()) if path.exists() else {}
    return Params.model_validate(raw or {})


@lru_cache(maxsize=1)
def default_params() -> Params:
    return load_params()


def raw_params(path: Path | str = PARAMS_FILE) -> dict[str, Any]:
    """params.yaml as a plain dict, for logging every key to MLflow."""
    path = Path(path)
    return yaml.safe_load(path.read_text()) if path.exists() else {}
