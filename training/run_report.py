"""What a training run shows: its metrics, the model against its baselines, and its plots.

Pure functions from a bundle, its evaluation (`reports/metrics.json`) and feature frames to the
tables and matplotlib Figures that `training.tracking` logs to MLflow and writes for `dvc plots`.

Metric names are those of `reports/metrics.json`, so `dvc metrics show` and the MLflow UI speak
the same words. The run carries the model's metrics only; the baselines' (`baseline_<name>_<m>`
in the JSON) become one table and one bar chart (`baselines.csv`, `baselines.png`), so no metric
appears under two names and Compare Runs compares models with models.

Points per network and per family are taken from `ModelBundle.explain`, the explanation the API
answers with: the plots show what users are shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from training.bundle import ModelBundle

METRIC_NAMES: tuple[str, ...] = (
    "spearman_outcome",
    "spearman_latent",
    "pairwise_accuracy",
    "ndcg_100",
)
"""The headline (and gate) metrics, in the order they are shown."""
BASELINE_PREFIX = "baseline_"
MODEL_COLUMN = "lightgbm"


def run_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The model's numeric metrics (baselines apart), headline metrics first: what the run logs."""
    numeric = {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
        and not k.startswith(BASELINE_PREFIX)
    }
    first = {k: numeric.pop(k) for k in METRIC_NAMES if k in numeric}
    return {**first, **dict(sorted(numeric.items()))}


def baseline_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Rows: headline metrics; columns: the model, then each baseline found in `metrics`
    (`baseline_<name>_<metric>`). Empty when the evaluation has no baselines."""
    import pandas as pd

    columns: dict[str, dict[str, float]] = {MODEL_COLUMN: {}}
    for metric in METRIC_NAMES:
        if metric in metrics:
            columns[MODEL_COLUMN][metric] = float(metrics[metric])
        suffix = f"_{metric}"
        for key, value in metrics.items():
            if key.startswith(BASELINE_PREFIX) and key.endswith(suffix):
                name = key[len(BASELINE_PREFIX): -len(suffix)]
                columns.setdefault(name, {})[metric] = float(value)
    if len(columns) == 1:
        return pd.DataFrame()
    table = pd.DataFrame(columns).reindex([m for m in METRIC_NAMES if m in metrics])
    table.index.name = "metric"
    return table


def explanation_points(
    bundle: ModelBundle, features: pl.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points per network, points per family): one row per user of `features`, as
    `ModelBundle.explain` gives them to the API; NaN where a user has no such bucket (a network
    not linked)."""
    import pandas as pd

    explanations = bundle.explain(features, top_k=0)
    networks = pd.DataFrame([e.networks for e in explanations])
    families = pd.DataFrame([e.families for e in explanations])
    return networks, families


def report_figures(
    bundle: ModelBundle,
    reference: pl.DataFrame,
    population: pl.DataFrame | None = None,
    metrics: Mapping[str, Any] | None = None,
    shap_sample: int = 2_000,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """The run's plots (matplotlib Figures, named as they are logged) and the tables behind
    them that are worth keeping as CSV (`dvc plots` and the MLflow artifacts)."""
    import numpy as np
    import pandas as pd

    from training import plots

    raw = bundle.raw(reference)
    scores = bundle.calibrator.score(raw)
    shown = scores if population is None else bundle.score(population)["score"].to_numpy()
    names = list(bundle.feature_names)
    sample = reference.sample(min(shap_sample, reference.height), seed=seed, shuffle=True)
    x = pd.DataFrame(bundle.matrix(sample), columns=names)
    contrib = plots.shap_values(bundle.booster, x)
    networks, families = explanation_points(bundle, sample)
    figures = {
        "calibration_curve": plots.calibration_figure(raw, scores),
        "score_histogram": plots.score_histogram_figure(
            shown, target_scores=None if population is None else scores
        ),
        "feature_importance": plots.feature_importance_figure(
            names, bundle.booster.feature_importance("gain")
        ),
        "shap_summary": plots.shap_summary_figure(contrib, x),
        "network_contributions": plots.contribution_figure(
            networks, "Points per network (as the API explains scores)"
        ),
        "family_contributions": plots.contribution_figure(
            families, "Points per signal family (as the API explains scores)"
        ),
    }
    tables = {
        **plot_data(bundle, raw, shown),
        "mean_abs_shap": pd.Series(
            np.abs(contrib.drop(columns="bias")).mean(), name="mean_abs"
        ).sort_values(ascending=False).rename_axis("feature").reset_index(),
        "network_points": summary_of_points(networks, "network"),
        "family_points": summary_of_points(families, "family"),
    }
    comparison = baseline_table(metrics or {})
    if not comparison.empty:
        figures["baselines"] = plots.baseline_figure(comparison)
        tables["baselines"] = comparison.reset_index()
    return figures, tables


def summary_of_points(points: pd.DataFrame, name: str) -> pd.DataFrame:
    """Per bucket: users who have it, mean points and mean |points| (largest first)."""
    import pandas as pd

    summary = pd.DataFrame({
        "users": points.notna().sum(),
        "mean_points": points.mean(),
        "mean_abs_points": points.abs().mean(),
    }).sort_values("mean_abs_points", ascending=False)
    return summary.rename_axis(name).reset_index()


def plot_data(bundle: ModelBundle, raw, shown) -> dict[str, pd.DataFrame]:
    """The calibration curve and the score histogram as small tables: `raw` is the reference
    population's raw output, `shown` the scores drawn against it."""
    import numpy as np
    import pandas as pd

    raw = np.sort(np.asarray(raw, dtype=float))
    grid = np.quantile(raw, np.linspace(0, 1, 201))
    calibration = pd.DataFrame({"raw": grid, "score": bundle.calibrator.score(grid),
                                "reference_percentile": np.linspace(0, 100, 201)})
    edges = np.arange(0, 101, 2)
    ref_scores = bundle.calibrator.score(raw)
    histogram = pd.DataFrame({
        "score": edges[:-1] + 1,
        "share": np.histogram(shown, edges)[0] / max(len(shown), 1),
        "reference_share": np.histogram(ref_scores, edges)[0] / max(len(ref_scores), 1),
    })
    return {"calibration": calibration, "score_histogram": histogram}


def catalog_frame(bundle: ModelBundle) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([asdict(entry) for entry in bundle.catalog])


def write_plots(
    figures: Mapping[str, Any], tables: Mapping[str, pd.DataFrame], folder: Path
) -> Path:
    """PNGs and CSVs into `folder` (the register stage's `reports/plots`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, figure in figures.items():
        figure.savefig(folder / f"{name}.png", dpi=100)
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
    return folder
