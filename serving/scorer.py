"""The scorer the service wraps: validated snapshots in, results out, through the one shared path

    SignalSnapshot -> features.snapshot.snapshots_to_arrays -> features.featurize.featurize_matrix
                   -> ModelBundle.score_columns / ModelBundle.explain

which is the batch pipeline's path from the long snapshot table on (the pipeline enters it with
`SnapshotArrays.from_frame`). Tips are what-ifs scored through the same path, in the same call as
the snapshot itself (`serving.tips`).

The model's scores come from its trees compiled to C (`training.compiled`, as the daily batch
path does: the same numbers, proven against LightGBM on a probe before use) unless
`INFLUENCE_COMPILED_TREES=false` or they can't be built (no C compiler: logged, LightGBM kept).
In the service, LightGBM's walk of 500 trees for one row was ~120 us with caches cold from the
rest of the request, the compiled trees' ~40 us; for 1,000 rows 31 ms against 11. Built once per
model (~10 s) and cached (`$INFLUENCE_COMPILED_DIR`); later starts load and check it in ~0.1 s.
Explanations (TreeSHAP) stay LightGBM's.

featurize returns one row per snapshot in input order (`snapshots_to_arrays` gives repeated or
missing user ids distinct keys), so results are matched to snapshots by position.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from features.featurize import DEFAULT_WINDOWS, FeatureMatrix, feature_names, featurize_matrix
from features.snapshot import SignalSnapshot, snapshots_to_arrays
from serving.contracts import Factor, ScoreResult, Tip
from serving.settings import ServingSettings
from serving.tips import WhatIf, best_tips, what_ifs
from training.bundle import ModelBundle

MAX_FACTORS = 5


@dataclass(frozen=True)
class Scorer:
    bundle: ModelBundle
    windows: tuple[int, ...]

    @property
    def model_version(self) -> str:
        return self.bundle.version

    def features(self, snapshots: Sequence[SignalSnapshot]) -> FeatureMatrix:
        """The model's features of the snapshots, one row each, in input order."""
        matrix = featurize_matrix(snapshots_to_arrays(snapshots, self.windows), self.windows)
        if len(matrix.user_id) != len(snapshots):
            raise RuntimeError(f"featurize gave {len(matrix.user_id)} rows for {len(snapshots)} snapshots")
        return matrix

    def score(self, snapshots: Sequence[SignalSnapshot], explain: bool) -> list[ScoreResult]:
        if not snapshots:
            return []
        if explain:
            return self._explained(snapshots)
        return [ScoreResult(**row) for row in self.score_rows(snapshots)]

    def score_rows(self, snapshots: Sequence[SignalSnapshot]) -> list[dict[str, Any]]:
        """Scores without explanations as plain dicts (user_id unless absent, score, percentile,
        provisional), the fields of a `ScoreResult`: what bulk answers are serialised from,
        without a model object per row. The ranges the contract promises are checked here,
        for all rows at once: a value outside them is our bug and fails the request (500)."""
        if not snapshots:
            return []
        features = self.features(snapshots)
        columns = self.bundle.score_columns(features, _threads(len(snapshots)))
        _check_ranges(columns)
        return [
            {"user_id": s.user_id, "score": score, "percentile": percentile, "provisional": flag}
            if s.user_id is not None
            else {"score": score, "percentile": percentile, "provisional": flag}
            for s, score, percentile, flag in zip(
                snapshots, *(columns[k].tolist() for k in ("score", "percentile", "provisional")),
                strict=True,
            )
        ]

    def _explained(self, snapshots: Sequence[SignalSnapshot]) -> list[ScoreResult]:
        """Scores, explanations and tips: the snapshots and all their what-ifs in one pass."""
        candidates = [what_ifs(s) for s in snapshots]
        every = [*snapshots, *(w.snapshot for ws in candidates for w in ws)]
        features = self.features(every)
        columns = self.bundle.score_columns(features, _threads(len(every)))
        explanations = self.bundle.explain(_head(features, len(snapshots)), top_k=MAX_FACTORS)
        values = columns["score"]
        offsets = np.cumsum([len(snapshots), *(len(ws) for ws in candidates)])
        results = []
        for i, (snapshot, row) in enumerate(zip(snapshots, _rows(columns))):
            tips = _tips(row["score"], candidates[i], values[offsets[i] : offsets[i + 1]])
            results.append(_result(snapshot, row, explanations[i], tips))
        return results


def _rows(columns: dict[str, np.ndarray]) -> list[dict]:
    """Per row, score, percentile and provisional as plain Python values."""
    keys = ("score", "percentile", "provisional")
    return [dict(zip(keys, values)) for values in zip(*(columns[k].tolist() for k in keys))]


def _check_ranges(columns: dict[str, np.ndarray]) -> None:
    score, percentile = columns["score"], columns["percentile"]
    if not (np.all((score >= 1) & (score <= 100)) and np.all((percentile >= 0) & (percentile <= 100))):
        raise RuntimeError("the model produced a score outside 1-100 or a percentile outside 0-100")


def _head(matrix: FeatureMatrix, n: int) -> FeatureMatrix:
    return FeatureMatrix(matrix.user_id[:n], matrix.as_of[:n], matrix.values[:n], matrix.names)


def _tips(score: float, candidates: Sequence[WhatIf], scores: np.ndarray) -> list[Tip]:
    return [
        Tip(action=g.action, text=g.text, gain=g.gain)
        for g in best_tips(score, candidates, scores.tolist())
    ]


def _result(snapshot: SignalSnapshot, row: dict, explanation=None, tips=None) -> ScoreResult:
    """A ScoreResult (validated: a score outside 1-100 would fail here, never reach a client)."""
    fields = {
        "user_id": snapshot.user_id,
        "score": row["score"],
        "percentile": row["percentile"],
        "provisional": row["provisional"],
    }
    if explanation is not None:
        fields |= {
            "baseline": explanation.baseline,
            "networks": explanation.networks,
            "families": explanation.families,
            "factors": [
                Factor(signal=f.name, meaning=f.meaning, network=f.network, family=f.family,
                       value=f.value, points=f.points)
                for f in explanation.factors
            ],
            "tips": tips or [],
        }
    return ScoreResult(**fields)


def load_bundle(settings: ServingSettings) -> ModelBundle:
    """The bundle in `INFLUENCE_BUNDLE_DIR` when set, else the registry's champion."""
    if settings.bundle_dir is not None:
        return ModelBundle.load(Path(settings.bundle_dir))
    from training.registry import load_champion

    return load_champion()


def model_windows(bundle: ModelBundle) -> tuple[int, ...]:
    """The windows the model's features are computed over, read from its catalog (the bundle
    does not record them otherwise; a model trained on 7/30/90-day windows has features of each)."""
    windows = tuple(sorted({c.window for c in bundle.catalog if c.window is not None}))
    return windows or DEFAULT_WINDOWS


SERVING_THREADS = 1
"""LightGBM threads per request: a request is one row (or a few hundred); OpenMP's start-up and
spin-waits cost more than a second core saves, and on a busy machine they stall the server."""
BULK_THREADS = max(1, min(4, len(os.sched_getaffinity(0))))
"""LightGBM threads for a big batch (at least BULK_ROWS rows) when it predicts (no compiled
trees): the predict of 1,000 users is ~30 ms on one core, which a second core halves (measured:
31 -> 16 ms here)."""
BULK_ROWS = 256


def _threads(rows: int) -> int:
    return BULK_THREADS if rows >= BULK_ROWS else SERVING_THREADS


def load_scorer(settings: ServingSettings) -> Scorer:
    bundle = load_bundle(settings)
    bundle = replace(bundle, metadata={**bundle.metadata, "num_threads": SERVING_THREADS})
    if settings.compiled_trees:
        bundle = bundle.with_compiled_trees()
    windows = model_windows(bundle)
    missing = set(bundle.feature_names) - set(feature_names(windows))
    if missing:
        raise ValueError(
            f"model {bundle.version} needs {len(missing)} feature(s) featurize does not make, "
            f"e.g. {sorted(missing)[:3]}"
        )
    return Scorer(bundle, windows)
