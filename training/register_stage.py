"""The register stage: read, call, write. Track the trained bundle as an MLflow run, register it
as a new version of `influence-score` and let the gate decide its alias.

Steps (`register`):
1. log the run (`training.tracking.log_training_run`): params, data fingerprint, metrics, plots,
   catalog, the model;
2. register the logged model as a new version;
3. measure it against the current champion on the same data: the gate metrics of both on the
   current test split, and the scores of the reference population under both (stability);
4. `champion` if the gate passes (or there is no champion yet), else `challenger`;
5. the verdict in plain words: the run's description and the version's (`training.run_notes`);
6. write the decision to `reports/registry.json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training import registry
from training.lineage import dvc_tags
from training.registry import GateDecision, GateRules, Stability
from training.run_notes import Outcome, gate_sentence, run_description, version_description
from training.tracking import LoggedRun, RunInputs, log_training_run
from training.tracking_store import NOTE_TAG, TrackingSettings

if TYPE_CHECKING:
    import polars as pl

    from training.bundle import ModelBundle

ChampionMetrics = Callable[["ModelBundle", Any], Mapping[str, float]]


def gate_rules(params) -> GateRules:
    """From a `RegisterParams` section."""
    return GateRules(
        metric_names=tuple(params.gate_metrics),
        metric_tolerance=params.metric_tolerance,
        stability_median_max=params.stability_median_max,
        stability_p99_max=params.stability_p99_max,
        hold_experiments=params.hold_experiments,
    )


@dataclass(frozen=True)
class Registered:
    run: LoggedRun
    version: str
    alias: str
    decision: GateDecision
    previous_champion: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": registry.MODEL_NAME,
            "version": self.version,
            "alias": self.alias,
            "previous_champion": self.previous_champion,
            "run": self.run.as_dict(),
            "gate": self.decision.as_dict(),
        }


def stability_against(
    champion: ModelBundle, challenger: ModelBundle, reference: pl.DataFrame
) -> tuple[Stability | None, str | None]:
    """|Δ score| of the reference population; (None, why) when the champion cannot score
    today's features (a feature it needs is gone)."""
    try:
        before = champion.score(reference)["score"].to_numpy()
    except KeyError as error:
        return None, f"the champion cannot score the current features: {error}"
    after = challenger.score(reference)["score"].to_numpy()
    return registry.score_stability(before, after), None


def logged_metrics(settings: TrackingSettings, version: str) -> dict[str, float]:
    """The metrics a registered version's run logged (its own evaluation, on its own data)."""
    client = registry._client(settings)
    run_id = client.get_model_version(registry.MODEL_NAME, version).run_id
    return dict(client.get_run(run_id).data.metrics) if run_id else {}


def decide(
    bundle: ModelBundle,
    metrics: Mapping[str, float],
    reference: pl.DataFrame,
    rules: GateRules,
    settings: TrackingSettings,
    champion_metrics: ChampionMetrics | None = None,
    test_data: Any = None,
) -> GateDecision:
    """The gate decision for `bundle` against the current champion (if any)."""
    client = registry._client(settings)
    current = registry.version_by_alias(client, registry.CHAMPION)
    if current is None:
        return registry.gate(metrics, None, None, rules)
    champion = registry.load_bundle(registry.model_uri(registry.CHAMPION), settings)
    if champion_metrics is not None and test_data is not None:
        theirs = dict(champion_metrics(champion, test_data))
    else:
        theirs = logged_metrics(settings, str(current.version))
    stability, why = stability_against(champion, bundle, reference)
    decision = registry.gate(metrics, theirs, stability, rules)
    if why:
        decision = GateDecision(False, (*decision.reasons, why), decision.metric_deltas, None)
    return decision


def register(
    inputs: RunInputs,
    rules: GateRules,
    settings: TrackingSettings | None = None,
    champion_metrics: ChampionMetrics | None = None,
    test_data: Any = None,
) -> Registered:
    """Log, register, gate (see the module docstring). The decision is taken before the new
    version exists, so the champion it is measured against is the one before this run."""
    settings = settings or TrackingSettings()
    decision = decide(
        inputs.bundle, inputs.metrics, inputs.reference, rules, settings,
        champion_metrics, test_data,
    )
    experiment = dvc_tags(os.environ)
    if rules.hold_experiments:
        decision = registry.hold_experiment(decision, experiment.get("dvc_experiment"))

    run = log_training_run(inputs, settings)
    client = registry._client(settings)
    version = str(
        registry.register_version(
            client,
            run.model_uri,
            run.run_id,
            tags={"bundle_version": inputs.bundle.version,
                  "reference_fingerprint": inputs.bundle.reference_fingerprint,
                  **experiment},
        ).version
    )
    previous = registry.version_by_alias(client, registry.CHAMPION)
    alias = registry.apply_gate(client, version, decision)
    registered = Registered(
        run, version, alias, decision,
        None if previous is None else str(previous.version),
    )
    describe(client, registered, inputs.metrics, rules)
    return registered


def describe(client, registered: Registered, metrics: Mapping[str, Any], rules: GateRules) -> None:
    """The gate's verdict in plain words: on the run (its description and `gate`/`alias` tags)
    and as the registered version's description."""
    outcome = Outcome(registered.version, registered.alias, registered.previous_champion)
    run = registered.run
    verdict = gate_sentence(registered.decision, outcome, rules)
    title = f"{run.run_name}: influence-score version {registered.version}, {registered.alias}"
    if run.data is not None:
        client.set_tag(run.run_id, NOTE_TAG, run_description(metrics, run.data, verdict, title))
    client.set_tag(run.run_id, "gate", "passed" if registered.decision.passed else "failed")
    client.set_tag(run.run_id, "registered_as", f"{registry.MODEL_NAME}/{registered.version}")
    client.update_model_version(
        registry.MODEL_NAME, registered.version,
        description=version_description(registered.decision, outcome, metrics, run.run_name, rules),
    )


def write_report(registered: Registered, path: Path) -> Path:
    from influence.publish import write_json

    return write_json(path, registered.as_dict(), indent=1, default=str)


# --- files -> register -------------------------------------------------------------------------


@dataclass(frozen=True)
class StagePaths:
    bundle: Path
    metrics: Path
    train_table: Path
    """features + labels, one row per (user_id, as_of): `<features_dir>/train.parquet`."""
    reference: Path
    """Long snapshot table of the reference population (`calibrate.reference_path`)."""
    report: Path
    plots: Path
    truth: Path | None
    """The synthetic world's hidden truth (spearman_latent); None outside a simulation."""


def stage_paths(params, bundle: Path, metrics: Path) -> StagePaths:
    return StagePaths(
        bundle=bundle,
        metrics=metrics,
        train_table=params.base.features_dir / "train.parquet",
        # the copy `influence train` keeps beside the bundle: the population it was calibrated on
        reference=next(
            (p for p in (bundle / "reference.parquet", params.calibrate.reference_path) if p.exists()),
            params.calibrate.reference_path,
        ),
        report=params.register_.report,
        plots=params.base.reports_dir / "plots",
        truth=params.base.truth_dir if params.base.truth_dir.exists() else None,
    )


def test_rows(table: pl.LazyFrame, test_dates: int = 1) -> pl.DataFrame:
    """The rows of the latest `test_dates` as-of dates: the test split of the time split."""
    import polars as pl

    dates = table.select(pl.col("as_of").unique().sort()).collect().get_column("as_of")
    return table.filter(pl.col("as_of") >= dates[-test_dates]).collect()


def champion_on_test(params, truth_dir: Path | None) -> ChampionMetrics:
    """The gate metrics of a (champion) bundle on today's test split, computed the way
    `training.evaluate` computes the challenger's."""

    def metrics(bundle: ModelBundle, test: pl.DataFrame) -> dict[str, float]:
        from training.evaluate import latent_influence, metrics_by_date

        score = bundle.score(test).get_column("score").to_numpy()
        return metrics_by_date(test, score, latent_influence(truth_dir, test), params)

    return metrics


def run_register(
    paths: StagePaths,
    params,
    all_params: Mapping[str, Any],
    settings: TrackingSettings | None = None,
    champion_metrics: ChampionMetrics | None = None,
) -> Registered:
    """Read what train and evaluate wrote, register, write the report."""
    import polars as pl

    from features.featurize import featurize
    from training.bundle import ModelBundle

    bundle = ModelBundle.load(paths.bundle)
    metrics = json.loads(paths.metrics.read_text())
    table = pl.scan_parquet(paths.train_table)
    test = test_rows(table, params.train.test_dates)
    from influence.publish import publishing_dir

    reference = featurize(pl.read_parquet(paths.reference), tuple(params.features.windows))
    with publishing_dir(paths.plots) as plots:  # the plots replace the last ones only on success
        inputs = RunInputs(
            bundle=bundle,
            metrics=metrics,
            params=all_params,
            data_paths=tuple(p for p in (paths.train_table, paths.reference) if p.exists()),
            reference=reference,
            population=test,
            training_table=table,
            plots_dir=plots,
            shap_sample=params.register_.shap_sample,
            seed=params.base.seed,
        )
        champion_metrics = champion_metrics or champion_on_test(params, paths.truth)
        registered = register(
            inputs, gate_rules(params.register_), settings, champion_metrics, test_data=test
        )
    write_report(registered, paths.report)
    return registered
