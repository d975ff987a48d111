"""Without INFLUENCE_BUNDLE_DIR the service scores with the registry's champion
(`influence-score@champion`, loaded by training.registry.load_champion), and says so when there
is none. The store is the test's own (MLFLOW_TRACKING_URI under a temp dir, tests/conftest.py)."""

from __future__ import annotations

import pytest

from features.featurize import featurize_matrix
from features.snapshot import snapshots_to_arrays
from serving.samples import example_snapshot, random_snapshots, stand_in_bundle
from serving.scorer import load_scorer, model_windows
from serving.settings import ServingSettings
from training.registry import RegistryError, StoreError


def _register_as_champion(bundle) -> str:
    import mlflow

    from training import registry
    from training.tracking import TrackingSettings, log_model_bundle, use_experiment

    settings = TrackingSettings()
    use_experiment(settings)
    windows = model_windows(bundle)
    example = featurize_matrix(snapshots_to_arrays(random_snapshots(5), windows), windows)
    with mlflow.start_run() as run:
        info = log_model_bundle(bundle, example.to_frame().to_pandas())
    client = registry._client(settings)
    version = registry.register_version(client, info.model_uri, run.info.run_id)
    registry.crown(client, str(version.version), "gate")
    return str(version.version)


def test_the_champion_is_served_when_no_bundle_folder_is_given(monkeypatch):
    monkeypatch.delenv("INFLUENCE_BUNDLE_DIR", raising=False)
    bundle = stand_in_bundle(n=600, trees=10)
    _register_as_champion(bundle)
    scorer = load_scorer(ServingSettings())
    assert scorer.model_version == bundle.version
    (result,) = scorer.score([example_snapshot()], explain=True)
    assert 1 <= result.score <= 100 and result.networks


def test_no_champion_is_a_clear_start_up_error(monkeypatch):
    from training.tracking import TrackingSettings, use_experiment

    monkeypatch.delenv("INFLUENCE_BUNDLE_DIR", raising=False)
    use_experiment(TrackingSettings())  # a store, without any registered model
    with pytest.raises(RegistryError, match="champion"):
        load_scorer(ServingSettings())


def test_no_store_is_a_clear_start_up_error_and_none_is_created(monkeypatch, tmp_path):
    store = tmp_path / "nowhere" / "mlflow.db"
    monkeypatch.delenv("INFLUENCE_BUNDLE_DIR", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    with pytest.raises(StoreError, match=f"no MLflow store at {store}"):
        load_scorer(ServingSettings())
    assert not store.parent.exists()
