"""Evaluation pieces that need no trained model: truth lookup, baselines, the verdict."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from training.baselines import LinearBaseline, followers_baseline
from training.evaluate import BASELINES, METRICS, beats_baselines, latent_influence


def test_latent_influence_is_read_as_of_each_date(tmp_path):
    pl.DataFrame(
        {
            "user_id": [1, 1, 2],
            "date": [date(2026, 9, 1), date(2026, 9, 8), date(2026, 9, 1)],
            "latent_influence": [0.1, 0.2, -1.0],
        }
    ).write_parquet(tmp_path / "influence.parquet")
    keys = pl.DataFrame(
        {
            "user_id": ["1", "1", "2", "3", "1"],
            "as_of": [date(2026, 9, 7), date(2026, 9, 8), date(2026, 9, 30), date(2026, 9, 8), date(2026, 8, 1)],
        }
    )
    got = latent_influence(tmp_path, keys)
    np.testing.assert_array_equal(got[:3], [0.1, 0.2, -1.0])
    assert np.isnan(got[3]) and np.isnan(got[4])
    assert np.isnan(latent_influence(None, keys)).all()


def test_linear_baseline_handles_unknowns_and_empty_columns():
    rng = np.random.default_rng(0)
    x = rng.lognormal(0, 1, (500, 4))
    x[rng.random((500, 4)) < 0.3] = np.nan
    x[:, 3] = np.nan
    y = np.log1p(np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]))
    model = LinearBaseline(["a", "b", "c", "d"]).fit(x, y)
    assert np.isfinite(model.predict(x)).all()
    assert np.corrcoef(model.predict(x), y)[0, 1] > 0.5


def test_followers_baseline_is_the_follower_count():
    x = np.array([[3.0], [np.nan], [1.0]])
    np.testing.assert_array_equal(followers_baseline(["f"]).fit(x, None).predict(x), [3, 0, 1])


def test_the_model_must_beat_every_baseline_on_every_metric():
    metrics = {m: 0.9 for m in METRICS}
    metrics.update({f"baseline_{b}_{m}": 0.8 for b in BASELINES for m in METRICS})
    assert beats_baselines(metrics)
    metrics["baseline_pagerank_ndcg_100"] = 0.95
    assert not beats_baselines(metrics)
