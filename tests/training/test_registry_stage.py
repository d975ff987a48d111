"""The register stage with real boosters on a real store: the first model becomes champion, a
better and stable one replaces it, a worse one or one that moves scores stays challenger."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from training_synth import features_frame, outcome, tiny_bundle

from influence.params import RegisterParams
from training import registry
from training.metrics import ranking_metrics
from training.register_stage import gate_rules, register, write_report
from training.tracking import RunInputs, TrackingSettings

REFERENCE = features_frame(1_000, seed=5)
TEST = features_frame(2_000, seed=6)
TEST_OUTCOME = outcome(TEST, 6)


def _metrics(bundle, test=(TEST, TEST_OUTCOME)) -> dict[str, float]:
    frame, y = test
    scores = bundle.score(frame)["score"].to_numpy()
    return ranking_metrics(scores, y, np.log1p(y), n_pairs=20_000)


def _register(bundle, tmp_path):
    data = tmp_path / "features.parquet"
    if not data.exists():
        TEST.write_parquet(data)
    inputs = RunInputs(bundle=bundle, metrics=_metrics(bundle), params={"register": {}},
                       data_paths=(data,), reference=REFERENCE, shap_sample=200)
    return register(inputs, gate_rules(RegisterParams()), TrackingSettings(),
                    champion_metrics=_metrics, test_data=(TEST, TEST_OUTCOME))


@pytest.fixture(scope="module")
def bundles():
    base = tiny_bundle(n=1_500, seed=0, trees=30)
    better = tiny_bundle(n=1_500, seed=0, trees=60)
    # the same ranking (metrics equal) on a scale shifted by 3 points: unstable
    shifted = replace(better, calibrator=replace(better.calibrator, a=better.calibrator.a + 3.0),
                      version="shifted")
    weak = tiny_bundle(n=1_500, seed=0, trees=3)
    return {"base": base, "better": better, "shifted": shifted, "weak": weak}


def test_gate_on_real_models(bundles, tmp_path):
    first = _register(bundles["base"], tmp_path)
    assert (first.version, first.alias, first.previous_champion) == ("1", "champion", None)

    better = _register(bundles["better"], tmp_path)
    assert better.alias == "champion", better.decision.reasons
    assert better.decision.metric_deltas["spearman_outcome"] > 0
    assert better.decision.stability.median_abs_delta <= 1.0

    shifted = _register(bundles["shifted"], tmp_path)
    assert shifted.alias == "challenger"
    assert [r for r in shifted.decision.reasons if r.startswith("stability")]
    assert not [r for r in shifted.decision.reasons if not r.startswith("stability")]

    weak = _register(bundles["weak"], tmp_path)
    assert weak.alias == "challenger"
    assert any(r.startswith("spearman_outcome") for r in weak.decision.reasons)

    client = registry._client()
    assert str(registry.version_by_alias(client, "champion").version) == better.version
    assert str(registry.version_by_alias(client, "challenger").version) == weak.version
    assert registry.load_champion().version == bundles["better"].version

    # the verdicts in plain words: on each version and on the run that made it
    described = {v: client.get_model_version(registry.MODEL_NAME, v).description
                 for v in ("1", "2", "3", "4")}
    assert described["1"].startswith("Version 1 became **champion**: no champion yet")
    assert described["2"].startswith("Version 2 became **champion**, replacing version 1")
    assert "spearman_outcome +" in described["2"] and "median of" in described["2"]
    assert described["3"].startswith("Version 3 stays **challenger** (version 2 stays champion)")
    assert "stability: median" in described["3"] and "influence promote --version 3" in described[
        "3"]
    assert "spearman_outcome: " in described["4"] and "worse than the champion" in described["4"]
    note = client.get_run(weak.run.run_id).data.tags["mlflow.note.content"]
    assert note.startswith(f"**{weak.run.run_name}: influence-score version 4, challenger**")
    assert "Version 4 stays **challenger**" in note and "| spearman_outcome |" in note
    assert client.get_run(weak.run.run_id).data.tags["gate"] == "failed"

    report = write_report(weak, tmp_path / "reports" / "registry.json").read_text()
    assert '"alias": "challenger"' in report and '"previous_champion": "2"' in report


def test_models_of_dvc_experiments_stay_challenger(bundles, tmp_path, monkeypatch):
    first = _register(bundles["base"], tmp_path)
    monkeypatch.setenv("DVC_EXP_NAME", "quick-fish")
    experiment = _register(bundles["better"], tmp_path)
    assert experiment.alias == "challenger"
    assert "quick-fish" in experiment.decision.reasons[-1]
    assert str(registry.version_by_alias(registry._client(), "champion").version) == first.version
    registry.promote(experiment.version)
    assert registry.load_champion().version == bundles["better"].version
    description = registry._client().get_model_version(
        registry.MODEL_NAME, experiment.version).description
    assert "held as challenger: made by DVC experiment 'quick-fish'" in description
    assert description.endswith(f"replacing version {first.version}.")
    assert "Made champion on purpose by `influence promote`" in description
