"""notebooks/model_report.ipynb runs top to bottom on a small simulated world (nbclient, the
venv's `python3` kernel), with its inputs given by environment variables."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient
from typer.testing import CliRunner

from influence.cli import app

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "model_report.ipynb"

SMALL_WORLD = {"users": 300, "days": 150, "corrupt_share": 0.0}
LIGHT_TRAINING = {"n_estimators": 80, "early_stopping_rounds": 0, "monotone_probes": 40}


def _invoke(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def small_world_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """simulate -> features -> train -> evaluate, through the CLI, in a temp folder."""
    root = tmp_path_factory.mktemp("model-report")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["simulate"].update(SMALL_WORLD)
    params["train"].update(LIGHT_TRAINING)
    params["evaluate"]["pairs"] = 20_000
    for key in ("raw_dir", "truth_dir", "rejects_dir", "clean_dir", "features_dir", "reports_dir"):
        params["base"][key] = str(root / params["base"][key])
    params["calibrate"]["reference_path"] = str(root / "models" / "reference" / "snapshots.parquet")
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))

    common = ("--params", params_file)
    _invoke("simulate", *common)
    _invoke("features", "--raw", params["base"]["raw_dir"], "--training", *common)
    model_dir = root / "models" / "influence-score"
    _invoke("train", "--no-evaluate", "--model-dir", model_dir, *common)
    metrics = root / "reports" / "metrics.json"
    _invoke("evaluate", "--no-stability", "--model-dir", model_dir, "--metrics", metrics, *common)
    return {
        "params": params_file,
        "bundle": model_dir,
        "features": Path(params["base"]["features_dir"]) / "train.parquet",
        "reference": Path(params["calibrate"]["reference_path"]),
        "metrics": metrics,
    }


def test_model_report_runs_on_a_small_world(small_world_model, monkeypatch):
    env = {
        "INFLUENCE_PARAMS": small_world_model["params"],
        "INFLUENCE_REPORT_BUNDLE": small_world_model["bundle"],
        "INFLUENCE_REPORT_FEATURES": small_world_model["features"],
        "INFLUENCE_REPORT_REFERENCE": small_world_model["reference"],
        "INFLUENCE_REPORT_METRICS": small_world_model["metrics"],
        "INFLUENCE_REPORT_SAMPLE": "300",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()  # the kernel inherits the env; a failing cell raises CellExecutionError

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 6  # histogram, calibration, importance, SHAP, networks, families
    text = json.dumps([o.get("text", "") for o in outputs] + [
        o.get("data", {}).get("text/markdown", "") for o in outputs])
    assert "score" in text and "baseline" in text
    assert "not found" not in text  # the metrics table was drawn from metrics.json
