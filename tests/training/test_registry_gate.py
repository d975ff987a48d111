"""The champion gate as a pure function, and the registry's alias moves on a real SQLite store."""

from __future__ import annotations

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest

from training import registry
from training.registry import CHALLENGER, CHAMPION, GateRules, Stability, gate, score_stability
from training.tracking import TrackingSettings, use_experiment

GOOD = {"spearman_outcome": 0.80, "spearman_latent": 0.70, "pairwise_accuracy": 0.75,
        "ndcg_100": 0.60}
STABLE = Stability(median_abs_delta=0.4, p99_abs_delta=3.0, n=1000)


# --- the gate, pure ----------------------------------------------------------------------------


def test_first_model_passes_without_a_champion():
    assert gate(GOOD, None, None).passed


def test_better_or_equal_within_tolerance_passes():
    slightly_worse = {k: v - 0.0019 for k, v in GOOD.items()}
    decision = gate(slightly_worse, GOOD, STABLE)
    assert decision.passed
    assert decision.metric_deltas["ndcg_100"] == pytest.approx(-0.0019)


@pytest.mark.parametrize("metric", sorted(GOOD))
def test_worse_on_any_metric_fails(metric):
    worse = {**GOOD, metric: GOOD[metric] - 0.0021}
    decision = gate(worse, GOOD, STABLE)
    assert not decision.passed
    assert any(reason.startswith(metric) for reason in decision.reasons)


@pytest.mark.parametrize(
    "stability", [Stability(1.01, 2.0, 10), Stability(0.5, 5.01, 10)], ids=["median", "p99"]
)
def test_unstable_fails_even_when_better(stability):
    better = {k: v + 0.05 for k, v in GOOD.items()}
    decision = gate(better, GOOD, stability)
    assert not decision.passed
    assert any(reason.startswith("stability") for reason in decision.reasons)


def test_missing_challenger_metric_or_stability_fails():
    partial = {k: v for k, v in GOOD.items() if k != "spearman_latent"}
    assert not gate(partial, GOOD, STABLE).passed
    assert not gate(GOOD, GOOD, None).passed


def test_rules_are_configurable():
    worse = {k: v - 0.01 for k, v in GOOD.items()}
    assert gate(worse, GOOD, STABLE, GateRules(metric_tolerance=0.02)).passed


def test_score_stability_measures_abs_deltas():
    before = np.arange(1000, dtype=float) % 100
    after = before.copy()
    after[:5] += 10.0  # 0.5% of users move 10 points: the median does not see it, p99 does
    s = score_stability(before, after)
    assert s.median_abs_delta == 0.0
    assert s.p99_abs_delta == pytest.approx(0.0)
    after[:20] -= 10.0
    assert score_stability(before, after).p99_abs_delta == pytest.approx(10.0)
    with pytest.raises(ValueError):
        score_stability(before, after[:-1])


# --- alias moves on a real store -----------------------------------------------------------------


def _log_tiny_model(seed: int) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    booster = lgb.train({"objective": "regression", "verbose": -1, "num_leaves": 4, "seed": seed},
                        lgb.Dataset(x, x["a"] + rng.normal(size=200)), num_boost_round=5)
    with mlflow.start_run() as run:
        info = mlflow.lightgbm.log_model(booster, name="model", pip_requirements=["lightgbm"])
    return info.model_uri, run.info.run_id


@pytest.fixture
def client():
    use_experiment(TrackingSettings())
    return registry._client()


def _register(client, seed: int) -> str:
    uri, run_id = _log_tiny_model(seed)
    return str(registry.register_version(client, uri, run_id).version)


def _alias(client, alias):
    version = registry.version_by_alias(client, alias)
    return None if version is None else str(version.version)


def test_gate_promote_and_rollback_move_the_aliases(client):
    v1 = _register(client, 1)
    assert registry.apply_gate(client, v1, gate(GOOD, None, None)) == CHAMPION

    v2 = _register(client, 2)
    better = {k: v + 0.01 for k, v in GOOD.items()}
    assert registry.apply_gate(client, v2, gate(better, GOOD, STABLE)) == CHAMPION
    assert _alias(client, CHAMPION) == v2

    v3 = _register(client, 3)
    worse = {k: v - 0.05 for k, v in GOOD.items()}
    assert registry.apply_gate(client, v3, gate(worse, better, STABLE)) == CHALLENGER
    assert (_alias(client, CHAMPION), _alias(client, CHALLENGER)) == (v2, v3)
    assert client.get_model_version(registry.MODEL_NAME, v3).tags["gate"] == "failed"

    assert registry.promote(v3) == v2  # on purpose, past the gate
    assert _alias(client, CHAMPION) == v3
    assert _alias(client, CHALLENGER) is None  # the challenger is the champion now

    assert registry.rollback() == v2
    assert _alias(client, CHAMPION) == v2
    tags = client.get_model_version(registry.MODEL_NAME, v3).tags
    assert tags["rolled_back_to"] == v2 and tags["crowned_by"] == "promote"

    assert registry.rollback() == v1  # the history is a stack: v2 had replaced v1
    assert _alias(client, CHAMPION) == v1
    with pytest.raises(registry.RegistryError, match="no previous champion"):
        registry.rollback()

    history = {row["version"]: row for row in registry.champion_history()}
    assert history[v1]["aliases"] == [CHAMPION]
    assert history[v2]["previous_champion"] == v1


def test_rollback_and_load_without_champion_fail_clearly(client):
    with pytest.raises(registry.RegistryError):
        registry.rollback()
    with pytest.raises(registry.RegistryError, match="no 'champion' alias"):
        registry.load_champion()


def test_promote_unknown_version_fails(client):
    _register(client, 1)
    with pytest.raises(Exception, match="(?i)not found|does not exist"):
        registry.promote(99)


def test_cli_promote_rollback_and_models(client):
    from typer.testing import CliRunner

    from influence.cli import app

    v1, v2 = _register(client, 1), _register(client, 2)
    runner = CliRunner()
    assert runner.invoke(app, ["promote", "--version", v1]).exit_code == 0
    result = runner.invoke(app, ["promote", "--version", v2])
    assert result.exit_code == 0 and f"was version {v1}" in result.output
    result = runner.invoke(app, ["rollback"])
    assert result.exit_code == 0 and f"version {v1} is champion again" in result.output
    assert _alias(client, CHAMPION) == v1
    assert runner.invoke(app, ["rollback"]).exit_code == 1  # v1 replaced nobody
    assert runner.invoke(app, ["promote", "--version", "42"]).exit_code == 1
    listing = runner.invoke(app, ["models"]).output
    assert f"v{v1}" in listing and "champion" in listing


def test_a_dvc_experiment_that_passes_stays_challenger():
    passed = gate(GOOD, GOOD, STABLE)
    held = registry.hold_experiment(passed, "quick-fish")
    assert passed.passed and not held.passed
    assert "quick-fish" in held.reasons[-1] and "influence promote" in held.reasons[-1]
    assert held.stability == STABLE and held.metric_deltas == passed.metric_deltas


def test_no_experiment_or_no_champion_is_not_held():
    passed = gate(GOOD, GOOD, STABLE)
    assert registry.hold_experiment(passed, None) == passed
    first = gate(GOOD, None, None)  # an empty registry: the first model serves, experiment or not
    assert registry.hold_experiment(first, "quick-fish").passed
