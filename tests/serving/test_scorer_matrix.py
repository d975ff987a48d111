"""The serving path hands featurize's matrix to the bundle; the batch path its frame. Same
numbers, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from features.featurize import featurize_matrix
from features.snapshot import snapshots_to_arrays
from serving.samples import random_snapshots
from serving.scorer import BULK_ROWS, Scorer, load_scorer, model_windows
from serving.settings import ServingSettings
from training.bundle import ModelBundle


@pytest.fixture(scope="module")
def bundle(bundle_dir) -> ModelBundle:
    return ModelBundle.load(bundle_dir)


def test_matrix_and_frame_score_identically(bundle):
    windows = model_windows(bundle)
    matrix = featurize_matrix(snapshots_to_arrays(random_snapshots(300, seed=21), windows), windows)
    assert bundle.score(matrix).equals(bundle.score(matrix.to_frame()))
    by_matrix, by_frame = bundle.explain(matrix), bundle.explain(matrix.to_frame())
    assert by_matrix == by_frame


def test_results_follow_the_input_order(bundle):
    snapshots = random_snapshots(50, seed=22)
    scorer = Scorer(bundle, model_windows(bundle))
    together = [r.score for r in scorer.score(snapshots, explain=False)]
    alone = [scorer.score([s], explain=False)[0].score for s in snapshots]
    assert together == pytest.approx(alone, abs=1e-9)


def test_bulk_rows_on_more_threads_score_bit_for_bit_as_on_one(bundle):
    snapshots = random_snapshots(BULK_ROWS + 44, seed=23)
    scorer = Scorer(bundle, model_windows(bundle))
    rows = scorer.score_rows(snapshots)
    one = bundle.score_columns(scorer.features(snapshots), num_threads=1)
    assert [r["score"] for r in rows] == one["score"].tolist()
    assert [r["percentile"] for r in rows] == one["percentile"].tolist()
    assert [r["user_id"] for r in rows] == [s.user_id for s in snapshots]


def test_a_score_out_of_range_fails_the_request_rather_than_reaching_a_client(bundle, monkeypatch):
    scorer = Scorer(bundle, model_windows(bundle))
    columns = bundle.score_columns
    monkeypatch.setattr(type(bundle), "score_columns",
                        lambda self, *a: {**columns(*a), "score": np.array([100.5])})
    with pytest.raises(RuntimeError, match="outside 1-100"):
        scorer.score_rows(random_snapshots(1, seed=24))


def test_the_service_scores_with_compiled_trees_and_the_same_numbers(bundle_dir, monkeypatch):
    monkeypatch.setenv("INFLUENCE_BUNDLE_DIR", str(bundle_dir))
    compiled = load_scorer(ServingSettings())
    assert compiled.bundle.compiled_trees is not None
    monkeypatch.setenv("INFLUENCE_COMPILED_TREES", "false")
    lightgbm = load_scorer(ServingSettings())
    assert lightgbm.bundle.compiled_trees is None
    snapshots = random_snapshots(300, seed=25)
    assert compiled.score_rows(snapshots) == lightgbm.score_rows(snapshots)
    assert compiled.score(snapshots[:3], explain=True) == lightgbm.score(snapshots[:3], explain=True)
