"""How a ModelBundle is logged to MLflow, and the layout `training.registry` reads back.

One MLflow model per run, the native LightGBM Booster through `mlflow.lightgbm.log_model` (the
`lightgbm` flavor: `model.lgb`, signature and input example over the model's feature columns; its
pyfunc predicts the *raw* output), with the rest of the `ModelBundle` as the flavor's
`extra_files` (`calibrator.json`: the raw -> 1..100 map and reference percentiles; `bundle.json`:
version, feature names, catalog, reference fingerprint, provisional rule).
`training.registry.load_bundle` puts `model.lgb` back as the bundle's `model.txt` and calls
`ModelBundle.load`: the same text a bundle saves, so scores round-trip bit for bit. No skops, no
pickles, no second copy of the booster.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mlflow
    import pandas as pd

    from training.bundle import ModelBundle

MODEL_NAME_IN_RUN = "model"
LGB_FLAVOR_FILE = "model.lgb"
EXTRA_FILES_DIR = "extra_files"
BUNDLE_MODEL_FILE = "model.txt"  # training.bundle.MODEL_FILE, kept here to import lazily
PIP_REQUIREMENTS = ("lightgbm", "numpy", "pandas", "polars", "pyarrow", "scikit-learn")


def log_model_bundle(
    bundle: ModelBundle,
    input_example: pd.DataFrame,
    metrics: Mapping[str, float] | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log the bundle as one MLflow model (see the module docstring). Needs an active run;
    the metrics, when given, are attached to the logged model too."""
    import mlflow
    from mlflow.models import infer_signature

    example = input_example[list(bundle.feature_names)].astype("float64")
    signature = infer_signature(example, bundle.booster.predict(example.to_numpy()))
    with tempfile.TemporaryDirectory() as tmp:
        saved = bundle.save(Path(tmp))
        extra = sorted(str(p) for p in saved.iterdir() if p.name != BUNDLE_MODEL_FILE)
        info = mlflow.lightgbm.log_model(
            bundle.booster,
            name=MODEL_NAME_IN_RUN,
            signature=signature,
            input_example=example,
            # explicit: inferring requirements loads the model in a subprocess (slow)
            pip_requirements=pinned_requirements(PIP_REQUIREMENTS),
            extra_files=extra,
            metadata={
                "influence_bundle_version": bundle.version,
                "reference_fingerprint": bundle.reference_fingerprint,
                "bundle_files": sorted(p.name for p in saved.iterdir()),
            },
        )
    if metrics:
        mlflow.log_metrics(dict(metrics), model_id=info.model_id)
    return info


def pinned_requirements(packages: Iterable[str]) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins
