"""The MLflow UI as a data scientist uses it, in a real headless Chromium.

Two models trained on the small world are registered in a test store the way the pipeline does
it: the first by `dvc repro` (it becomes champion), the second by an experiment like
`dvc exp run -n leaves63 -S train.num_leaves=63` (held as challenger). A real `mlflow server`
serves the store on loopback; the browser opens the links `influence runs` prints (the
experiment's runs, Compare Runs of the two, the registry) and checks what a person would: the run
names, the params that differ, a metric value, the champion alias, the verdict in words.
Screenshots go to `reports/ui/` (look at them: they are the comparison a person sees).

Skipped, with the reason, where Chromium is not installed (Debian package `chromium`;
`INFLUENCE_CHROMIUM` names another binary). CI installs it (`.ci/run`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import small_params
from mlflow_ui_kit import chromium_page, chromium_path, mlflow_server

from training.register_stage import Registered, gate_rules, register
from training.tracking import RunInputs
from training.tracking_store import TrackingSettings, compare_url, model_url, runs_url

pytestmark = [pytest.mark.browser, pytest.mark.training]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "ui"


@dataclass(frozen=True)
class TwoRuns:
    store: Path
    experiment_id: str
    first: Registered
    second: Registered
    first_metrics: dict
    second_metrics: dict


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium: install Debian's `chromium` package (apt-get install -y "
                    "chromium) or point INFLUENCE_CHROMIUM at a Chromium binary")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make setup)")
    return path


def _register(bundle, params, small_data, small_world) -> tuple[Registered, dict]:
    from training.dataset import time_split
    from training.evaluate import evaluate_model
    from training.train import default_featurize

    metrics = evaluate_model(bundle, small_data, params, truth_dir=small_world.truth,
                             stability=False, user_disjoint=False)
    test = time_split(small_data.rows, params.train.validation_dates, params.train.test_dates).test
    inputs = RunInputs(
        bundle=bundle, metrics=metrics, params=params.model_dump(mode="json", by_alias=True),
        data_paths=(small_world.features,),
        reference=default_featurize()(small_data.reference), population=test,
        training_table=small_data.rows, shap_sample=300,
    )
    return register(inputs, gate_rules(params.register_), TrackingSettings()), metrics


@pytest.fixture(scope="module")
def two_runs(chromium, tmp_path_factory, small_data, small_world, small_bundle) -> TwoRuns:
    from training.train import train_model

    store = tmp_path_factory.mktemp("mlflow-ui-store")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
        env.delenv("DVC_EXP_NAME", raising=False)
        first, first_metrics = _register(small_bundle, small_params(), small_data, small_world)
        env.setenv("DVC_EXP_NAME", "leaves63")  # as `dvc exp run -n leaves63` sets it
        params = small_params(num_leaves=63)
        second, second_metrics = _register(train_model(small_data, params), params, small_data,
                                           small_world)
    return TwoRuns(store, first.run.experiment_id, first, second, first_metrics, second_metrics)


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1500)  # charts and tables settle after their data arrives
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def test_mlflow_ui_compares_two_retrains_and_shows_the_champion(two_runs: TwoRuns, chromium):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # a busy 2-core machine: the grid may take a while
    first, second = two_runs.first, two_runs.second
    assert (first.alias, second.alias) == ("champion", "challenger")
    described = f"{two_runs.first_metrics['spearman_outcome']:.3f}"  # as run_notes writes it

    with mlflow_server(two_runs.store) as url, chromium_page(chromium) as page:
        # 1. the experiment opens on its training runs, one row per model, headline columns
        page.goto(runs_url(two_runs.experiment_id, url))
        expect(page).to_have_url(re.compile(r"/experiments/\d+/runs"))
        for run in (first.run, second.run):
            expect(page.get_by_text(run.run_name, exact=True).first).to_be_visible()
        expect(page.get_by_text("2 matching runs")).to_be_visible()
        assistant = page.get_by_role("button", name="Close", exact=True)
        if assistant.count():  # MLflow's assistant panel: a person closes it too
            assistant.first.click()
        expect(page.get_by_role("columnheader", name="spearman_outcome").first).to_be_visible()
        row = page.locator(f"[role=row][row-id='{first.run.run_id}']")  # pinned + scrolled parts
        full = repr(two_runs.first_metrics["spearman_outcome"])  # the table shows every digit
        expect(row.get_by_role("gridcell", name=full, exact=True).first).to_be_visible()
        expect(row.get_by_role("gridcell", name="31", exact=True).first).to_be_visible()
        shown = _shown(two_runs.first_metrics["spearman_outcome"])
        _shot(page, "1_runs")

        # 2. Compare Runs of the two retrains: the params that differ, the metrics, the plot
        page.goto(compare_url(two_runs.experiment_id, [second.run.run_id, first.run.run_id], url))
        expect(page.get_by_text("Comparing 2 Runs from 1 Experiment")).to_be_visible()
        plot = page.locator(".js-plotly-plot").first
        expect(plot).to_contain_text("train.num_leaves")
        expect(plot).to_contain_text("spearman_outcome")
        for value in (two_runs.first_metrics["spearman_outcome"], two_runs.second_metrics[
                "spearman_outcome"]):  # the axis spans the two runs: their values at its ends
            expect(plot).to_contain_text(f"{value:.5f}")
        for run in (first.run, second.run):
            expect(page.get_by_text(run.run_name, exact=True).first).to_be_visible()
        _shot(page, "2_compare_parallel_coordinates")
        page.get_by_role("switch", name="Parameters - Show diff only").click()
        page.get_by_role("switch", name="Metrics - Show diff only").click()
        leaves = page.get_by_role("row").filter(has_text="train.num_leaves")
        expect(leaves).to_contain_text("63")
        expect(leaves).to_contain_text("31")
        expect(page.get_by_role("row").filter(has_text="train.learning_rate")).to_have_count(0)
        expect(page.get_by_role("link", name="spearman_outcome", exact=True).last).to_be_attached()
        page.get_by_role("button", name="Parameters").evaluate(
            "e => e.scrollIntoView({block: 'start'})")
        _shot(page, "3_compare_params_and_metrics")

        # 3. the registry: version 1 is the champion, version 2 the challenger
        page.goto(model_url("influence-score", url))
        expect(page.get_by_role("row").filter(has_text="Version 1")).to_contain_text("champion")
        expect(page.get_by_role("row").filter(has_text="Version 2")).to_contain_text("challenger")
        _shot(page, "4_registry")

        # 4. why the experiment's model stayed challenger, in words, on its version
        page.goto(f"{url}/#/models/influence-score/versions/{second.version}"
                  "?workflowType=machine_learning")
        expect(page.get_by_text("Version 2 stays challenger").first).to_be_visible()
        expect(page.get_by_text("held as challenger").first).to_be_visible()
        _shot(page, "5_version_description")

        # 5. the champion's run: its description and the model against its baselines
        page.goto(f"{url}/#/experiments/{two_runs.experiment_id}/runs/{first.run.run_id}"
                  "?workflowType=machine_learning")
        expect(page.get_by_text("became champion").first).to_be_visible()
        more = page.get_by_text("Show more", exact=True)  # the description's table, unfolded
        if more.count():
            more.first.click()
        expect(page.get_by_text(described).first).to_be_visible()
        page.get_by_placeholder("Search metrics").fill("spearman_outcome")
        metric = page.get_by_role("row").filter(has_text="spearman_outcome").filter(has_text=shown)
        expect(metric.first).to_be_visible()
        _shot(page, "6_run_description")
        page.goto(f"{url}/#/experiments/{two_runs.experiment_id}/runs/{first.run.run_id}"
                  "/artifacts/baselines/baselines.png?workflowType=machine_learning")
        expect(page.get_by_text("baselines/baselines.png").first).to_be_visible()
        image = page.get_by_role("img", name="baselines/baselines.png")
        expect(image).to_be_visible()
        assert image.evaluate("i => i.naturalWidth") >= 400  # the chart itself, not a broken link
        _shot(page, "7_run_baselines")


def _shown(value: float) -> str:
    """A metric as the MLflow UI prints it (its `Utils.formatMetric`): 3 decimals under 10,
    2 under 100, trailing zeros dropped."""
    digits = 3 if abs(value) < 10 else 2 if abs(value) < 100 else 1
    return f"{round(value, digits):g}"
