"""A training run logs every param, metric and artifact to a real SQLite store (under tmp_path,
set by tests/conftest.py): one run per model, metrics once, baselines as a table and a chart, a
description in words, plots grouped as the API explains; the logged model round-trips through
the registry bit for bit."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
import yaml
from mlflow import MlflowClient
from training_synth import features_frame, tiny_bundle

from training import registry
from training.lineage import flatten_params
from training.run_report import METRIC_NAMES, explanation_points, run_metrics
from training.tracking import RunInputs, log_training_run
from training.tracking_store import NOTE_TAG, TrackingSettings

PARAMS_YAML = Path(__file__).resolve().parents[2] / "params.yaml"

METRICS = {
    **{name: 0.7 for name in METRIC_NAMES},
    **{f"{prefix}{name}": 0.5 for prefix in ("baseline_followers_", "baseline_linear_",
                                             "baseline_pagerank_") for name in METRIC_NAMES},
    "score_mean": 40.0, "score_p95": 63.0, "score_max": 97.0,
    "stability_median_abs_delta": 0.3, "stability_p99_abs_delta": 2.1,
}
ARTIFACTS = {
    "plots/calibration_curve.png", "plots/score_histogram.png", "plots/feature_importance.png",
    "plots/shap_summary.png", "plots/network_contributions.png",
    "plots/family_contributions.png", "plots/mean_abs_shap.csv", "plots/network_points.csv",
    "plots/family_points.csv", "plots/calibration.csv", "plots/score_histogram.csv",
    "baselines/baselines.png", "baselines/baselines.csv",
    "catalog/signal_catalog.csv", "catalog/signal_catalog.json", "reports/metrics.json",
}


@pytest.fixture(scope="module")
def bundle():
    return tiny_bundle(n=1500, trees=30)


@pytest.fixture
def logged(bundle, tmp_path):
    data = tmp_path / "features"
    data.mkdir()
    frame = features_frame(800, seed=3)
    frame.write_parquet(data / "features.parquet")
    params = yaml.safe_load(PARAMS_YAML.read_text())
    inputs = RunInputs(bundle=bundle, metrics=METRICS, params=params, data_paths=(data,),
                       reference=frame, training_table=pl.scan_parquet(data / "features.parquet"),
                       population=features_frame(400, seed=4), shap_sample=300,
                       plots_dir=tmp_path / "plots")
    return log_training_run(inputs), params, frame


def _artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        out |= _artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def test_run_logs_every_param_metric_tag_and_artifact(logged, tmp_path):
    record, params, _ = logged
    client = MlflowClient()
    run = client.get_run(record.run_id)
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(
        Path(TrackingSettings().artifact_location().removeprefix("file://"))
    )  # the temp store's artifact folder, not the project's

    expected_params = flatten_params(params)
    assert {k: run.data.params[k] for k in expected_params} == expected_params
    assert len(run.data.params["data_fingerprint"]) == 64
    assert run.data.params["reference_fingerprint"] == "synthetic"

    # the model's metrics, once each, under the names of reports/metrics.json
    assert run.data.metrics == pytest.approx(run_metrics(METRICS))
    assert not [k for k in run.data.metrics if k.startswith("baseline_")]
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    assert run.data.tags["data_fingerprint"] == run.data.params["data_fingerprint"]

    assert ARTIFACTS <= _artifact_paths(client, record.run_id)
    written = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {Path(a).name for a in ARTIFACTS if a.startswith(("plots/", "baselines/"))} <= written

    # the baselines: one table (and its chart) with the model, under the model's metric names
    table = client.download_artifacts(record.run_id, "baselines/baselines.csv")
    rows = Path(table).read_text().splitlines()
    assert rows[0] == "metric,lightgbm,followers,linear,pagerank"
    assert rows[1] == "spearman_outcome,0.7,0.5,0.5,0.5"

    # lineage: the training table, with our digest and its source path
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == run.data.params["data_fingerprint"][:36]
    assert "features" in dataset_input.dataset.source
    assert "twitter__followers" in dataset_input.dataset.schema
    assert {t.key: t.value for t in dataset_input.tags}["rows"] == "800"

    # one run per model: no child runs
    children = mlflow.search_runs(
        experiment_ids=[record.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{record.run_id}'",
        output_format="list",
    )
    assert children == []

    # a description in words: headline metrics against the baselines, the data, the code
    note = run.data.tags[NOTE_TAG]
    assert "| spearman_outcome | **0.700** | 0.500 | 0.500 | 0.500 |" in note
    assert "800 training rows" in note and run.data.params["data_fingerprint"][:12] in note
    assert "median of 0.30 points" in note


def test_points_per_network_are_the_api_explanations(bundle, tmp_path):
    frame = features_frame(300, seed=8)
    networks, families = explanation_points(bundle, frame)
    explained = bundle.explain(frame.head(5))
    for i, e in enumerate(explained):
        row = networks.iloc[i].dropna().to_dict()
        assert row == pytest.approx(e.networks)
        assert families.iloc[i].dropna().to_dict() == pytest.approx(e.families)
    # users without Instagram have no Instagram points (NaN), never a share of someone else's
    no_instagram = frame.get_column("instagram__received_like__w30").is_null().to_numpy()
    assert networks.loc[no_instagram, "instagram"].isna().all()
    assert networks.loc[~no_instagram, "instagram"].notna().all()


def test_model_is_the_native_booster_with_calibrator_and_load_champion_round_trips(logged, bundle):
    record, _, frame = logged
    model = mlflow.get_logged_model(record.model_id)
    local = Path(mlflow.artifacts.download_artifacts(record.model_uri))
    names = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert {"MLmodel", "model.lgb", "extra_files/calibrator.json", "extra_files/bundle.json",
            "input_example.json", "requirements.txt"} <= names
    assert not any(n.endswith((".skops", ".pkl")) for n in names)  # no pickles, no skops
    assert "lightgbm" in (local / "requirements.txt").read_text()
    assert {m.key for m in model.metrics} >= set(METRIC_NAMES)

    info = mlflow.models.get_model_info(record.model_uri)
    assert info.signature.inputs.input_names() == list(bundle.feature_names)
    native = mlflow.lightgbm.load_model(record.model_uri)
    x = bundle.matrix(frame)
    assert np.array_equal(native.predict(x), bundle.booster.predict(x))

    # through the registry: load_champion gives back the same bundle, scores bit-identical
    client = registry._client()
    version = registry.register_version(client, record.model_uri, record.run_id)
    registry.apply_gate(client, version.version, registry.gate({}, None, None))

    loaded = registry.load_champion()
    frame = features_frame(2_000, seed=11)
    assert loaded.score(frame).equals(bundle.score(frame))
    assert loaded.version == bundle.version
    assert loaded.catalog == bundle.catalog and loaded.calibrator == bundle.calibrator
    explained = loaded.explain(frame.head(3))
    assert [e.to_dict() for e in explained] == [e.to_dict() for e in bundle.explain(frame.head(3))]
