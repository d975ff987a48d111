"""Small synthetic feature frames and models for the code tests of training/ (no simulator)."""

from __future__ import annotations

from datetime import date

import lightgbm as lgb
import numpy as np
import polars as pl

from training.bundle import FeatureInfo, ModelBundle, ProvisionalRule, content_version
from training.calibrate import fit_calibrator
from training.explain import CROSS_NETWORK

CATALOG: tuple[FeatureInfo, ...] = (
    FeatureInfo("twitter__followers", "twitter", "audience", "followers on Twitter", signal="followers"),
    FeatureInfo("twitter__received_like__w30", "twitter", "approval", "likes received", 30, 1),
    FeatureInfo("twitter__unique_engagers__w30", "twitter", "engagers", "distinct engagers", 30, 1),
    FeatureInfo("twitter__days_linked", "twitter", "activity", "days linked", signal="days_linked"),
    FeatureInfo("instagram__received_like__w30", "instagram", "approval", "likes received", 30, 1),
    FeatureInfo("instagram__days_linked", "instagram", "activity", "days linked", signal="days_linked"),
    FeatureInfo("all__networks_linked", CROSS_NETWORK, "reach", "linked networks", None, 1),
)
NAMES = tuple(c.name for c in CATALOG)


def features_frame(n: int, seed: int = 0, as_of: date = date(2026, 10, 1)) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    has_ig = rng.random(n) < 0.5
    data = {
        "user_id": [f"u{i}" for i in range(n)],
        "as_of": [as_of] * n,
        "twitter__followers": rng.lognormal(5, 2, n),
        "twitter__received_like__w30": rng.poisson(rng.lognormal(2, 1.5, n)).astype(float),
        "twitter__unique_engagers__w30": rng.poisson(rng.lognormal(1.5, 1.2, n)).astype(float),
        "twitter__days_linked": rng.uniform(1, 900, n),
        "instagram__received_like__w30": np.where(has_ig, rng.lognormal(2, 1.5, n), np.nan),
        "instagram__days_linked": np.where(has_ig, rng.uniform(1, 900, n), np.nan),
        "all__networks_linked": 1.0 + has_ig,
    }
    return pl.DataFrame(data).fill_nan(None)


def outcome(frame: pl.DataFrame, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    x = np.nan_to_num(frame.select(NAMES).to_numpy())
    signal = 0.3 * np.log1p(x[:, 0]) + 0.5 * np.log1p(x[:, 1]) + 0.8 * np.log1p(x[:, 2])
    signal += 0.4 * np.log1p(x[:, 4])
    return np.expm1(np.clip(signal + rng.normal(0, 0.4, len(x)), 0, None))


def tiny_bundle(n: int = 3000, seed: int = 0, trees: int = 60) -> ModelBundle:
    frame = features_frame(n, seed)
    x = frame.select(NAMES).to_numpy()
    params = {
        "objective": "regression",
        "num_leaves": 15,
        "learning_rate": 0.1,
        "min_data_in_leaf": 20,
        "monotone_constraints": [c.monotone for c in CATALOG],
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "seed": seed,
        "verbose": -1,
    }
    booster = lgb.train(
        params, lgb.Dataset(x, np.log1p(outcome(frame, seed)), feature_name=list(NAMES)), trees
    )
    calibrator = fit_calibrator(booster.predict(x))
    return ModelBundle(
        booster=booster,
        calibrator=calibrator,
        feature_names=NAMES,
        catalog=CATALOG,
        reference_fingerprint="synthetic",
        version=content_version(booster, calibrator),
        provisional=ProvisionalRule(
            days=30, days_linked=("twitter__days_linked", "instagram__days_linked")
        ),
        metadata={"num_threads": 1},
    )
