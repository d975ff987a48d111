"""Training: LightGBM on the engagement outcome, constrained, calibrated, bundled.

`train_model(data, params) -> ModelBundle` is the whole stage as a pure function of its inputs:

1. constraints: every catalog feature is audited against the monotone promise
   (`training.monotone`); features that would break it are left out, the others get the
   direction they move in;
2. split by time (`training.dataset.time_split`): earlier as-of dates train, the next validates
   (early stopping), the latest is the test set (untouched here);
3. partial snapshots: training snapshots are degraded the ways real users arrive
   (`training.augment`) and featurized by the same featurize, with their source's label;
4. LightGBM (native `lgb.train`) on log(1 + outcome), deterministic for a seed: fixed thread
   count, row-wise histograms, `deterministic=True`;
5. calibration on the reference population (`training.calibrate`), whose snapshots are
   featurized and scored by the new booster: a retrain maps through the same people.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from influence.params import Params
from training.augment import AugmentShares, augment_snapshots, source_user
from training.bundle import FeatureInfo, ModelBundle, ProvisionalRule, content_version
from training.calibrate import CalibrationTargets, fit_calibrator
from training.dataset import KEYS, LABEL, Split, fingerprint, time_split
from training.explain import CROSS_NETWORK
from training.monotone import Constraints, audit_directions, resolve_constraints

Featurize = Callable[[pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True)
class TrainingData:
    """What training reads: feature rows with their outcome, the snapshots they were made from
    (for partial-snapshot augmentation) and the reference population's snapshots."""

    rows: pl.DataFrame
    """user_id, as_of, `label` (the outcome over the horizon) and the catalog's features."""
    snapshots: pl.DataFrame | None
    """Long snapshot table of (at least) the training rows; None disables augmentation."""
    reference: pl.DataFrame
    """Long snapshot table of the reference population."""
    windows: tuple[int, ...] = (7, 30, 90)


@dataclass(frozen=True)
class FeatureSet:
    """The features a model uses and their constraints, decided before any fitting."""

    names: tuple[str, ...]
    catalog: tuple[FeatureInfo, ...]
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def constraints(self) -> list[int]:
        return [c.monotone for c in self.catalog]


# --- the default featurize and catalog --------------------------------------------------------


def default_featurize(windows: Sequence[int] = (7, 30, 90)) -> Featurize:
    from features.featurize import featurize

    return lambda snapshots: featurize(snapshots, tuple(windows))


def default_catalog(windows: Sequence[int] = (7, 30, 90)) -> tuple[Any, ...]:
    from features.featurize import signal_catalog

    return signal_catalog(tuple(windows))


def feature_info(signal: Any, monotone: int) -> FeatureInfo:
    """A catalog signal (features.featurize.Signal) as the bundle describes it."""
    network = CROSS_NETWORK if signal.network == "all" else signal.network
    return FeatureInfo(
        name=signal.name,
        network=network,
        family=signal.family,
        meaning=signal.meaning,
        window=signal.window,
        monotone=int(monotone),
    )


def select_features(
    catalog: Sequence[Any], featurize: Featurize, n_probes: int, seed: int, windows: Sequence[int]
) -> FeatureSet:
    names = [s.name for s in catalog]
    audit = audit_directions(featurize, names, n_probes=n_probes, seed=seed, windows=windows)
    resolved: Constraints = resolve_constraints({s.name: s.monotone for s in catalog}, audit)
    kept = [s for s in catalog if s.name in resolved.monotone]
    return FeatureSet(
        names=tuple(s.name for s in kept),
        catalog=tuple(feature_info(s, resolved.monotone[s.name]) for s in kept),
        dropped=resolved.dropped,
    )


def provisional_rule(names: Sequence[str], days: int, hold_back: float | None) -> ProvisionalRule:
    """Newest link and oldest account, from the catalog's log-day features present in the
    features frame (they are computed even when the model does not use them)."""
    return ProvisionalRule(
        days=days,
        days_linked=tuple(n for n in names if n.endswith("__log_days_linked") and not n.startswith("all__")),
        account_age=tuple(n for n in names if n == "all__log_account_age_days_max"),
        log1p_days=True,
        hold_back_score=hold_back,
    )


# --- LightGBM ---------------------------------------------------------------------------------


def lgb_params(train, constraints: Sequence[int], seed: int) -> dict[str, Any]:
    return {
        "objective": "regression",
        "metric": "l2",
        "num_leaves": train.num_leaves,
        "learning_rate": train.learning_rate,
        "min_data_in_leaf": train.min_data_in_leaf,
        "feature_fraction": train.feature_fraction,
        "bagging_fraction": train.bagging_fraction,
        "bagging_freq": train.bagging_freq,
        "lambda_l2": train.lambda_l2,
        "max_bin": train.max_bin,
        "extra_trees": train.extra_trees,
        "path_smooth": train.path_smooth,
        "monotone_constraints": list(constraints),
        "monotone_constraints_method": train.monotone_method,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": train.num_threads,
        "seed": seed,
        "verbosity": -1,
    }


def transform_label(y: np.ndarray, how: str, scale: float = 1.0) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64) / scale
    return np.log1p(np.maximum(y, 0.0)) if how == "log1p" else y


def label_transform_name(train) -> str:
    if train.label_transform == "log1p":
        return f"log1p(outcome / {train.label_scale:g})"
    return f"outcome / {train.label_scale:g}"


def matrix(frame: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    """[n, p] float64 (NaN = unknown); a missing column is a short, clear error."""
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise KeyError(
            f"{len(missing)} feature column(s) missing, e.g. {missing[:3]}: the feature table "
            "was built by another featurize version; rebuild it (influence features --training)"
        )
    return frame.select(pl.col(n).cast(pl.Float64) for n in names).to_numpy()


def fit_booster(
    train: pl.DataFrame,
    valid: pl.DataFrame | None,
    features: FeatureSet,
    params: Params,
    seed: int,
) -> tuple[lgb.Booster, dict[str, Any]]:
    t = params.train
    config = lgb_params(t, features.constraints, seed)
    names = list(features.names)
    y_train = (
        train.get_column(TARGET).to_numpy()
        if TARGET in train.columns
        else transform_label(train.get_column(LABEL).to_numpy(), t.label_transform, t.label_scale)
    )
    dtrain = lgb.Dataset(matrix(train, names), y_train, feature_name=names, free_raw_data=True)
    sets, callbacks = [], []
    if valid is not None and valid.height and t.early_stopping_rounds:
        y_valid = transform_label(valid.get_column(LABEL).to_numpy(), t.label_transform, t.label_scale)
        sets = [lgb.Dataset(matrix(valid, names), y_valid, reference=dtrain)]
        callbacks = [lgb.early_stopping(t.early_stopping_rounds, verbose=False)]
    started = time.perf_counter()
    booster = lgb.train(config, dtrain, t.n_estimators, valid_sets=sets, callbacks=callbacks)
    seconds = time.perf_counter() - started
    best_l2 = booster.best_score.get("valid_0", {}).get("l2") if sets else None
    if sets:
        booster = _keep_best(booster)
    info = {
        "train_rows": train.height,
        "fit_seconds": round(seconds, 2),
        "rows_per_second": round(train.height / seconds, 1) if seconds else None,
        "trees": booster.num_trees(),
        "best_valid_l2": best_l2,
    }
    return booster, info


def _keep_best(booster: lgb.Booster) -> lgb.Booster:
    """A booster holding only the best iteration's trees: what is saved is what was judged."""
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


# --- the training target -----------------------------------------------------------------------

TARGET = "__target"


def smoothed_targets(rows: pl.DataFrame, train) -> pl.DataFrame:
    """(user_id, as_of, TARGET): the transformed outcome averaged over the user's as-of dates
    T, T + step, ... (`train.target_dates` of them, as many as the table has): a less noisy
    estimate of the same expectation, i.e. a longer horizon. Only training rows use it; the
    test rows are judged on their own outcome."""
    y = transform_label(rows.get_column(LABEL).to_numpy(), train.label_transform, train.label_scale)
    frame = rows.select(KEYS).with_columns(pl.Series(TARGET, y)).sort(KEYS)
    ahead = [
        pl.col(TARGET).shift(-k).over("user_id").alias(f"__ahead{k}")
        for k in range(1, train.target_dates)
    ]
    frame = frame.with_columns(ahead)
    columns = [TARGET, *(f"__ahead{k}" for k in range(1, train.target_dates))]
    return frame.select(*KEYS, pl.mean_horizontal(columns).alias(TARGET))


# --- partial snapshots ------------------------------------------------------------------------


def augmented_rows(
    train: pl.DataFrame, snapshots: pl.DataFrame, shares: AugmentShares, seed: int, featurize: Featurize
) -> pl.DataFrame:
    """Featurized partial copies of the training rows' snapshots, with their source's label."""
    keys = train.select(KEYS)
    source = snapshots.join(keys, on=KEYS, how="semi")
    partial = augment_snapshots(source, shares, seed)
    if partial.height == 0:
        return train.clear()
    rows = featurize(partial).with_columns(source_user(pl.col("user_id")).alias("__source"))
    labels = train.select(
        pl.col("user_id").alias("__source"), "as_of", LABEL, *([TARGET] if TARGET in train.columns else [])
    )
    rows = rows.join(labels, on=["__source", "as_of"], how="inner").drop("__source")
    return rows.select([c for c in train.columns if c in rows.columns])


# --- the stage --------------------------------------------------------------------------------


def train_model(
    data: TrainingData,
    params: Params,
    *,
    seed: int | None = None,
    featurize: Featurize | None = None,
    catalog: Sequence[Any] | None = None,
    features: FeatureSet | None = None,
    split: Split | None = None,
) -> ModelBundle:
    """Train, calibrate and bundle a model (see the module docstring). `seed` overrides
    `params.train.seed` (the stability retrain); `features` and `split` reuse earlier decisions
    (a retrain on the same data makes the same ones)."""
    t = params.train
    seed = t.seed if seed is None else seed
    featurize = featurize or default_featurize(data.windows)
    started = time.perf_counter()
    if features is None:
        catalog = catalog if catalog is not None else default_catalog(data.windows)
        catalog = [s for s in catalog if s.family not in t.exclude_families]
        features = select_features(catalog, featurize, t.monotone_probes, t.seed, data.windows)
    split = split or time_split(data.rows, t.validation_dates, t.test_dates)

    train_rows = split.train.select(*KEYS, LABEL, *features.names)
    if t.target_dates > 1:
        # from the training dates only: a later date's outcome may overlap the test horizon
        train_rows = train_rows.join(smoothed_targets(split.train, t), on=KEYS, how="left")
    n_augmented = 0
    if data.snapshots is not None:
        extra = augmented_rows(
            train_rows, data.snapshots, AugmentShares.from_params(t), seed, featurize
        )
        n_augmented = extra.height
        train_rows = pl.concat([train_rows, extra.select(train_rows.columns)], how="vertical_relaxed")

    booster, info = fit_booster(train_rows, split.valid, features, params, seed)

    reference_features = featurize(data.reference)
    reference_raw = booster.predict(matrix(reference_features, features.names), num_threads=t.num_threads)
    calibrator = fit_calibrator(reference_raw, CalibrationTargets.from_params(params.calibrate))

    metadata = {
        **info,
        "seed": seed,
        "num_threads": t.num_threads,
        "augmented_rows": n_augmented,
        "split": split.describe(),
        "dropped_features": features.dropped,
        "n_features": len(features.names),
        "reference_users": reference_features.height,
        "lightgbm_version": lgb.__version__,
        "train_params": t.model_dump(mode="json"),
        "calibrate_params": params.calibrate.model_dump(mode="json"),
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    return ModelBundle(
        booster=booster,
        calibrator=calibrator,
        feature_names=features.names,
        catalog=features.catalog,
        reference_fingerprint=fingerprint(data.reference),
        version=content_version(booster, calibrator),
        provisional=provisional_rule(
            reference_features.columns,
            params.calibrate.provisional_days,
            params.calibrate.provisional_hold_back_score,
        ),
        label_transform=label_transform_name(t),
        metadata=metadata,
    )

