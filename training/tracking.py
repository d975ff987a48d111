"""MLflow tracking: where runs go, and what every training run records.

Default store: a SQLite file and an artifact folder inside the project (`sqlite:///mlflow.db`,
`./mlartifacts`), the same pair `make mlflow-ui` serves. `MLFLOW_TRACKING_URI` overrides the
store; for a SQLite store the artifacts go to `mlartifacts/` next to the database file, so a
store under a temp dir (the tests) keeps its artifacts there too.

A run records all of params.yaml (flattened keys), a fingerprint of the data it learned from,
the git commit, metrics under the same names for the model and each baseline, report plots, the
signal catalog and the model itself (see `log_model_bundle`).

How the model is logged (`log_model_bundle`): one MLflow model per run, the native LightGBM
Booster through `mlflow.lightgbm.log_model` (the `lightgbm` flavor: `model.lgb`, signature and
input example over the model's feature columns; its pyfunc predicts the *raw* output), with the
rest of the `ModelBundle` as the flavor's `extra_files` (`calibrator.json`: the raw -> 1..100 map
and reference percentiles; `bundle.json`: version, feature names, catalog, reference
fingerprint, provisional rule). `training.registry.load_bundle` puts `model.lgb` back as the
bundle's `model.txt` and calls `ModelBundle.load`: the same text a bundle saves, so scores
round-trip bit for bit. No skops, no pickles, no second copy of the booster.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # heavy imports stay lazy: the CLI answers --help at once
    import mlflow
    import pandas as pd
    import polars as pl

    from training.bundle import ModelBundle

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "influence-score"
ARTIFACTS_DIRNAME = "mlartifacts"
MODEL_NAME_IN_RUN = "model"
LGB_FLAVOR_FILE = "model.lgb"
EXTRA_FILES_DIR = "extra_files"
BUNDLE_MODEL_FILE = "model.txt"  # training.bundle.MODEL_FILE, kept here to import lazily
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
    # only when it differs: a global URI set here would outlive a later change of the env var
    if mlflow.get_tracking_uri() != settings.tracking_uri:
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


def dvc_tags(environ: Mapping[str, str]) -> dict[str, str]:
    """Which DVC experiment (and baseline commit) produced the run, when run by `dvc exp run`:
    DVC sets these variables for the stage commands of an experiment."""
    names = {"DVC_EXP_NAME": "dvc_experiment", "DVC_EXP_BASELINE_REV": "dvc_baseline_rev",
             "DVC_STAGE": "dvc_stage"}
    return {tag: environ[var] for var, tag in names.items() if environ.get(var)}


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
    table: pl.DataFrame | pl.LazyFrame,
    source: Path | str,
    name: str,
    digest: str,
    context: str = "training",
) -> None:
    """Training-data lineage: the table's source path, our fingerprint, its schema and row count.
    Only the schema is materialised (a `MetaDataset`), so a lazily scanned table of any size
    costs nothing to log."""
    import mlflow
    import polars as pl
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.types.utils import _infer_schema

    lazy = table.lazy()
    rows = lazy.select(pl.len()).collect().item()
    empty = pl.DataFrame(schema=lazy.collect_schema()).to_pandas()
    dataset = MetaDataset(
        source=LocalArtifactDatasetSource(str(Path(source).resolve())),
        name=name,
        digest=digest[:36],  # the store keeps 36 characters
        schema=_infer_schema(empty),
    )
    mlflow.log_input(dataset, context=context, tags={"rows": str(rows)})


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
    bundle: ModelBundle,
    input_example: pd.DataFrame,
    metrics: Mapping[str, float] | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log the bundle as one MLflow model: the native Booster in the `lightgbm` flavor
    (`model.lgb`, with signature and input example) and the bundle's other files
    (`calibrator.json`, `bundle.json`) as the flavor's `extra_files`. Needs an active run;
    the metrics, when given, are attached to the logged model too."""
    import tempfile

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


def log_figures(figures: Mapping[str, Any], folder: str = "plots") -> None:
    """Log matplotlib figures as PNGs under `folder/`."""
    import mlflow

    for name, figure in figures.items():
        mlflow.log_figure(figure, f"{folder}/{name}.png")


# --- one training run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInputs:
    """What a training run records. Frames are `features.featurize` feature frames."""

    bundle: ModelBundle
    metrics: Mapping[str, float]
    """The evaluation (reports/metrics.json): the model's metrics and the baselines' (prefixed)."""
    params: Mapping[str, Any]
    """All of params.yaml, nested."""
    data_paths: tuple[Path, ...]
    """The feature and label tables the model learned from (fingerprinted)."""
    reference: pl.DataFrame
    """The reference population's features: calibration, SHAP and contribution plots."""
    population: pl.DataFrame | None = None
    """Users to draw against the target scale (e.g. the test split); default: the reference."""
    training_table: pl.DataFrame | pl.LazyFrame | None = None
    """The training table (a scan is enough), for lineage; default: the reference."""
    plots_dir: Path | None = None
    """Also write the plots (PNGs and their data as CSV) here, e.g. for `dvc plots`."""
    run_name: str | None = None
    shap_sample: int = 2_000
    seed: int = 0


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment_id: str
    model_id: str
    model_uri: str
    """`models:/m-<id>`: what the registry registers."""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def catalog_frame(bundle: ModelBundle) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([asdict(entry) for entry in bundle.catalog])


def report_figures(
    bundle: ModelBundle,
    reference: pl.DataFrame,
    population: pl.DataFrame | None = None,
    shap_sample: int = 2_000,
    seed: int = 0,
) -> dict[str, Any]:
    """The run's plots (matplotlib Figures), named as they are logged."""
    import numpy as np
    import pandas as pd

    from training import plots
    from training.explain import contributions_to_points

    raw = bundle.raw(reference)
    scores = bundle.calibrator.score(raw)
    shown = scores if population is None else bundle.score(population)["score"].to_numpy()
    names = list(bundle.feature_names)
    sample = reference.sample(min(shap_sample, reference.height), seed=seed, shuffle=True)
    x = pd.DataFrame(bundle.matrix(sample), columns=names)
    contrib = plots.shap_values(bundle.booster, x)
    points, _, _ = contributions_to_points(contrib.to_numpy(), bundle.calibrator)
    points = pd.DataFrame(points, columns=names)
    network_of = {c.name: c.network for c in bundle.catalog}
    family_of = {c.name: c.family for c in bundle.catalog}
    return {
        "calibration_curve": plots.calibration_figure(raw, scores),
        "score_histogram": plots.score_histogram_figure(
            shown, target_scores=None if population is None else scores
        ),
        "feature_importance": plots.feature_importance_figure(
            names, bundle.booster.feature_importance("gain")
        ),
        "shap_summary": plots.shap_summary_figure(contrib, x),
        "network_contributions": plots.contribution_figure(
            plots.group_contributions(points, network_of), "Points per network"
        ),
        "family_contributions": plots.contribution_figure(
            plots.group_contributions(points, family_of), "Points per signal family"
        ),
        "_mean_abs_shap": pd.Series(np.abs(contrib.drop(columns="bias")).mean(), name="mean_abs"),
    }


def plot_data(
    bundle: ModelBundle, reference: pl.DataFrame, population: pl.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """The data behind the calibration curve and the score histogram, as small tables
    (`dvc plots` draws and diffs them across experiments)."""
    import numpy as np
    import pandas as pd

    raw = np.sort(bundle.raw(reference))
    grid = np.quantile(raw, np.linspace(0, 1, 201))
    calibration = pd.DataFrame({"raw": grid, "score": bundle.calibrator.score(grid),
                                "reference_percentile": np.linspace(0, 100, 201)})
    edges = np.arange(0, 101, 2)
    ref_scores = bundle.calibrator.score(raw)
    shown = ref_scores if population is None else bundle.score(population)["score"].to_numpy()
    histogram = pd.DataFrame({
        "score": edges[:-1] + 1,
        "share": np.histogram(shown, edges)[0] / max(len(shown), 1),
        "reference_share": np.histogram(ref_scores, edges)[0] / max(len(ref_scores), 1),
    })
    return {"calibration": calibration, "score_histogram": histogram}


def write_plots(figures: Mapping[str, Any], tables: Mapping[str, pd.DataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, figure in figures.items():
        figure.savefig(folder / f"{name}.png", dpi=100)
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
    return folder


def log_training_run(inputs: RunInputs, settings: TrackingSettings | None = None) -> LoggedRun:
    """One MLflow run: params, data fingerprint and lineage, git commit, metrics (and a nested
    run per baseline), plots, the signal catalog and the model. Returns what the registry needs."""
    import mlflow

    experiment_id = use_experiment(settings)
    bundle = inputs.bundle
    digest = data_fingerprint(inputs.data_paths)
    import os

    experiment = dvc_tags(os.environ)
    tags = run_tags(
        git_state(), digest, {"bundle_version": bundle.version, "kind": "model", **experiment}
    )
    metrics = model_metrics(inputs.metrics)
    run_name = inputs.run_name or experiment.get("dvc_experiment") or f"lightgbm {bundle.version}"
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(flatten_params(inputs.params))
        mlflow.log_params(
            {"data_fingerprint": digest, "reference_fingerprint": bundle.reference_fingerprint}
        )
        table = inputs.training_table if inputs.training_table is not None else inputs.reference
        log_dataset(table, inputs.data_paths[0], name="training_table", digest=digest)
        mlflow.log_metrics(metrics)
        log_baseline_runs(metrics, {k: v for k, v in tags.items() if k != "kind"})
        figures = report_figures(
            bundle, inputs.reference, inputs.population, inputs.shap_sample, inputs.seed
        )
        shap_table = figures.pop("_mean_abs_shap")
        log_figures(figures)
        mlflow.log_text(shap_table.sort_values(ascending=False).to_csv(), "plots/mean_abs_shap.csv")
        tables = plot_data(bundle, inputs.reference, inputs.population)
        for name, table in tables.items():
            mlflow.log_text(table.to_csv(index=False), f"plots/{name}.csv")
        if inputs.plots_dir is not None:
            write_plots(figures, tables, inputs.plots_dir)
        catalog = catalog_frame(bundle)
        mlflow.log_text(catalog.to_csv(index=False), "catalog/signal_catalog.csv")
        mlflow.log_dict({"features": catalog.to_dict(orient="records")},
                        "catalog/signal_catalog.json")
        mlflow.log_dict(dict(inputs.metrics), "reports/metrics.json")
        example = inputs.reference.head(5).to_pandas()
        info = log_model_bundle(bundle, example, unprefixed_metrics(metrics))
    return LoggedRun(run.info.run_id, experiment_id, info.model_id, info.model_uri)
