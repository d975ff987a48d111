"""Fixtures of the service tests: a small real model bundle, the service's ASGI app behind a
Starlette TestClient (the full HTTP stack of BentoML, in process), and one real server for the
session (started only by the tests that use it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from servingkit import HEADER_TIMEOUT_S, TEST_BODY_LIMIT, save_serving_bundle
from starlette.testclient import TestClient


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_serving_bundle(tmp_path_factory.mktemp("serving-bundle") / "bundle")


@pytest.fixture(scope="session")
def service_app(bundle_dir: Path):
    """The service's ASGI app, serving the test bundle, without an API key. One per session:
    BentoML registers its Prometheus metrics globally, so a second app in the same process
    fails (settings that need another app, like the API key, are tested on a real server)."""
    from serving.service import InfluenceService

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("INFLUENCE_API_KEY", raising=False)
        patch.delenv("INFLUENCE_MAX_BODY_BYTES", raising=False)
        patch.setenv("INFLUENCE_BUNDLE_DIR", str(bundle_dir))
        yield InfluenceService.to_asgi()


@pytest.fixture(scope="session")
def client(service_app) -> Iterator[TestClient]:
    with TestClient(service_app, raise_server_exceptions=False) as client:
        yield client


# --- one real server for the reliability tests of the default run -------------------------------

ROOT = Path(__file__).resolve().parents[2]
WORLD_END = date(2026, 11, 1)


@pytest.fixture(scope="session")
def scored_world(tmp_path_factory: pytest.TempPathFactory, bundle_dir: Path) -> dict[str, Path]:
    """A tiny simulated world scored by `influence score-daily` into a history store: the users
    the server knows are the simulator's (ids 1000000000, 1000000001, ...), as after `make run`."""
    import yaml
    from typer.testing import CliRunner

    from influence.cli import app
    from simulation.config import WorldConfig
    from simulation.world import write_world

    root = tmp_path_factory.mktemp("scored-world")
    write_world(WorldConfig(users=30, days=40, end_date=WORLD_END, corrupt_share=0.0),
                root / "clean", root / "truth")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["base"]["clean_dir"] = str(root / "clean")
    params["score_daily"]["store"] = str(root / "history" / "scores.duckdb")
    params["serve"] = {**params.get("serve", {}), "header_timeout_seconds": HEADER_TIMEOUT_S,
                       "keep_alive_seconds": 2}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    scored = CliRunner().invoke(app, ["score-daily", "--params", str(root / "params.yaml"),
                                      "--bundle", str(bundle_dir)], catch_exceptions=False)
    assert scored.exit_code == 0, scored.output
    return {"params": root / "params.yaml", "store": root / "history" / "scores.duckdb"}


@pytest.fixture(scope="session")
def real_server(scored_world: dict[str, Path], bundle_dir: Path,
                tmp_path_factory: pytest.TempPathFactory):
    """`python -m serving.launch` (what `make serve` runs) on a free loopback port, without an
    API key, scoring with the test bundle and reading the scored world's history."""
    from serving.launch import SERVICE, running_server

    home = tmp_path_factory.mktemp("real-server")
    env = {
        "INFLUENCE_BUNDLE_DIR": str(bundle_dir),
        "INFLUENCE_HISTORY_STORE": str(scored_world["store"]),
        "INFLUENCE_MAX_BODY_BYTES": str(TEST_BODY_LIMIT),
        "BENTOML_HOME": str(home / "bentoml"),
        "INFLUENCE_COMPILED_DIR": str(home / "compiled"),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("INFLUENCE_API_KEY", raising=False)
        with running_server(SERVICE, home / "serve.log", env=env, cwd=ROOT, timeout=240,
                            params=scored_world["params"]) as server:
            yield server
