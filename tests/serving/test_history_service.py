"""The history lookups through the service's full HTTP stack (BentoML ASGI app, request guard)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from historybuild import history_rows
from starlette.testclient import TestClient

from serving.history import STORE_ENV, DayRun, HistoryStore

LATEST = date(2026, 11, 2)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = HistoryStore(tmp_path_factory.mktemp("service-history") / "scores.duckdb")
    for k in range(8):
        day = LATEST - timedelta(days=k)
        store.replace_day(history_rows(day, {"alice": 50.0 - k}, "is-test"), DayRun(day, "is-test"))
    return store.path


@pytest.fixture(autouse=True)
def _history_of_the_service(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service (the session's app of conftest.py) resolves the store on each request."""
    monkeypatch.setenv(STORE_ENV, str(store_path))


def test_the_service_answers_the_latest_score_with_its_changes(client: TestClient):
    response = client.get("/users/alice/score")
    assert response.status_code == 200
    body = response.json()
    assert (body["date"], body["score"], body["model_version"]) == ("2026-11-02", 50.0, "is-test")
    assert body["score_delta"] == {"day_change": 1.0, "week_change": 7.0, "month_change": None}


def test_the_service_answers_the_series(client: TestClient):
    body = client.get("/users/alice/history", params={"days": 3}).json()
    assert [p["score"] for p in body["series"]] == [48.0, 49.0, 50.0]


def test_unknown_users_get_a_json_404(client: TestClient):
    response = client.get("/users/nobody/score")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "error": "no score history for user 'nobody'",
        "errors": [{"path": "user_id", "problem": "no score history for this user"}],
    }


def test_the_lookups_are_in_the_openapi_document(client: TestClient):
    paths = client.get("/docs.json").json()["paths"]
    assert "get" in paths["/users/{user_id}/score"]
    assert "get" in paths["/users/{user_id}/history"]


def test_the_api_key_guards_the_lookups_too(store_path: Path):
    """The service's request guard around the lookups, with a key (a second BentoML app cannot
    be built in this process, so the guard wraps the mounted app as the service mounts it)."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from serving.guard import RequestGuard
    from serving.history import HistoryStore
    from serving.history_api import lookup_app
    from serving.settings import ServingSettings

    app = Starlette(routes=[Mount("/users", app=lookup_app(lambda: HistoryStore(store_path)))])
    guarded = RequestGuard(app, settings=ServingSettings(INFLUENCE_API_KEY="s3cret-0123456789abcdef"))
    client = TestClient(guarded, raise_server_exceptions=False)
    for path in ("/users/alice/score", "/users/alice/history"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer s3cret-0123456789abcdef"}).status_code == 200
