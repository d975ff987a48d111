"""A small simulated world and a model trained on it, shared by the model tests of the session.

The world goes through the real pipeline (simulate -> features training set -> train_model), so
the behaviour tests judge the same code paths as the default model, only smaller and faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from influence.params import Params, load_params

PARAMS_FILE = Path(__file__).resolve().parents[2] / "params.yaml"


def small_params(**train_overrides) -> Params:
    """params.yaml with a world and a model small enough for a test session."""
    params = load_params(PARAMS_FILE)
    train = params.train.model_copy(
        update={
            "n_estimators": 250,
            "learning_rate": 0.1,
            "early_stopping_rounds": 30,
            "min_data_in_leaf": 20,
            "monotone_probes": 150,
            **train_overrides,
        }
    )
    features = params.features.model_copy(update={"n_as_of": 4})
    return params.model_copy(update={"train": train, "features": features})


@dataclass(frozen=True)
class SmallWorld:
    raw: Path
    truth: Path
    features: Path


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> SmallWorld:
    from features import stage
    from features.engine import make_engine
    from simulation.config import WorldConfig
    from simulation.world import write_world

    root = tmp_path_factory.mktemp("small-world")
    params = small_params()
    config = WorldConfig.from_params(params, users=800, days=120, seed=11, corrupt_share=0.0)
    write_world(config, root / "raw", root / "truth")
    stage.training_set(make_engine("polars"), root / "raw", root / "features", params)
    return SmallWorld(root / "raw", root / "truth", root / "features")


@pytest.fixture(scope="session")
def small_data(small_world: SmallWorld):
    from training.dataset import latest_population, read_snapshots, read_training_rows
    from training.train import TrainingData

    snapshots = read_snapshots(small_world.features)
    return TrainingData(
        rows=read_training_rows(small_world.features),
        snapshots=snapshots,
        reference=latest_population(snapshots),
    )


@pytest.fixture(scope="session")
def small_bundle(small_data):
    from training.train import train_model

    return train_model(small_data, small_params())
