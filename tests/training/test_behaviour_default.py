"""The behaviour tests on the default model (the bundle the pipeline trained on the default
world): `INFLUENCE_BUNDLE_DIR`, else models/influence-score; skipped when there is none."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from training_snapshots import (
    amplification_pair,
    bought_pair,
    newcomer,
    posts_pair,
    score_of,
    scores,
    selectivity_pair,
)

from training.bundle import ModelBundle
from training.monotone import apply_change, monotone_changes, random_snapshots

pytestmark = pytest.mark.slow

DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "models" / "influence-score"


@pytest.fixture(scope="module")
def default_bundle() -> ModelBundle:
    directory = Path(os.environ.get("INFLUENCE_BUNDLE_DIR", DEFAULT_BUNDLE))
    if not (directory / "bundle.json").exists():
        pytest.skip(f"no trained default model at {directory} (run `make pipeline`)")
    return ModelBundle.load(directory)


def test_raising_engagement_never_lowers_the_default_score(default_bundle):
    probes = random_snapshots(1_000, seed=321)
    for i, (name, (network, change)) in enumerate(sorted(monotone_changes().items())):
        before, after = apply_change(probes, network, change, seed=5_000 + i)
        if not before:
            continue
        after = [s.model_copy(update={"user_id": f"{s.user_id}+"}) for s in after]
        was = scores(default_bundle, before).get_column("score").to_numpy()
        now = scores(default_bundle, after).get_column("score").to_numpy()
        assert np.all(now >= was - 1e-9), f"{name}: worst drop {np.min(now - was):.4f}"


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
