"""The behaviour tests on the default model (the bundle the pipeline trained on the default
world): `INFLUENCE_BUNDLE_DIR`, else models/influence-score; skipped when there is none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from training_snapshots import (
    amplification_pair,
    bought_pair,
    newcomer,
    posts_pair,
    score_of,
    scores,
    selectivity_pair,
    worst_drops,
)

from training.bundle import ModelBundle

pytestmark = pytest.mark.slow

DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "models" / "influence-score"


@pytest.fixture(scope="module")
def default_bundle() -> ModelBundle:
    directory = Path(os.environ.get("INFLUENCE_BUNDLE_DIR", DEFAULT_BUNDLE))
    if not (directory / "bundle.json").exists():
        pytest.skip(f"no trained default model at {directory} (run `make pipeline`)")
    return ModelBundle.load(directory)


def test_raising_engagement_never_lowers_the_default_score(default_bundle):
    drops = worst_drops(default_bundle, 1_000, seed=321, change_seed=5_000)
    assert drops and all(d >= -1e-9 for d in drops.values()), drops


def test_who_outranks_whom(default_bundle):
    many, one = score_of(default_bundle, *amplification_pair())
    few, flood = score_of(default_bundle, *posts_pair())
    picky, anyone = score_of(default_bundle, *selectivity_pair())
    assert many > one and few > flood and picky > anyone


def test_bots_do_not_pay(default_bundle):
    honest, bought = score_of(default_bundle, *bought_pair())
    assert bought - honest <= 2.0


def test_a_nine_day_old_account_is_modest_and_provisional(default_bundle):
    result = scores(default_bundle, [newcomer()]).row(0, named=True)
    assert 10 <= result["score"] <= 35 and result["provisional"]
