"""MLflow tracking: where runs go, and what every training run records.

Default store: a SQLite file and an artifact folder inside the project (`sqlite:///mlflow.db`,
`./mlartifacts`), the same pair `make mlflow-ui` serves. `MLFLOW_TRACKING_URI` overrides the
store; for a SQLite store the artifacts go to `mlartifacts/` next to the database file, so a
store under a temp dir (the tests) keeps its artifacts there too.

A run records all of params.yaml (flattened keys), a fingerprint of the data it learned from,
the git commit, metrics under the same names for the model and each baseline, report plots, the
signal catalog and the model itself (see `log_model_bundle`).

How the model is logged: the native LightGBM Booster through `mlflow.lightgbm.log_model` (the
`lightgbm` flavor, `model.lgb`, with signature and input example; its pyfunc predicts the raw
model output), and in the same logged model a `bundle/` folder holding the complete
`ModelBundle` as written by `ModelBundle.save` (booster, calibrator, feature names, catalog,
reference fingerprint, version). `training.registry.load_champion` rebuilds the bundle from that
folder, so serving scores with exactly the files that were evaluated.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # heavy imports stay lazy: the CLI answers --help at once
    import mlflow
    import pandas as pd

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "influence-score"
ARTIFACTS_DIRNAME = "mlartifacts"
MODEL_NAME_IN_RUN = "model"
BUNDLE_SUBDIR = "bundle"
PIP_REQUIREMENTS = ("lightgbm", "numpy", "pandas", "polars", "pyarrow", "scikit-learn")

METRIC_NAMES: tuple[str, ...] = (
    "spearman_outcome",
    "spearman_latent",
    "pairwise_accuracy",
    "ndcg_100",
)
BASELINE_PREFIXES: tuple[str, ...] = ("baseline_followers_", "baseline_linear_", "baseline_pagerank_")


class TrackingSettings(BaseSettings):
    """Where MLflow writes. Read from the environment; frozen once read."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    tracking_uri: str = Field(
        DEFAULT_TRACKING_URI, validation_alias=AliasChoices("MLFLOW_TRACKING_URI")
    )
    experiment_name: str = Field(
        DEFAULT_EXPERIMENT, validation_alias=AliasChoices("MLFLOW_EXPERIMENT_NAME")
    )
    artifact_root: Path | None = Field(
        None,
        validation_alias=AliasChoices("INFLUENCE_MLFLOW_ARTIFACTS"),
        description="artifact folder of new experiments; default: mlartifacts/ next to a "
        "SQLite store, the server's default for any other store",
    )

    def artifact_location(self) -> str | None:
        root = self.artifact_root or sqlite_artifact_root(self.tracking_uri)
        return None if root is None else Path(root).resolve().as_uri()


def sqlite_artifact_root(tracking_uri: str) -> Path | None:
    """`mlartifacts/` next to the database file of a `sqlite:///` URI, else None."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    # sqlite:///relative.db -> path "/relative.db"; sqlite:////abs.db -> "//abs.db"
    db_path = unquote(parsed.path)[1:]
    if not db_path or db_path == ":memory:":
        return None
    return Path(db_path).parent / ARTIFACTS_DIRNAME


def use_experiment(settings: TrackingSettings | None = None) -> str:
    """Point MLflow at the store and return the experiment id, creating the experiment with an
    explicit artifact location (MLflow's own default would be `./mlruns` of the cwd)."""
    import mlflow

    settings = settings or TrackingSettings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        experiment_id = mlflow.create_experiment(
            settings.experiment_name, artifact_location=settings.artifact_location()
        )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


# --- what a run records ----------------------------------------------------------------------


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"train": {"num_leaves": 31}}` -> `{"train.num_leaves": "31"}`; lists stay one value."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(list(value), default=str)
        else:
            flat[name] = str(value)
    return flat


def _files_under(paths: Iterable[Path | str]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"cannot fingerprint {path}: no such file or folder")
    return sorted(set(files))


def data_fingerprint(paths: Sequence[Path | str]) -> str:
    """sha256 over the relative path and content of every file under `paths` (sorted), so the
    same tables give the same fingerprint wherever the project lives."""
    digest = hashlib.sha256()
    roots = [Path(p) for p in paths]
    for file in _files_under(roots):
        root = next(r for r in roots if file == r or r in file.parents)
        relative = file.relative_to(root.parent)
        digest.update(relative.as_posix().encode())
        digest.update(b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool


def git_state(cwd: Path | str = ".") -> GitState:
    """HEAD and whether the work tree has changes; 'unknown' outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return GitState("unknown", dirty=False)
    return GitState(commit, dirty=bool(status.strip()))


def run_tags(git: GitState, data_digest: str, extra: Mapping[str, str] | None = None) -> dict:
    return {
        # the standard tag, shown by the MLflow UI next to the run
        "mlflow.source.git.commit": git.commit,
        "git_commit": git.commit,
        "git_dirty": str(git.dirty).lower(),
        "data_fingerprint": data_digest,
        **(extra or {}),
    }


def model_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics of an evaluation, as floats (MLflow rejects anything else)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def baseline_metrics(metrics: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """`baseline_linear_spearman_outcome` -> `{"baseline_linear": {"spearman_outcome": ..}}`,
    so each baseline can be its own run with the model's metric names."""
    out: dict[str, dict[str, float]] = {}
    for prefix in BASELINE_PREFIXES:
        found = {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}
        if found:
            out[prefix.rstrip("_")] = found
    return out


def unprefixed_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not k.startswith(BASELINE_PREFIXES)}


# --- logging -----------------------------------------------------------------------------------


def log_dataset(
    frame: pd.DataFrame, source: Path | str, name: str, digest: str, context: str = "training"
) -> None:
    """Training-data lineage: the table's schema, size, source path and our own fingerprint."""
    import mlflow

    dataset = mlflow.data.from_pandas(
        frame, source=str(Path(source).resolve()), name=name, digest=digest[:36]
    )
    mlflow.log_input(dataset, context=context)


def log_baseline_runs(metrics: Mapping[str, float], parent_tags: Mapping[str, str]) -> list[str]:
    """One nested run per baseline with the model's metric names, so that selecting the model
    run and its children in the UI puts every `spearman_outcome` in one column."""
    import mlflow

    run_ids = []
    for baseline, values in baseline_metrics(metrics).items():
        with mlflow.start_run(run_name=baseline, nested=True) as child:
            mlflow.set_tags({**parent_tags, "kind": "baseline", "baseline": baseline})
            mlflow.log_metrics(values)
            run_ids.append(child.info.run_id)
    return run_ids


def log_model_bundle(
    bundle: Any,
    input_example: pd.DataFrame,
    metrics: Mapping[str, float] | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log the native Booster (lightgbm flavor) with signature and input example, then the whole
    bundle under `bundle/` of the same logged model. Needs an active run."""
    import tempfile

    import mlflow
    from mlflow.models import infer_signature

    example = input_example[list(bundle.feature_names)]
    signature = infer_signature(example, bundle.booster.predict(example))
    info = mlflow.lightgbm.log_model(
        bundle.booster,
        name=MODEL_NAME_IN_RUN,
        signature=signature,
        input_example=example,
        # explicit: inferring requirements loads the model in a subprocess (slow)
        pip_requirements=pinned_requirements(PIP_REQUIREMENTS),
        metadata={"bundle_dir": BUNDLE_SUBDIR, "bundle_version": str(bundle.version)},
    )
    with tempfile.TemporaryDirectory() as tmp:
        bundle.save(Path(tmp))
        mlflow.MlflowClient().log_model_artifacts(info.model_id, tmp, BUNDLE_SUBDIR)
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


def log_figures(figures: Mapping[str, Any], folder: str = "plots") -> None:
    """Log matplotlib figures as PNGs under `folder/` and close them."""
    import matplotlib.pyplot as plt
    import mlflow

    for name, figure in figures.items():
        mlflow.log_figure(figure, f"{folder}/{name}.png")
        plt.close(figure)
