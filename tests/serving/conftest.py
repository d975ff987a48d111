"""Fixtures of the service tests: a small real model bundle and the service's ASGI app behind a
Starlette TestClient (the full HTTP stack of BentoML, in process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servingkit import save_serving_bundle
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
