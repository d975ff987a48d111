"""The baselines the model must beat, each fitted on the model's training rows.

- followers: the user's follower count summed over linked networks (nothing to fit);
- linear: a log-linear model on the same features (signed log1p, median imputation with missing
  indicators, standardisation, ridge) predicting the same transformed label;
- pagerank: the cross-network PageRank of the engagement graph alone (Tweepcred style).

Each baseline is a `Baseline`: `fit(features, label)` then `predict(features)`; higher = more
influential. Features are numpy matrices in the columns named at construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler


def signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass
class SumBaseline:
    """A fixed score: the sum of some columns (unknown = 0)."""

    columns: Sequence[str]

    def fit(self, x: np.ndarray, y: np.ndarray) -> SumBaseline:
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.nansum(x, axis=1) if x.size else np.zeros(len(x))


@dataclass
class LinearBaseline:
    columns: Sequence[str]
    alpha: float = 1.0
    model: object = field(default=None, repr=False)

    def fit(self, x: np.ndarray, y: np.ndarray) -> LinearBaseline:
        keep = ~np.all(np.isnan(x), axis=0)
        self._keep = keep
        self.model = make_pipeline(
            FunctionTransformer(signed_log1p),
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            Ridge(alpha=self.alpha),
        ).fit(x[:, keep], y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x[:, self._keep])


def followers_baseline(columns: Sequence[str]) -> SumBaseline:
    if not columns:
        raise ValueError("no follower-count feature in the catalog")
    return SumBaseline(columns)


def pagerank_baseline(columns: Sequence[str]) -> SumBaseline:
    """Cross-network PageRank is the same on every network row; the first column suffices."""
    if not columns:
        raise ValueError("no cross-network PageRank feature in the catalog")
    return SumBaseline(columns[:1])
