"""Where MLflow runs go: the store, the experiment, and links into the MLflow UI.

Default store: a SQLite file and an artifact folder inside the project (`sqlite:///mlflow.db`,
`./mlartifacts`), the same pair `make mlflow-ui` serves. `MLFLOW_TRACKING_URI` overrides the
store; for a SQLite store the artifacts go to `mlartifacts/` next to the database file, so a
store under a temp dir (the tests) keeps its artifacts there too.

The experiment is tagged for classic model development (`mlflow.experimentKind`) and described,
so the UI treats it as training runs rather than GenAI traces. MLflow 3.17's UI also has a
sidebar switch (GenAI / Model training, remembered by the browser, GenAI at first): the links
`runs_url` and the others carry `workflowType=machine_learning`, so they open on the runs
whatever it is, and the runs table opens on a view of the headline metrics and params
(`headline_view`, kept as an experiment tag: the UI's own "shared view").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlparse

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "influence-score"
ARTIFACTS_DIRNAME = "mlartifacts"
DEFAULT_UI = "http://127.0.0.1:5000"

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CLASSIC_MODEL_DEVELOPMENT = "custom_model_development"
NOTE_TAG = "mlflow.note.content"
"""The tag MLflow shows as the description of an experiment or a run."""
EXPERIMENT_DESCRIPTION = (
    "Influence score 1-100: one run per trained model (`dvc repro` or `dvc exp run`), with all of "
    "params.yaml, the metrics of `reports/metrics.json` on the test split (baselines in the "
    "run's `baselines/` artifacts and description), the plots and the model. Every model is "
    "registered as `influence-score`; the gate decides `champion` or `challenger` (see each "
    "run's description). Compare two retrains: select both runs, then Compare."
)


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


def client(settings: TrackingSettings | None = None) -> MlflowClient:
    from mlflow import MlflowClient

    settings = settings or TrackingSettings()
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def use_experiment(settings: TrackingSettings | None = None) -> str:
    """Point MLflow at the store and return the experiment id, creating the experiment with an
    explicit artifact location (MLflow's own default would be `./mlruns` of the cwd). The kind
    tag and the description are set when missing, on an existing experiment too."""
    import mlflow

    settings = settings or TrackingSettings()
    # only when it differs: a global URI set here would outlive a later change of the env var
    if mlflow.get_tracking_uri() != settings.tracking_uri:
        mlflow.set_tracking_uri(settings.tracking_uri)
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    if experiment is not None:
        experiment_id, tags = experiment.experiment_id, experiment.tags
    else:
        experiment_id = mlflow.create_experiment(
            settings.experiment_name, artifact_location=settings.artifact_location()
        )
        tags = {}
    wanted = {EXPERIMENT_KIND_TAG: CLASSIC_MODEL_DEVELOPMENT, NOTE_TAG: EXPERIMENT_DESCRIPTION}
    for key, value in wanted.items():
        if key not in tags:  # a description edited in the UI stays as it was
            client(settings).set_experiment_tag(experiment_id, key, value)
    view = headline_view()
    if tags.get(SHARED_VIEW_TAG) != view:
        client(settings).set_experiment_tag(experiment_id, SHARED_VIEW_TAG, view)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


# --- links into the UI -------------------------------------------------------------------------

ML_WORKFLOW = "workflowType=machine_learning"
VIEW_KEY = "headline"
SHARED_VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
"""An experiment tag holding a view of the runs table, opened by `?viewStateShareKey=headline`
(the UI's own "share view" mechanism): MLflow's default table shows no metric at all."""
VIEW_METRICS = ("spearman_outcome", "spearman_latent", "pairwise_accuracy", "ndcg_100",
                "stability_p99_abs_delta", "score_p95")
VIEW_PARAMS = ("train.num_leaves", "train.learning_rate", "train.n_estimators",
               "train.min_data_in_leaf")


def headline_view() -> str:
    """The runs table with the headline metrics and the params most often varied (JSON in the
    UI's view-state format, MLflow 3.17)."""
    columns = ["attributes.`Models`",
               *(f"metrics.`{m}`" for m in VIEW_METRICS),
               *(f"params.`{p}`" for p in VIEW_PARAMS)]
    return json.dumps({
        "searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": False,
        "startTime": "ALL", "lifecycleFilter": "Active", "datasetsFilter": [],
        "modelVersionFilter": "All Runs", "selectedColumns": columns, "columnOrder": columns,
    })


def runs_url(experiment_id: str, base: str = DEFAULT_UI) -> str:
    """The experiment's training-runs table, with the headline metrics and params as columns."""
    return f"{base}/#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_KEY}&{ML_WORKFLOW}"


def compare_url(experiment_id: str, run_ids: Sequence[str], base: str = DEFAULT_UI) -> str:
    """Compare Runs of `run_ids`: params diff, metrics, parallel coordinates."""
    runs = quote(json.dumps(list(run_ids), separators=(",", ":")))
    experiments = quote(json.dumps([str(experiment_id)], separators=(",", ":")))
    return f"{base}/#/compare-runs?runs={runs}&experiments={experiments}&{ML_WORKFLOW}"


def model_url(model_name: str, base: str = DEFAULT_UI) -> str:
    """The registered model's versions and aliases."""
    return f"{base}/#/models/{quote(model_name)}?{ML_WORKFLOW}"


def recent_runs(
    settings: TrackingSettings | None = None, last: int = 5, metric_names: Sequence[str] = ()
) -> tuple[str, list[dict]]:
    """(experiment id, the `last` model runs, newest first: id, name, start time, the
    registered version and the given metrics)."""
    import mlflow

    experiment_id = use_experiment(settings)
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string="tags.kind = 'model'",
        order_by=["attributes.start_time DESC"],
        max_results=last,
        output_format="list",
    )
    return experiment_id, [
        {
            "run_id": run.info.run_id,
            "name": run.info.run_name,
            "started": run.info.start_time,
            "registered_as": run.data.tags.get("registered_as", ""),
            **{m: run.data.metrics.get(m) for m in metric_names},
        }
        for run in runs
    ]
