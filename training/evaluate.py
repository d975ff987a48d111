"""Evaluation: the model against its baselines on the test split, plus stability.

The only module of `training` that reads the synthetic world's hidden truth (latent influence,
for `spearman_latent`); nothing it reads flows back into training.

Metrics, all on the test split (the latest as-of dates; averaged over dates when several):
`spearman_outcome`, `pairwise_accuracy`, `ndcg_100` (gain = the outcome label) and
`spearman_latent`, for the model (no prefix) and each baseline (`baseline_followers_`,
`baseline_linear_`, `baseline_pagerank_`, see `training.baselines`), all fitted on the same
training dates; `score_mean`, `score_p95`, `score_max` of the model's scores on the test rows;
`stability_median_abs_delta` / `stability_p99_abs_delta`: how far the test users' scores move
when the same data trains a model with `train.stability_seed`; `user_disjoint_*`: the model
metrics when the test users were never seen in training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from influence.params import Params
from training.baselines import LinearBaseline, followers_baseline, pagerank_baseline
from training.bundle import ModelBundle
from training.dataset import LABEL, Split, time_split, user_disjoint_split
from training.metrics import ranking_metrics, score_movement
from training.train import FeatureSet, TrainingData, matrix, train_model, transform_label

METRICS = ("spearman_outcome", "spearman_latent", "pairwise_accuracy", "ndcg_100")
BASELINES = ("followers", "linear", "pagerank")
FOLLOWERS_FEATURE = "all__log_followers_total"
PAGERANK_FEATURE = "all__log_cross_network_pagerank"


# --- truth ------------------------------------------------------------------------------------


def latent_influence(truth_dir: Path | str | None, keys: pl.DataFrame) -> np.ndarray:
    """Latent influence of each (user_id, as_of) in `keys`, as of that date (the truth's last
    weekly value on or before it); NaN when there is no truth."""
    path = Path(truth_dir) / "influence.parquet" if truth_dir is not None else None
    if path is None or not path.exists():
        return np.full(keys.height, np.nan)
    truth = (
        pl.read_parquet(path)
        .select(pl.col("user_id").cast(pl.String), pl.col("date"), "latent_influence")
        .sort("date")
    )
    probe = keys.select("user_id", "as_of").with_row_index("__row").sort("as_of")
    # both sides are sorted by date globally, hence within each user too
    joined = probe.join_asof(
        truth,
        left_on="as_of",
        right_on="date",
        by="user_id",
        strategy="backward",
        check_sortedness=False,
    ).sort("__row")
    return joined.get_column("latent_influence").cast(pl.Float64).fill_null(np.nan).to_numpy()


# --- metrics over dates -----------------------------------------------------------------------


def metrics_by_date(
    rows: pl.DataFrame, score: np.ndarray, latent: np.ndarray, params: Params
) -> dict[str, float]:
    """The four ranking metrics per as-of date, averaged over dates."""
    e = params.evaluate
    dates = rows.get_column("as_of").to_numpy()
    outcome = rows.get_column(LABEL).to_numpy()
    per_date = []
    for d in np.unique(dates):
        mask = dates == d
        per_date.append(
            ranking_metrics(
                score[mask], outcome[mask], latent[mask], n_pairs=e.pairs, seed=e.seed, k=e.ndcg_k
            )
        )
    return {name: float(np.mean([m[name] for m in per_date])) for name in per_date[0]}


# --- baselines --------------------------------------------------------------------------------


def baseline_scores(
    split: Split, names: tuple[str, ...], params: Params
) -> dict[str, np.ndarray]:
    """Each baseline fitted on the training rows, scored on the test rows."""
    t = params.train
    y = transform_label(split.train.get_column(LABEL).to_numpy(), t.label_transform, t.label_scale)
    out = {}
    for name, columns, make in (
        ("followers", [FOLLOWERS_FEATURE], followers_baseline),
        ("pagerank", [PAGERANK_FEATURE], pagerank_baseline),
        ("linear", list(names), lambda cols: LinearBaseline(cols)),
    ):
        model = make(columns).fit(matrix(split.train, columns), y)
        out[name] = model.predict(matrix(split.test, columns))
    return out


# --- the stage --------------------------------------------------------------------------------

Retrain = Callable[..., ModelBundle]


def evaluate_model(
    bundle: ModelBundle,
    data: TrainingData,
    params: Params,
    *,
    truth_dir: Path | str | None = None,
    stability: bool = True,
    user_disjoint: bool = True,
    retrain: Retrain = train_model,
) -> dict[str, Any]:
    """The metrics dict of `reports/metrics.json` (see the module docstring). `retrain` is
    called (with the bundle's feature set and split) for the stability and user-disjoint runs."""
    t = params.train
    split = time_split(data.rows, t.validation_dates, t.test_dates)
    test = split.test
    latent = latent_influence(truth_dir, test)
    scored = bundle.score(test)
    score = scored.get_column("score").to_numpy()

    metrics: dict[str, Any] = metrics_by_date(test, score, latent, params)
    for name, baseline in baseline_scores(split, bundle.feature_names, params).items():
        for key, value in metrics_by_date(test, baseline, latent, params).items():
            metrics[f"baseline_{name}_{key}"] = value
    metrics.update(
        {
            "score_mean": float(score.mean()),
            "score_p95": float(np.quantile(score, 0.95)),
            "score_max": float(score.max()),
            "score_min": float(score.min()),
            "score_share_90_plus": float((score >= 90).mean()),
            "provisional_share": float(scored.get_column("provisional").mean()),
            "test_rows": test.height,
            "test_users": test.get_column("user_id").n_unique(),
        }
    )
    features = FeatureSet(bundle.feature_names, bundle.catalog)
    if stability:
        other = retrain(data, params, seed=t.stability_seed, features=features, split=split)
        metrics.update(_movement(bundle, other, test))
    if user_disjoint:
        disjoint = user_disjoint_split(split, t.user_disjoint_share, t.seed)
        held_out = retrain(data, params, features=features, split=disjoint)
        held_score = held_out.score(disjoint.test).get_column("score").to_numpy()
        held_latent = latent_influence(truth_dir, disjoint.test)
        for key, value in metrics_by_date(disjoint.test, held_score, held_latent, params).items():
            metrics[f"user_disjoint_{key}"] = value
        metrics["user_disjoint_test_users"] = disjoint.test.get_column("user_id").n_unique()
    metrics["beats_all_baselines"] = int(beats_baselines(metrics))
    return metrics


def _movement(bundle: ModelBundle, other: ModelBundle, rows: pl.DataFrame) -> dict[str, float]:
    before = bundle.score(rows).get_column("score").to_numpy()
    after = other.score(rows).get_column("score").to_numpy()
    return score_movement(before, after)


def beats_baselines(metrics: dict[str, Any]) -> bool:
    """The model is strictly better than every baseline on every metric it has."""
    return all(
        metrics[m] > metrics[f"baseline_{b}_{m}"]
        for m in METRICS
        for b in BASELINES
        if m in metrics and f"baseline_{b}_{m}" in metrics and not np.isnan(metrics[m])
    )

