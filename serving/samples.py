"""Example snapshots and a stand-in model for the docs, load tests and benchmarks: plausible,
varied, deterministic.

`example_snapshot()` is the request body of the README and the issue; `random_snapshots(n, seed)`
draws users with 1-4 linked networks, heavy-tailed audiences and reactions, some fields left out
(the way real clients send partial snapshots), all within the contract.

`stand_in_bundle(...)` is a real `ModelBundle` over the real featurize catalog, trained in
seconds on random snapshots and a made-up outcome (reactions, engagers, audience, networks): not
a good influence model, but it runs exactly the code the champion runs, at the size asked for
(the service tests use a compact one, the benchmark one of the trained model's size when no
trained model is at hand).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.snapshot import SignalSnapshot
from influence.vocabulary import NETWORKS, NETWORKS_WITH_LISTS, actions_of

EXAMPLE: dict[str, Any] = {
    "user_id": "alice",
    "as_of": "2026-11-25",
    "networks": {
        "twitter": {
            "window_days": 30,
            "followers": 1200, "following": 300, "lists": 12, "account_age_days": 400,
            "posts": 90, "posts_with_media": 20,
            "received": {"like": 800, "retweet": 120, "reply": 40, "mention": 60},
            "sent": {"retweet": 10, "reply": 30, "mention": 20},
            "unique_engagers": 350,
            "engager_influence": 42.5,
        },
        "linkedin": {"window_days": 30, "followers": 500, "received": {"recommendation": 3}},
    },
}


def example_snapshot() -> SignalSnapshot:
    return SignalSnapshot.model_validate(EXAMPLE)


def _network_window(rng: np.random.Generator, network: str, window_days: int) -> dict[str, Any]:
    followers = float(np.round(rng.lognormal(5.5, 2.0)))
    posts = float(rng.poisson(rng.lognormal(2.0, 1.0)))
    reach = followers * rng.lognormal(-3.0, 1.0)
    received = {a: float(rng.poisson(reach * rng.lognormal(-0.5, 1.0))) for a in actions_of(network)
                if rng.random() < 0.8}
    sent = {a: float(rng.poisson(rng.lognormal(1.0, 1.0))) for a in actions_of(network)
            if rng.random() < 0.5}
    window: dict[str, Any] = {
        "window_days": window_days,
        "followers": followers,
        "following": float(np.round(rng.lognormal(5.0, 1.2))),
        "posts": posts,
        "posts_with_media": float(np.floor(posts * rng.random())),
        "received": received,
        "sent": sent,
        "account_age_days": float(rng.integers(5, 4000)),
        "days_linked": float(rng.integers(1, 1500)),
        "active_days": float(rng.integers(0, window_days + 1)),
        "unique_engagers": float(np.floor(sum(received.values()) * rng.uniform(0.2, 0.9))),
        "engager_influence": float(rng.uniform(5, 95)),
        "reciprocity": float(rng.random()),
    }
    if network in NETWORKS_WITH_LISTS:
        window["lists"] = float(rng.poisson(followers / 200))
    optional = [k for k in window if k not in ("window_days", "received", "sent")]
    for key in rng.choice(optional, size=int(rng.integers(0, 4)), replace=False):
        del window[key]
    return window


def random_snapshot_dicts(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        linked = rng.choice(NETWORKS, size=int(rng.integers(1, 5)), replace=False)
        window_days = int(rng.choice([7, 30, 90]))
        out.append({
            "user_id": f"sample-{seed}-{i}",
            "networks": {str(n): _network_window(rng, str(n), window_days) for n in linked},
        })
    return out


def random_snapshots(n: int, seed: int = 0) -> list[SignalSnapshot]:
    return [SignalSnapshot.model_validate(d) for d in random_snapshot_dicts(n, seed)]


def _stand_in_outcome(x: np.ndarray, names: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    def col(name: str) -> np.ndarray:
        return np.nan_to_num(x[:, names.index(name)])

    signal = (
        0.6 * col("all__log_received__30d")
        + 0.8 * col("all__log_unique_engagers__30d")
        + 0.3 * col("all__log_followers_max")
        + 0.4 * col("all__n_linked_networks")
    )
    return np.clip(signal + rng.normal(0, 0.3, len(x)), 0, None)


def stand_in_bundle(
    n: int = 2000, seed: int = 0, trees: int = 40, num_leaves: int = 15, compact: bool = True
):
    """A ModelBundle trained on `n` random snapshots. `compact` keeps the cross-network signals
    and the per-network levels (~200 columns); otherwise every catalog column (~900)."""
    import lightgbm as lgb

    from features.featurize import ALL, DEFAULT_WINDOWS, featurize_matrix, signal_catalog
    from features.snapshot import snapshots_to_arrays
    from training.bundle import FeatureInfo, ModelBundle, content_version
    from training.calibrate import fit_calibrator
    from training.explain import CROSS_NETWORK

    catalog = tuple(
        FeatureInfo(name=s.name, network=CROSS_NETWORK if s.network == ALL else s.network,
                    family=s.family, meaning=s.meaning, window=s.window, monotone=s.monotone)
        for s in signal_catalog(DEFAULT_WINDOWS)
        if not compact or s.network == ALL or s.window is None
    )
    names = tuple(c.name for c in catalog)
    matrix = featurize_matrix(snapshots_to_arrays(random_snapshots(n, seed), DEFAULT_WINDOWS),
                              DEFAULT_WINDOWS)
    x = matrix.values[:, [matrix.names.index(name) for name in names]]
    label = _stand_in_outcome(x, names, np.random.default_rng(seed))
    params = {
        "objective": "regression", "num_leaves": num_leaves, "learning_rate": 0.1,
        "min_data_in_leaf": 20, "max_bin": 63, "deterministic": True, "force_row_wise": True,
        "monotone_constraints": [c.monotone for c in catalog], "num_threads": 1, "seed": seed,
        "verbose": -1,
    }
    booster = lgb.train(params, lgb.Dataset(x, label, feature_name=list(names)), trees)
    calibrator = fit_calibrator(booster.predict(x))
    return ModelBundle(
        booster=booster, calibrator=calibrator, feature_names=names, catalog=catalog,
        reference_fingerprint=f"stand-in-{n}-{seed}", version=content_version(booster, calibrator),
        metadata={"num_threads": 1, "stand_in": True},
    )
