"""A small but real model for the service tests: the real featurize catalog, a LightGBM booster
trained in seconds on random snapshots, a fitted calibrator, saved as a ModelBundle folder.

It is not a good influence model (the outcome is a made-up function of reactions and engagers);
it exercises exactly the code the champion runs through.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np

from features.featurize import ALL, DEFAULT_WINDOWS, featurize_matrix, signal_catalog
from features.snapshot import snapshots_to_arrays
from serving.samples import random_snapshots
from training.bundle import FeatureInfo, ModelBundle, content_version
from training.calibrate import fit_calibrator
from training.explain import CROSS_NETWORK


def _catalog() -> tuple[FeatureInfo, ...]:
    """The cross-network signals and the per-network levels (~200 of the catalog's ~900 columns:
    enough for points per network and family, small enough to train in a second)."""
    return tuple(
        FeatureInfo(
            name=s.name,
            network=CROSS_NETWORK if s.network == ALL else s.network,
            family=s.family,
            meaning=s.meaning,
            window=s.window,
            monotone=s.monotone,
        )
        for s in signal_catalog(DEFAULT_WINDOWS)
        if s.network == ALL or s.window is None
    )


def _outcome(x: np.ndarray, names: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    def col(name: str) -> np.ndarray:
        return np.nan_to_num(x[:, names.index(name)])

    signal = (
        0.6 * col("all__log_received__30d")
        + 0.8 * col("all__log_unique_engagers__30d")
        + 0.3 * col("all__log_followers_max")
        + 0.4 * col("all__n_linked_networks")
    )
    return np.clip(signal + rng.normal(0, 0.3, len(x)), 0, None)


def serving_bundle(n: int = 2000, seed: int = 0, trees: int = 40) -> ModelBundle:
    snapshots = random_snapshots(n, seed)
    matrix = featurize_matrix(snapshots_to_arrays(snapshots, DEFAULT_WINDOWS), DEFAULT_WINDOWS)
    catalog = _catalog()
    names = tuple(c.name for c in catalog)
    x = matrix.values[:, [matrix.names.index(name) for name in names]]
    label = _outcome(x, names, np.random.default_rng(seed))
    params = {
        "objective": "regression",
        "num_leaves": 15,
        "learning_rate": 0.1,
        "min_data_in_leaf": 20,
        "max_bin": 63,
        "monotone_constraints": [c.monotone for c in catalog],
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "seed": seed,
        "verbose": -1,
    }
    booster = lgb.train(params, lgb.Dataset(x, label, feature_name=list(names)), trees)
    calibrator = fit_calibrator(booster.predict(x))
    return ModelBundle(
        booster=booster,
        calibrator=calibrator,
        feature_names=names,
        catalog=catalog,
        reference_fingerprint="serving-tests",
        version=content_version(booster, calibrator),
        metadata={"num_threads": 1},
    )


def save_serving_bundle(directory: Path, **kwargs) -> Path:
    return serving_bundle(**kwargs).save(directory)
