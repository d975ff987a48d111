"""One score, two paths (issue 5, section 4): a user's batch-built snapshot sent to the service
gets the score the batch pipeline gives the same user (max difference 0.01), and every real
account of the PeerIndex sample, as a Twitter-only snapshot, gets a valid score.

Batch path: long snapshot table -> featurize (frame) -> ModelBundle.score.
Service path: the same table -> frame_to_snapshots -> JSON -> POST /score_batch or /score ->
pydantic -> snapshot arrays -> featurize (matrix) -> ModelBundle.score.

Default run: a few hundred users of a small simulated world, the session's service (in process).
Slow run: 1,000 users of the default world (the pipeline's data/clean when it exists, simulated
otherwise) against a real `bentoml serve` of $INFLUENCE_BUNDLE_DIR, the pipeline's model, or the
stand-in.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest

from features.featurize import featurize
from features.snapshot import frame_to_snapshots
from serving.peerindex import load_snapshots
from serving.scorer import model_windows
from training.bundle import ModelBundle

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 0.01


def world_snapshots(raw: Path, params) -> pl.DataFrame:
    """The long snapshot table of the day after the world's last day (as the pipeline builds it)."""
    from features.engine import data_end, make_engine
    from features.stage import snapshots_for_date

    return snapshots_for_date(make_engine("polars"), raw, data_end(raw), params)


def batch_scores(bundle: ModelBundle, frame: pl.DataFrame) -> dict[str, float]:
    scored = bundle.score(featurize(frame, model_windows(bundle)))
    return dict(zip(scored["user_id"].to_list(), scored["score"].to_list(), strict=True))


def request_bodies(frame: pl.DataFrame) -> list[dict]:
    return [s.model_dump(mode="json", exclude_none=True) for s in frame_to_snapshots(frame)]


def service_scores(post, bodies: list[dict], chunk: int = 1000) -> dict[str, float]:
    """Scores from /score_batch, in chunks of at most 1,000 (every item must score)."""
    scores: dict[str, float] = {}
    for start in range(0, len(bodies), chunk):
        response = post("/score_batch", json={"snapshots": bodies[start : start + chunk]})
        assert response.status_code == 200, response.text[:500]
        body = response.json()
        assert body["rejected"] == 0, [i for i in body["results"] if "errors" in i][:3]
        scores.update({i["result"]["user_id"]: i["result"]["score"] for i in body["results"]})
    return scores


def assert_same_scores(batch: dict[str, float], served: dict[str, float]) -> None:
    assert set(served) == set(batch)
    users = sorted(batch)
    diff = np.abs(np.array([batch[u] for u in users]) - np.array([served[u] for u in users]))
    assert diff.max() <= TOLERANCE, f"max |service - batch| = {diff.max():.4f} ({users[diff.argmax()]})"


# --- default run: a small world, the in-process service ----------------------------------------


@pytest.fixture(scope="module")
def small_world_frame(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    from influence.params import load_params
    from simulation.config import WorldConfig
    from simulation.world import write_world

    root = tmp_path_factory.mktemp("two-paths-world")
    params = load_params(ROOT / "params.yaml")
    config = WorldConfig.from_params(params, users=400, days=100, seed=5, corrupt_share=0.0)
    write_world(config, root / "raw", root / "truth")
    return world_snapshots(root / "raw", params)


def test_service_equals_batch_on_a_small_world(client, bundle_dir, small_world_frame):
    frame = small_world_frame
    assert frame["user_id"].n_unique() >= 200
    batch = batch_scores(ModelBundle.load(bundle_dir), frame)
    bodies = request_bodies(frame)
    assert_same_scores(batch, service_scores(client.post, bodies))
    for body in bodies[:25]:  # and one by one through /score
        single = client.post("/score", json={"snapshot": body, "explain": False}).json()
        assert abs(single["score"] - batch[body["user_id"]]) <= TOLERANCE


def test_every_real_twitter_account_gets_a_valid_score(client, peerindex_csv):
    bodies = [s.model_dump(mode="json", exclude_none=True) for s in load_snapshots(peerindex_csv)]
    scores = service_scores(client.post, bodies)
    assert len(scores) == len(bodies) > 1000
    assert all(1 <= s <= 100 for s in scores.values())


# --- slow run: the default world, a real server --------------------------------------------------


def _default_world_raw(tmp_path_factory) -> Path:
    """The pipeline's clean (validated) tables when they exist, else the default world simulated
    here without corrupt rows."""
    clean = ROOT / "data" / "clean"
    if (clean / "interactions").is_dir():
        return clean
    from influence.params import load_params
    from simulation.config import WorldConfig
    from simulation.world import write_world

    root = tmp_path_factory.mktemp("default-world")
    params = load_params(ROOT / "params.yaml")
    write_world(WorldConfig.from_params(params, corrupt_share=0.0), root / "raw", root / "truth")
    return root / "raw"


def _default_model(bundle_dir: Path) -> Path:
    """$INFLUENCE_BUNDLE_DIR, else the pipeline's model, else the session's stand-in."""
    import os

    for candidate in (os.environ.get("INFLUENCE_BUNDLE_DIR"), ROOT / "models" / "influence-score"):
        if candidate and (Path(candidate) / "bundle.json").exists():
            return Path(candidate)
    return bundle_dir


@pytest.mark.slow
def test_service_equals_batch_on_1000_users_of_the_default_world(bundle_dir, tmp_path_factory,
                                                                peerindex_csv):
    from influence.params import load_params
    from serving.launch import running_server

    frame = world_snapshots(_default_world_raw(tmp_path_factory), load_params(ROOT / "params.yaml"))
    users = frame["user_id"].unique(maintain_order=True).head(1000)
    frame = frame.filter(pl.col("user_id").is_in(users.implode()))
    model = _default_model(bundle_dir)
    batch = batch_scores(ModelBundle.load(model), frame)
    logs = tmp_path_factory.mktemp("two-paths-server")
    env = {"INFLUENCE_BUNDLE_DIR": str(model), "INFLUENCE_API_KEY": None, "BENTOML_HOME": str(logs)}
    with running_server("serving.service:InfluenceService", logs / "serve.log", env=env,
                        cwd=ROOT, timeout=180) as server, httpx.Client(base_url=server.url,
                                                                      timeout=120) as http:
        assert_same_scores(batch, service_scores(http.post, request_bodies(frame)))
        real = [s.model_dump(mode="json", exclude_none=True) for s in load_snapshots(peerindex_csv)]
        assert all(1 <= s <= 100 for s in service_scores(http.post, real).values())
