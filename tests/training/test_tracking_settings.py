"""Where MLflow writes, how the experiment opens, and the pure pieces every run records (params,
fingerprint, git, metrics against baselines)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from pydantic import ValidationError

from training.lineage import data_fingerprint, dvc_tags, flatten_params, git_state
from training.run_report import baseline_table, run_metrics
from training.tracking_store import (
    CLASSIC_MODEL_DEVELOPMENT,
    EXPERIMENT_KIND_TAG,
    NOTE_TAG,
    TrackingSettings,
    compare_url,
    runs_url,
    sqlite_artifact_root,
    use_experiment,
)


def test_default_store_is_inside_the_project(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    settings = TrackingSettings()
    assert settings.tracking_uri == "sqlite:///mlflow.db"
    assert settings.artifact_location() == (Path.cwd() / "mlartifacts").as_uri()


def test_env_overrides_the_store_and_artifacts_follow_the_database(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/x/mlflow.db")
    settings = TrackingSettings()
    assert settings.artifact_location() == (tmp_path / "x" / "mlartifacts").as_uri()
    assert sqlite_artifact_root("http://127.0.0.1:5000") is None
    assert sqlite_artifact_root("sqlite:///rel/m.db") == Path("rel/mlartifacts")


def test_settings_are_frozen():
    settings = TrackingSettings()
    with pytest.raises(ValidationError):
        settings.tracking_uri = "sqlite:///elsewhere.db"


def test_experiment_gets_an_explicit_artifact_location(tmp_path):
    experiment_id = use_experiment(TrackingSettings())
    experiment = mlflow.get_experiment(experiment_id)
    assert experiment.name == "influence-score"
    expected = TrackingSettings().artifact_location()
    assert experiment.artifact_location == expected
    assert "/homes" in expected  # the conftest's temp store, never the project's folder
    assert use_experiment(TrackingSettings()) == experiment_id  # idempotent


def test_flatten_params_keeps_every_leaf():
    flat = flatten_params({"base": {"seed": 42, "dirs": {"raw": "data/raw"}},
                           "features": {"windows": [7, 30, 90]}, "top": 1.5})
    assert flat == {"base.seed": "42", "base.dirs.raw": "data/raw",
                    "features.windows": "[7, 30, 90]", "top": "1.5"}


def test_fingerprint_follows_content_and_names_not_location(tmp_path):
    for root in (tmp_path / "a", tmp_path / "b"):
        (root / "features" / "part=1").mkdir(parents=True)
        (root / "features" / "part=1" / "x.parquet").write_bytes(b"rows")
        (root / "labels.parquet").write_bytes(b"labels")
    a = data_fingerprint([tmp_path / "a" / "features", tmp_path / "a" / "labels.parquet"])
    b = data_fingerprint([tmp_path / "b" / "features", tmp_path / "b" / "labels.parquet"])
    assert a == b and len(a) == 64
    (tmp_path / "b" / "labels.parquet").write_bytes(b"labels!")
    assert data_fingerprint([tmp_path / "b" / "features", tmp_path / "b" / "labels.parquet"]) != a
    with pytest.raises(FileNotFoundError):
        data_fingerprint([tmp_path / "missing"])


def test_git_state_outside_a_checkout(tmp_path):
    assert git_state(tmp_path).commit == "unknown"
    here = git_state(Path(__file__).parent)
    assert len(here.commit) == 40


def test_the_run_logs_model_metrics_once_and_baselines_as_one_table():
    metrics = {"score_mean": 40.0, "ndcg_100": 0.9, "spearman_outcome": 0.8,
               "baseline_linear_spearman_outcome": 0.6, "baseline_page_rank_spearman_outcome": 0.5,
               "baseline_linear_ndcg_100": 0.3, "model_version": "is-1", "test_users": 10}
    logged = run_metrics(metrics)
    assert list(logged) == ["spearman_outcome", "ndcg_100", "score_mean", "test_users"]
    table = baseline_table(metrics)
    assert list(table.columns) == ["lightgbm", "linear", "page_rank"]
    assert list(table.index) == ["spearman_outcome", "ndcg_100"]
    assert table.loc["spearman_outcome", "page_rank"] == 0.5
    assert np.isnan(table.loc["ndcg_100", "page_rank"])
    assert baseline_table({"spearman_outcome": 0.8}).empty


def test_experiment_is_tagged_for_model_training_and_described():
    experiment_id = use_experiment(TrackingSettings())
    tags = mlflow.get_experiment(experiment_id).tags
    assert tags[EXPERIMENT_KIND_TAG] == CLASSIC_MODEL_DEVELOPMENT
    assert "Compare" in tags[NOTE_TAG]
    assert "metrics.`spearman_outcome`" in tags["mlflow.sharedViewState.headline"]
    mlflow.MlflowClient().set_experiment_tag(experiment_id, NOTE_TAG, "my own words")
    use_experiment(TrackingSettings())  # an edited description is kept
    assert mlflow.get_experiment(experiment_id).tags[NOTE_TAG] == "my own words"


def test_ui_links_open_on_training_runs():
    assert runs_url("3", "http://h:1") == (
        "http://h:1/#/experiments/3/runs?viewStateShareKey=headline&workflowType=machine_learning")
    url = compare_url("3", ["a", "b"], "http://h:1")
    assert url.startswith("http://h:1/#/compare-runs?runs=%5B%22a%22%2C%22b%22%5D&experiments=")
    assert url.endswith("workflowType=machine_learning")


def test_dvc_experiment_is_recorded_when_present():
    env = {"DVC_EXP_NAME": "roily-friz", "DVC_EXP_BASELINE_REV": "abc123", "HOME": "/root"}
    assert dvc_tags(env) == {"dvc_experiment": "roily-friz", "dvc_baseline_rev": "abc123"}
    assert dvc_tags({}) == {}
