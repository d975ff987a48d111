"""One real `bentoml serve` on a free loopback port, talked to with bentoml.SyncHTTPClient: the
service as deployed, with an API key and a small body limit (settings that need their own
process). Bounded: one server, a handful of requests, stopped by its process group."""

from __future__ import annotations

from pathlib import Path

import bentoml
import httpx
import pytest

from serving.launch import running_server
from serving.samples import EXAMPLE, random_snapshot_dicts

# Start-up alone (BentoML's arbiter, a worker, importing the service) takes 15-30 s here.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-key-0123456789"
LIMIT = 200_000


@pytest.fixture(scope="module")
def server(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    logs = tmp_path_factory.mktemp("real-server")
    env = {
        "INFLUENCE_BUNDLE_DIR": str(bundle_dir),
        "INFLUENCE_API_KEY": KEY,
        "INFLUENCE_MAX_BODY_BYTES": str(LIMIT),
        "BENTOML_HOME": str(logs / "bentoml"),
        # set here: this module's fixture starts before the per-test hermetic homes are set
        "INFLUENCE_COMPILED_DIR": str(logs / "compiled"),
    }
    with running_server("serving.service:InfluenceService", logs / "serve.log", env=env,
                        cwd=ROOT, timeout=180) as running:
        yield running


def test_score_and_batch_through_the_bentoml_client(server):
    with bentoml.SyncHTTPClient(server.url, token=KEY) as client:
        scored = client.score(snapshot=EXAMPLE, explain=True)
        assert 1 <= scored["score"] <= 100 and scored["model_version"]
        assert len(scored["tips"]) <= 3
        snapshots = random_snapshot_dicts(50, seed=11)
        batch = client.score_batch(snapshots=snapshots)
        assert batch["scored"] == 50
        assert [item["result"]["user_id"] for item in batch["results"]] == [
            s["user_id"] for s in snapshots
        ]


def test_key_health_metrics_and_limits_on_the_wire(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        request = {"snapshot": EXAMPLE, "explain": False}
        assert http.post("/score", json=request).status_code == 401
        ok = http.post("/score", json=request, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        for path in ("/livez", "/readyz", "/docs.json"):
            assert http.get(path).status_code == 200, path
        metrics = http.get("/metrics")
        assert metrics.status_code == 200
        assert 'bentoml_service_request_total{' in metrics.text and 'endpoint="/score"' in metrics.text
        big = {"snapshots": random_snapshot_dicts(300, seed=12)}
        too_big = http.post("/score_batch", json=big, headers={"Authorization": f"Bearer {KEY}"})
        assert too_big.status_code == 413 and str(LIMIT) in too_big.json()["error"]
        invalid = http.post("/score", json={"snapshot": {"networks": {}}},
                            headers={"Authorization": f"Bearer {KEY}"})
        assert invalid.status_code == 400
        assert invalid.json()["errors"][0]["path"] == "snapshot.networks"
