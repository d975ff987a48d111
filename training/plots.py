"""Report figures of a trained model: pure functions from arrays to matplotlib Figures.

Used by the MLflow run (`training.run_report`) and by `notebooks/model_report.ipynb`. Figures are
built with the object-oriented API (`matplotlib.figure.Figure`, rendered by Agg on save), never
through pyplot: no global figure state, no display needed, nothing to close.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BAR_COLOURS = ("tab:blue", "tab:grey", "tab:orange", "tab:green", "tab:purple", "tab:brown")
TARGET_MEAN = 40.0
TARGET_P95 = 63.0


def _figure(width: float = 7.0, height: float = 4.5) -> tuple[Figure, object]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def shap_values(booster, features: pd.DataFrame) -> pd.DataFrame:
    """Per-feature contributions to the raw model output (LightGBM's exact TreeSHAP,
    `pred_contrib=True`); the last column, `bias`, is the expected value."""
    contrib = booster.predict(features, pred_contrib=True)
    return pd.DataFrame(contrib, columns=[*features.columns, "bias"], index=features.index)


def calibration_figure(raw: Sequence[float], scores: Sequence[float]) -> Figure:
    """The monotone map from the model's raw output to the 1-100 score, on the reference
    population, with the raw output's distribution underneath."""
    raw_a, scores_a = np.asarray(raw, dtype=float), np.asarray(scores, dtype=float)
    order = np.argsort(raw_a, kind="stable")
    figure, ax = _figure()
    ax.plot(raw_a[order], scores_a[order], color="tab:blue", lw=1.8, label="score = f(raw)")
    for level, text in ((TARGET_MEAN, "target mean 40"), (TARGET_P95, "target p95 63")):
        ax.axhline(level, color="grey", ls=":", lw=1)
        ax.annotate(text, (raw_a.min(), level), va="bottom", fontsize=8, color="grey")
    ax.set_xlabel("raw model output")
    ax.set_ylabel("score (1-100)")
    ax.set_ylim(0, 101)
    ax.set_title("Calibration: raw output to score")
    twin = ax.twinx()
    twin.hist(raw_a, bins=60, color="tab:orange", alpha=0.25)
    twin.set_yticks([])
    ax.legend(loc="upper left")
    return figure


def score_histogram_figure(
    scores: Sequence[float], target_scores: Sequence[float] | None = None
) -> Figure:
    """Scores of the reference population against the target scale (mean 40, p95 63), and
    against a target sample when one is given."""
    scores_a = np.asarray(scores, dtype=float)
    figure, ax = _figure()
    bins = np.arange(0.5, 101.5, 1.0)
    ax.hist(scores_a, bins=bins, density=True, color="tab:blue", alpha=0.6, label="scores")
    if target_scores is not None:
        ax.hist(np.asarray(target_scores, dtype=float), bins=bins, density=True,
                histtype="step", color="black", lw=1.2, label="target distribution")
    mean, p95 = float(scores_a.mean()), float(np.quantile(scores_a, 0.95))
    ax.axvline(TARGET_MEAN, color="black", ls=":", lw=1, label="target mean 40 / p95 63")
    ax.axvline(TARGET_P95, color="black", ls=":", lw=1)
    ax.axvline(mean, color="tab:red", lw=1, label=f"mean {mean:.1f} / p95 {p95:.1f}")
    ax.axvline(p95, color="tab:red", lw=1)
    ax.set_xlim(0, 101)
    ax.set_xlabel("score")
    ax.set_ylabel("share of users")
    ax.set_title(f"Score distribution (n={scores_a.size:,})")
    ax.legend(fontsize=8)
    return figure


def feature_importance_figure(
    names: Sequence[str], importance: Sequence[float], top: int = 25, kind: str = "gain"
) -> Figure:
    series = pd.Series(np.asarray(importance, dtype=float), index=list(names))
    series = series.sort_values(ascending=False).head(top)[::-1]
    total = float(np.sum(importance)) or 1.0
    figure, ax = _figure(7.5, max(3.0, 0.28 * len(series) + 1))
    ax.barh(series.index, series.values / total, color="tab:blue")
    ax.set_xlabel(f"share of total {kind}")
    ax.set_title(f"Feature importance (top {len(series)} by {kind})")
    ax.tick_params(axis="y", labelsize=7)
    return figure


def shap_summary_figure(contrib: pd.DataFrame, features: pd.DataFrame, top: int = 20) -> Figure:
    """Beeswarm-like summary: per top feature, each user's contribution, coloured by the
    feature's value (percentile rank within the sample; grey when missing)."""
    contrib = contrib.drop(columns="bias", errors="ignore")
    order = contrib.abs().mean().sort_values(ascending=False).head(top).index[::-1]
    figure, ax = _figure(8.0, max(3.5, 0.32 * len(order) + 1))
    rng = np.random.default_rng(0)
    scatter = None
    for row, name in enumerate(order):
        x = contrib[name].to_numpy(dtype=float)
        value = pd.Series(features[name].to_numpy(dtype=float))
        colour = value.rank(pct=True).to_numpy()
        y = row + rng.uniform(-0.3, 0.3, size=x.size)
        missing = np.isnan(colour)
        ax.scatter(x[missing], y[missing], s=4, color="lightgrey", alpha=0.6)
        scatter = ax.scatter(x[~missing], y[~missing], s=4, c=colour[~missing], cmap="coolwarm",
                             vmin=0, vmax=1, alpha=0.7)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(order)), list(order), fontsize=7)
    ax.set_xlabel("contribution to raw output (TreeSHAP)")
    ax.set_title("What drives the model (SHAP summary)")
    if scatter is not None:
        figure.colorbar(scatter, ax=ax, label="feature value (percentile)", shrink=0.6)
    return figure


def group_contributions(contrib: pd.DataFrame, group_of: Mapping[str, str]) -> pd.DataFrame:
    """Sum feature contributions per group (network, family); features without a group go to
    'other'. The bias column is dropped."""
    contrib = contrib.drop(columns="bias", errors="ignore")
    groups = [group_of.get(name, "other") for name in contrib.columns]
    return contrib.T.groupby(groups, sort=True).sum().T


def contribution_figure(points: pd.DataFrame, title: str, unit: str = "points") -> Figure:
    """Distribution of per-group contributions across users (one box per group), groups in
    order of mean absolute contribution. NaN means the user has no such group (a network not
    linked): each box is drawn over the users who have it, their count beside its name."""
    order = points.abs().mean().sort_values(ascending=True).index
    columns = [points[c].dropna().to_numpy(dtype=float) for c in order]
    labels = [f"{c} (n={len(v):,})" for c, v in zip(order, columns, strict=True)]
    figure, ax = _figure(7.5, max(3.0, 0.4 * len(order) + 1))
    ax.boxplot([v if len(v) else np.zeros(1) for v in columns], vert=False, showfliers=False,
               tick_labels=labels)
    ax.scatter(points[order].mean().to_numpy(), range(1, len(order) + 1), marker="D", s=14,
               color="tab:red", zorder=3, label="mean")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel(f"contribution ({unit})")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return figure


def baseline_figure(table: pd.DataFrame) -> Figure:
    """The model against its baselines: one group of bars per metric (rows of `table`), one bar
    per model (columns), the value written on each bar."""
    metrics, models = list(table.index), list(table.columns)
    width = 0.8 / max(len(models), 1)
    figure, ax = _figure(8.0, 4.5)
    x = np.arange(len(metrics))
    for k, model in enumerate(models):
        values = table[model].to_numpy(dtype=float)
        bars = ax.bar(x + (k - (len(models) - 1) / 2) * width, values, width, label=model,
                      color=BAR_COLOURS[k % len(BAR_COLOURS)], alpha=1.0 if k == 0 else 0.6)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, rotation=90, padding=2)
    ax.set_xticks(x, metrics)
    finite = table.to_numpy(dtype=float)
    low = float(np.nanmin(finite)) if np.isfinite(finite).any() else 0.0
    ax.set_ylim(max(0.0, low - 0.1), 1.08)
    ax.set_ylabel("test split (higher is better)")
    ax.set_title("The model against its baselines")
    ax.legend(fontsize=8, ncols=len(models), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    return figure
