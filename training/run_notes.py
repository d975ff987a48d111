"""The descriptions a person reads in the MLflow UI, in plain words (Markdown).

- A run's description: its headline metrics against the baselines, the scale, the stability,
  the data it learned from, and the gate's verdict.
- A registered version's description: why it became champion or stayed challenger.

Pure functions from metrics, data facts and the gate's decision to text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from training.run_report import METRIC_NAMES, baseline_table

if TYPE_CHECKING:
    from training.registry import GateDecision, GateRules


@dataclass(frozen=True)
class DataFacts:
    """What a run learned from, as the description tells it."""

    training_rows: int
    data_fingerprint: str
    reference_fingerprint: str
    git_commit: str
    git_dirty: bool = False
    dvc_experiment: str | None = None


@dataclass(frozen=True)
class Outcome:
    """Where the registry put the run's model."""

    version: str
    alias: str
    previous_champion: str | None
    """The champion before this version was registered (None: there was none)."""


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """The headline metrics of the model and each baseline, as a Markdown table."""
    table = baseline_table(metrics)
    if table.empty:
        rows = [(m, metrics[m]) for m in METRIC_NAMES if m in metrics]
        return "\n".join(["| metric | model |", "| --- | ---: |",
                          *(f"| {m} | {_number(v)} |" for m, v in rows)])
    header = "| metric | " + " | ".join(table.columns) + " |"
    rule = "| --- |" + " ---: |" * len(table.columns)
    lines = [header, rule]
    for metric, row in table.iterrows():
        cells = [f"**{_number(row.iloc[0])}**", *(_number(v) for v in row.iloc[1:])]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scale_sentence(metrics: Mapping[str, Any]) -> str:
    parts = []
    if "score_mean" in metrics:
        parts.append(
            f"Scores on the test date: mean {_number(metrics['score_mean'], 1)}, "
            f"p95 {_number(metrics.get('score_p95'), 1)}, "
            f"max {_number(metrics.get('score_max'), 1)}."
        )
    if "stability_median_abs_delta" in metrics:
        parts.append(
            "A retrain with another seed moves scores by a median of "
            f"{_number(metrics['stability_median_abs_delta'], 2)} points "
            f"(99th percentile {_number(metrics.get('stability_p99_abs_delta'), 2)})."
        )
    if "user_disjoint_spearman_outcome" in metrics:
        parts.append(
            "On users never seen in training: spearman_outcome "
            f"{_number(metrics['user_disjoint_spearman_outcome'])}."
        )
    return " ".join(parts)


def data_sentence(data: DataFacts, metrics: Mapping[str, Any]) -> str:
    test = ""
    if "test_users" in metrics:
        test = f", tested on {int(metrics['test_users']):,} users of the latest as-of date"
    experiment = f"; DVC experiment `{data.dvc_experiment}`" if data.dvc_experiment else ""
    dirty = " with uncommitted changes" if data.git_dirty else ""
    return (
        f"Data: {data.training_rows:,} training rows{test} (fingerprint "
        f"`{data.data_fingerprint[:12]}`; reference population "
        f"`{data.reference_fingerprint.removeprefix('sha256:')[:12]}`)."
        f" Code: git `{data.git_commit[:10]}`{dirty}{experiment}."
    )


def comparison_sentence(
    decision: GateDecision, outcome: Outcome, rules: GateRules | None = None
) -> str:
    """How the new version compared with the champion it was measured against."""
    if outcome.previous_champion is None or not decision.metric_deltas:
        return ""
    deltas = ", ".join(f"{k} {v:+.4f}" for k, v in decision.metric_deltas.items())
    text = f"Against version {outcome.previous_champion}: {deltas}"
    if decision.stability is not None:
        bounds = (f" (allowed: {rules.stability_median_max} / {rules.stability_p99_max})"
                  if rules else "")
        text += (
            f"; the reference population's scores move by a median of "
            f"{decision.stability.median_abs_delta:.2f} points and a 99th percentile of "
            f"{decision.stability.p99_abs_delta:.2f}{bounds}"
        )
    return text + "."


def gate_sentence(
    decision: GateDecision, outcome: Outcome, rules: GateRules | None = None
) -> str:
    """The gate's verdict on one registered version, in plain words."""
    who = f"Version {outcome.version}"
    compared = comparison_sentence(decision, outcome, rules)
    if outcome.alias == "champion":
        replaced = (f", replacing version {outcome.previous_champion}"
                    if outcome.previous_champion else "")
        return " ".join(filter(None, [
            f"{who} became **champion**{replaced}: {'; '.join(decision.reasons)}.", compared]))
    still = (f"version {outcome.previous_champion} stays champion"
             if outcome.previous_champion else "there is no champion")
    reasons = "; ".join(decision.reasons)
    promote = ("" if "influence promote" in reasons else
               f" `influence promote --version {outcome.version}` makes it champion on purpose.")
    return " ".join(filter(None, [
        f"{who} stays **challenger** ({still}). Why: {reasons}.{promote}", compared]))


def run_description(
    metrics: Mapping[str, Any],
    data: DataFacts,
    verdict: str | None = None,
    title: str | None = None,
) -> str:
    """The run's description (Markdown)."""
    parts = [f"**{title}**" if title else "", verdict or "", metrics_table(metrics),
             scale_sentence(metrics), data_sentence(data, metrics),
             "Plots: `plots/`; the model against its baselines: `baselines/`."]
    return "\n\n".join(p for p in parts if p)


def version_description(
    decision: GateDecision,
    outcome: Outcome,
    metrics: Mapping[str, Any],
    run_name: str,
    rules: GateRules | None = None,
) -> str:
    """The registered version's description: the verdict first, then its headline metrics."""
    headline = ", ".join(f"{m} {_number(metrics[m])}" for m in METRIC_NAMES if m in metrics)
    return (
        f"{gate_sentence(decision, outcome, rules)}\n\n"
        f"Trained by run `{run_name}`; on the test split: {headline}."
    )
