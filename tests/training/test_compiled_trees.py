"""The compiled trees of the batch path: the booster's numbers exactly, cached by model, used
only after proof, and LightGBM kept whenever they can't be used."""

from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from features.featurize import featurize_matrix
from features.snapshot import snapshots_to_arrays
from serving.samples import random_snapshots, stand_in_bundle
from training.compiled import LIGHTGBM_ZERO, compile_trees, model_key, probe_matrix

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler (gcc)")


@pytest.fixture(scope="module")
def bundle():
    return stand_in_bundle(n=1500, seed=3, trees=60, num_leaves=15)


@pytest.fixture(scope="module")
def features():
    return featurize_matrix(snapshots_to_arrays(random_snapshots(400, seed=4)))


def test_compiled_trees_predict_the_boosters_numbers_exactly(bundle, features, tmp_path):
    trees = compile_trees(bundle.booster, tmp_path)
    assert trees is not None and trees.compile_seconds > 0
    x = bundle.matrix(features)
    assert np.array_equal(trees.predict(x), bundle.booster.predict(x, num_threads=1))
    # the probe: split thresholds exactly and either side, NaN, zero, negatives, huge values
    probe = probe_matrix(bundle.booster, rows=2000, seed=7)
    assert np.array_equal(trees.predict(probe), bundle.booster.predict(probe, num_threads=1))
    # LightGBM reads |value| <= 1e-35 as zero; so do the compiled trees
    tiny = probe.copy()
    tiny[::3] = np.where(np.isnan(tiny[::3]), np.nan, LIGHTGBM_ZERO * np.sign(tiny[::3] - 0.5))
    assert np.array_equal(trees.predict(tiny), bundle.booster.predict(tiny, num_threads=1))
    assert trees.predict(x[:0]).shape == (0,)


def test_the_bundle_scores_the_same_with_compiled_trees(bundle, features, tmp_path):
    compiled = bundle.with_compiled_trees(tmp_path)
    assert compiled.compiled_trees is not None and bundle.compiled_trees is None
    assert compiled.score(features).equals(bundle.score(features))


def test_a_model_is_compiled_once_and_then_loaded_from_the_cache(bundle, tmp_path):
    first = compile_trees(bundle.booster, tmp_path)
    again = compile_trees(bundle.booster, tmp_path)
    assert again.library == first.library and again.compile_seconds == 0
    assert first.library.name == f"trees-{model_key(bundle.booster)}.so"
    assert [p.name for p in tmp_path.iterdir()] == [first.library.name]  # no half-built leftovers
    other = stand_in_bundle(n=1500, seed=5, trees=20, num_leaves=7)
    assert model_key(other.booster) != model_key(bundle.booster)


def test_predict_is_thread_safe(bundle, features, tmp_path):
    trees = compile_trees(bundle.booster, tmp_path)
    x = bundle.matrix(features)
    parts = np.array_split(x, 8)
    with ThreadPoolExecutor(2) as pool:
        predicted = np.concatenate(list(pool.map(trees.predict, parts)))
    assert np.array_equal(predicted, bundle.booster.predict(x, num_threads=1))


def test_trees_that_do_not_match_the_booster_are_not_used(bundle, tmp_path, caplog):
    """A cached library of another model under this model's name: the proof catches it."""
    other = stand_in_bundle(n=1500, seed=5, trees=20, num_leaves=7)
    other_library = compile_trees(other.booster, tmp_path / "other").library
    (tmp_path / "cache").mkdir()
    os.link(other_library, tmp_path / "cache" / f"trees-{model_key(bundle.booster)}.so")
    with caplog.at_level(logging.WARNING, logger="training.compiled"):
        assert compile_trees(bundle.booster, tmp_path / "cache") is None
        assert bundle.with_compiled_trees(tmp_path / "cache") is bundle
    assert "differ from LightGBM" in caplog.text


def test_without_a_compiler_lightgbm_stays_the_predictor(bundle, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with caplog.at_level(logging.WARNING, logger="training.compiled"):
        assert compile_trees(bundle.booster, tmp_path / "cache") is None
    assert "no C compiler" in caplog.text
    assert not list(tmp_path.rglob("*.so"))


def test_rows_are_read_in_place_from_a_wider_matrix(bundle, features, tmp_path):
    """featurize's matrix is a view (a scratch column dropped): its rows are read where they
    are, through the model's column positions."""
    trees = compile_trees(bundle.booster, tmp_path)
    x = bundle.matrix(features)
    wide = np.full((len(x), x.shape[1] + 7), -5.0)
    wide[:, 3 : 3 + x.shape[1]] = x
    view = wide[:, :-2]
    assert not view.flags["C_CONTIGUOUS"]
    columns = np.arange(3, 3 + x.shape[1])
    expected = bundle.booster.predict(x, num_threads=1)
    assert np.array_equal(trees.predict(view, columns), expected)
    assert np.array_equal(trees.predict(wide[::2], columns), expected[::2])  # every other row
    assert np.array_equal(trees.predict(np.asfortranarray(x)), expected)  # copied, same numbers
    with pytest.raises(ValueError, match="model columns"):
        trees.predict(view, columns[:-1])
