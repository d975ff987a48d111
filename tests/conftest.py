"""Hermetic test defaults: no telemetry, MLflow and BentoML homes and the compiled-trees cache
under a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _key, _value in {
    "BENTOML_DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
}.items():
    os.environ.setdefault(_key, _value)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PEERINDEX_CSV = SHARED_DATA / "twitter_profiles_peerindex.csv"


@pytest.fixture(scope="session")
def _compiled_trees_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of compiled trees for the session: a model is compiled once, not per test."""
    return tmp_path_factory.mktemp("compiled-trees")


@pytest.fixture(autouse=True)
def _hermetic_homes(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, _compiled_trees_dir
):
    home = tmp_path_factory.mktemp("homes")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    monkeypatch.setenv("BENTOML_HOME", str(home / "bentoml"))
    monkeypatch.setenv("INFLUENCE_COMPILED_DIR", str(_compiled_trees_dir))
    yield


@pytest.fixture
def peerindex_csv() -> Path:
    if not PEERINDEX_CSV.exists():
        pytest.skip(f"real Twitter sample not found at {PEERINDEX_CSV} (../shared absent)")
    return PEERINDEX_CSV
