"""Frozen, validated settings read from params.yaml, one model per stage section."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    """Signal snapshots and featurize (`features.build`, `features.featurize`)."""

    windows: tuple[int, ...] = Field((7, 30, 90), min_length=1)
    as_of_step_days: int = Field(7, gt=0)
    n_as_of: int = Field(6, gt=0)
    pagerank_damping: float = Field(0.85, gt=0, lt=1)
    pagerank_iterations: int = Field(10, gt=0)
    pagerank_window_days: int = Field(30, gt=0, le=365)
    """The engagement graph holds the reactions of the last this-many days."""
    profile_lookback_days: int = Field(3, gt=0)
    """A window's end/start followers come from the latest profile within this many days."""
    engine: Literal["polars", "spark"] = "polars"

    @field_validator("windows")
    @classmethod
    def _windows_distinct_and_sane(cls, windows: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(windows)) != len(windows) or any(not 1 <= w <= 365 for w in windows):
            raise ValueError(f"windows must be distinct day counts in 1..365, got {windows}")
        return tuple(sorted(windows))


class LabelsParams(_Section):
    """Outcome labels (`features.labels`: the definition and why)."""

    horizon_days: int = Field(30, gt=0)
    selectivity_power: float = Field(1.0, ge=0, le=2)
    """Each reaction weighs n ** -power, n = its actor's reactions that day on that network."""
    repeat_exponent: float = Field(0.25, ge=0, le=1)
    """An engager giving k reactions is worth k ** exponent (0 = distinct people only)."""
    post_exponent: float = Field(0.5, ge=0, le=1)
    """The outcome is divided by (1 + posts in the horizon) ** exponent."""


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
    backfill_days: int = Field(31, gt=0)
    """Days `make backfill` fills, ending with the as-of date after the last day of data (31: the
    month change needs the score of 30 days before the latest)."""
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


class TrainParams(_Section):
    """LightGBM on the engagement outcome (`training.train`)."""

    label_transform: str = Field("log1p", pattern="^(log1p|identity)$")
    target_dates: int = Field(1, ge=1, le=4)
    """Training target: the transformed outcome averaged over this many consecutive as-of
    dates of the user (1 = the outcome of the row's own horizon)."""
    label_scale: float = Field(1.0, gt=0)
    """The model learns log(1 + outcome / label_scale): a smaller scale spreads the many small
    outcomes apart (the bottom of the score scale), a larger one compresses them."""
    num_leaves: int = Field(31, ge=2)
    learning_rate: float = Field(0.1, gt=0, le=1)
    n_estimators: int = Field(500, gt=0)
    early_stopping_rounds: int = Field(50, ge=0)
    """0 trains all `n_estimators` trees; otherwise stop when the validation loss stalls."""
    min_data_in_leaf: int = Field(200, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(10.0, ge=0)
    max_bin: int = Field(255, ge=4)
    extra_trees: bool = False
    """Random split thresholds (LightGBM extra_trees): smoother scores, less variance."""
    path_smooth: float = Field(0.0, ge=0)
    monotone_method: str = Field("basic", pattern="^(basic|intermediate|advanced)$")
    num_threads: int = Field(1, ge=1)
    seed: int = 42
    stability_seed: int = 4242
    """Seed of the second training run whose score movement `evaluate` reports."""
    validation_dates: int = Field(1, ge=1)
    test_dates: int = Field(1, ge=1)
    user_disjoint_share: float = Field(0.2, gt=0, lt=1)
    augment_one_network: float = Field(0.15, ge=0, le=1)
    """Share of multi-network training rows added again with only one network kept."""
    augment_public_only: float = Field(0.10, ge=0, le=1)
    """Share of training rows added again with public counters only (followers, following,
    lists, posts)."""
    augment_drop_optional: float = Field(0.10, ge=0, le=1)
    """Share of training rows added again with a random half of the optional fields missing."""
    augment_client_counters: float = Field(0.10, ge=0, le=1)
    """Share of training rows added again with only the counters a client knows itself."""
    augment_bought: float = Field(0.40, ge=0, le=1)
    """Share of training rows added again with bought followers and bot likes, same label."""
    exclude_families: tuple[str, ...] = ("account",)
    """Catalog families the model does not use. `account` (account age, days since linked)
    predicts growth, not influence: a young account would score on what it may become."""
    monotone_probes: int = Field(300, ge=10)
    """Random snapshots used to check each feature's direction in the monotone inputs."""


class CalibrateParams(_Section):
    """The raw -> 1..100 map (`training.calibrate`), fitted on the reference population."""

    target_mean: float = Field(40.0, gt=1, lt=100)
    target_p95: float = Field(63.0, gt=1, lt=100)
    elite_score: float = Field(90.0, gt=1, le=100)
    elite_share: float = Field(0.001, gt=0, lt=0.5)
    """At most this share of the reference population scores `elite_score` or more."""
    elite_margin: float = Field(1.0, ge=0, lt=10)
    """The reference quantile 1 - elite_share is mapped to elite_score - elite_margin."""
    knee_score: float = Field(50.0, gt=1, lt=100)
    """Above this score the map is concave: each point costs more raw output than the last."""
    min_alpha: float = Field(0.02, ge=0, le=0.5)
    """Least curvature above the knee (see `training.calibrate`)."""
    max_gamma: float = Field(0.1, ge=0, le=1)
    """Most stretch below the low knee: more would amplify retrain noise among the many users
    with almost no engagement (stability)."""
    low_knee_score: float = Field(30.0, gt=1, lt=100)
    """Below this score the map is convex: it stretches the bottom of the scale."""
    floor_score: float = Field(10.0, ge=1, lt=100)
    floor_share: float = Field(0.01, gt=0, lt=0.5)
    """The reference quantile `floor_share` maps to `floor_score` (or lower)."""
    reference_path: Path = Path("models/reference/snapshots.parquet")
    """Long snapshot table of the reference population; created from the latest as-of date of
    the features when missing, then reused by every retrain."""
    provisional_days: int = Field(30, ge=0)
    provisional_hold_back_score: float | None = Field(20.0, ge=1, le=100)
    """A user whose oldest account is younger than provisional_days keeps the part of the score
    above this in proportion to their age (see `training.bundle.ProvisionalRule`); null: off."""


class EvaluateParams(_Section):
    """Metrics of the model and its baselines on the test split (`training.evaluate`)."""

    pairs: int = Field(200_000, gt=0)
    ndcg_k: int = Field(100, gt=0)
    seed: int = 42
    max_stability_median: float = Field(1.0, ge=0)
    max_stability_p99: float = Field(5.0, ge=0)


class RegisterParams(_Section):
    """The champion gate of the registry (`training.registry`, `influence register`)."""

    gate_metrics: tuple[str, ...] = (
        "spearman_outcome",
        "spearman_latent",
        "pairwise_accuracy",
        "ndcg_100",
    )
    metric_tolerance: float = Field(0.002, ge=0)
    """A challenger may be this much worse than the champion on a gate metric and still pass."""
    stability_median_max: float = Field(1.0, ge=0)
    stability_p99_max: float = Field(5.0, ge=0)
    """|score change| of the reference population between champion and challenger."""
    hold_experiments: bool = True
    """Models made by `dvc exp run` stay challenger even past the gate (promote them on purpose)."""
    shap_sample: int = Field(2000, gt=0)
    """Reference users whose TreeSHAP contributions the run's plots show."""
    report: Path = Path("reports/registry.json")


class Params(_Section):
    """All of params.yaml. Sections added by later stages are kept as plain mappings until
    they get a model of their own, so an unknown key in a known section is still an error."""

    model_config = ConfigDict(frozen=True, extra="allow")

    base: BaseParams = BaseParams()
    simulate: SimulateParams = SimulateParams()
    validate_: ValidateParams = Field(ValidateParams(), alias="validate")
    features: FeaturesParams = FeaturesParams()
    labels: LabelsParams = LabelsParams()
    train: TrainParams = TrainParams()
    calibrate: CalibrateParams = CalibrateParams()
    evaluate: EvaluateParams = EvaluateParams()
    score_daily: ScoreDailyParams = ScoreDailyParams()
    register_: RegisterParams = Field(RegisterParams(), alias="register")


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
