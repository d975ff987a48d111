"""One MLflow run per trained model: what it records, in what order.

A run records all of params.yaml (flattened keys, e.g. `train.num_leaves`), a fingerprint of the
data it learned from and its lineage, the git commit (and the DVC experiment that made it), the
model's metrics under the names of `reports/metrics.json` (`training.run_report.run_metrics`:
headline metrics first, baselines apart), the model against its baselines (`baselines/`), the
report plots (`plots/`), the signal catalog, a description in plain words
(`training.run_notes`), and the model itself (`training.model_logging`).

Where the parts live: `tracking_store` (store, experiment, UI links), `lineage` (params, data,
code), `model_logging` (the bundle as an MLflow model), `run_report` (metrics, tables, plots),
`run_notes` (descriptions).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.lineage import (
    data_fingerprint,
    dvc_tags,
    flatten_params,
    git_state,
    log_dataset,
    run_tags,
)
from training.model_logging import log_model_bundle
from training.run_notes import DataFacts, run_description
from training.run_report import catalog_frame, report_figures, run_metrics, write_plots
from training.tracking_store import NOTE_TAG, TrackingSettings, use_experiment

if TYPE_CHECKING:
    import polars as pl

    from training.bundle import ModelBundle


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
    run_name: str = ""
    data: DataFacts | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if k != "data"}


def default_run_name(bundle: ModelBundle, experiment: str | None) -> str:
    """The DVC experiment's name when `dvc exp run` made the model (`-n` names it), else
    `lightgbm <model version>`."""
    return experiment or f"lightgbm {bundle.version}"


def log_training_run(inputs: RunInputs, settings: TrackingSettings | None = None) -> LoggedRun:
    """One MLflow run (see the module docstring). Returns what the registry needs."""
    import mlflow

    experiment_id = use_experiment(settings)
    bundle = inputs.bundle
    digest = data_fingerprint(inputs.data_paths)
    experiment = dvc_tags(os.environ)
    git = git_state()
    tags = run_tags(git, digest, {"bundle_version": bundle.version, "kind": "model", **experiment})
    metrics = run_metrics(inputs.metrics)
    run_name = inputs.run_name or default_run_name(bundle, experiment.get("dvc_experiment"))
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(flatten_params(inputs.params))
        mlflow.log_params(
            {"data_fingerprint": digest, "reference_fingerprint": bundle.reference_fingerprint}
        )
        table = inputs.training_table if inputs.training_table is not None else inputs.reference
        rows = log_dataset(table, inputs.data_paths[0], name="training_table", digest=digest)
        mlflow.log_metrics(metrics)
        data = DataFacts(rows, digest, bundle.reference_fingerprint, git.commit, git.dirty,
                         experiment.get("dvc_experiment"))
        mlflow.set_tag(NOTE_TAG, run_description(inputs.metrics, data, title=run_name))
        log_report(inputs)
        example = inputs.reference.head(5).to_pandas()
        info = log_model_bundle(bundle, example, metrics)
    return LoggedRun(run.info.run_id, experiment_id, info.model_id, info.model_uri, run_name, data)


def log_report(inputs: RunInputs) -> None:
    """Plots, their tables, the baselines, the catalog and the evaluation, into the active run
    (and into `inputs.plots_dir` for `dvc plots`)."""
    import mlflow

    figures, tables = report_figures(
        inputs.bundle, inputs.reference, inputs.population, inputs.metrics,
        inputs.shap_sample, inputs.seed,
    )
    for name, figure in figures.items():
        folder = "baselines" if name == "baselines" else "plots"
        mlflow.log_figure(figure, f"{folder}/{name}.png")
    for name, table in tables.items():
        folder = "baselines" if name == "baselines" else "plots"
        mlflow.log_text(table.to_csv(index=False), f"{folder}/{name}.csv")
    if inputs.plots_dir is not None:
        write_plots(figures, tables, inputs.plots_dir)
    catalog = catalog_frame(inputs.bundle)
    mlflow.log_text(catalog.to_csv(index=False), "catalog/signal_catalog.csv")
    mlflow.log_dict({"features": catalog.to_dict(orient="records")}, "catalog/signal_catalog.json")
    mlflow.log_dict(dict(inputs.metrics), "reports/metrics.json")
