"""The request guard on its own, around a tiny Starlette app: API key, body limit, media type,
body shape, and every error answered as an ErrorBody; and the request timeout that replaces
BentoML's (serving.runtime)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import weakref

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.guard import RequestGuard, error_payload
from serving.runtime import RequestTimeout
from serving.settings import ServingSettings


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


async def bentoml_like_400(request: Request) -> JSONResponse:
    detail = [{"type": "missing", "loc": ["snapshot"], "msg": "Field required"}]
    return JSONResponse({"error": "1 validation error for Input", "detail": detail}, 400)


async def mounted_404(request: Request) -> JSONResponse:
    return JSONResponse({"detail": "no score history for user 'x'", "user_id": "x"}, 404)


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("\n")


KEY = "s3cret-0123456789abcdef"


def _client(**settings) -> TestClient:
    app = Starlette(routes=[
        Route("/score", echo, methods=["POST"]),
        Route("/bad", bentoml_like_400, methods=["POST"]),
        Route("/livez", ok),
        Route("/users/x/score", mounted_404),
    ])
    guarded = RequestGuard(app, settings=ServingSettings(**settings))
    return TestClient(guarded, raise_server_exceptions=False)


def test_without_a_key_everything_is_open():
    assert _client().post("/score", json={"a": 1}).status_code == 200


def test_with_a_key_requests_need_the_bearer_token():
    client = _client(INFLUENCE_API_KEY=KEY)
    missing = client.post("/score", json={})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["error"]
    assert client.post("/score", json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/score", json={}, headers={"Authorization": f"Basic {KEY}"}).status_code == 401
    assert client.post("/score", json={}, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_health_stays_open_with_a_key():
    assert _client(INFLUENCE_API_KEY=KEY).get("/livez").status_code == 200


def test_announced_body_over_the_limit_is_413():
    response = _client(INFLUENCE_MAX_BODY_BYTES=100).post("/score", content=b"x" * 101,
                                                          headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "100 bytes" in response.json()["error"]


def test_streamed_body_over_the_limit_is_413():
    def chunks():
        for _ in range(10):
            yield b"x" * 20

    response = _client(INFLUENCE_MAX_BODY_BYTES=100).post(
        "/score", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_body_within_the_limit_reaches_the_app_whole():
    response = _client(INFLUENCE_MAX_BODY_BYTES=100).post(
        "/score", content=b"y" * 100, headers={"content-type": "application/json"}
    )
    assert response.json() == {"size": 100}


@pytest.mark.parametrize("media_type", ["multipart/form-data; boundary=x", "application/vnd.bentoml+pickle", "text/plain"])
def test_only_json_bodies_are_accepted(media_type):
    response = _client().post("/score", content=b"abc", headers={"content-type": media_type})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


def test_validation_400_becomes_path_and_problem():
    response = _client().post("/bad", json={})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid request: 1 problem",
        "errors": [{"path": "snapshot", "problem": "required field is missing"}],
    }
    assert int(response.headers["content-length"]) == len(response.content)


def test_plain_text_4xx_become_json():
    client = _client()
    not_found = client.get("/nowhere")
    assert not_found.status_code == 404 and not_found.json() == {"error": "Not Found", "errors": []}
    wrong_method = client.get("/score")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]


def test_bentoml_tuple_wrapped_errors_are_unwrapped():
    payload = error_payload(404, b'[{"error": "no such task"}]', "application/json")
    assert payload.error == "no such task"


def test_json_errors_of_any_route_are_made_error_bodies():
    response = _client().get("/users/x/score")
    assert response.status_code == 404
    assert response.json() == {"error": "no score history for user 'x'", "errors": []}


def test_error_bodies_pass_unchanged():
    body = b'{"error": "no", "errors": [{"path": "a", "problem": "b"}]}'
    assert error_payload(404, body, "application/json") is None


def test_bentoml_validation_answers_list_at_most_20_problems_and_count_all():
    detail = [{"type": "missing", "loc": ["f", i], "msg": "Field required"} for i in range(500)]
    payload = error_payload(400, json.dumps({"error": "x", "detail": detail}).encode(),
                            "application/json")
    assert len(payload.errors) == 20
    assert payload.error == "invalid request: 500 problems (20 listed, 480 not shown)"


async def broken(request: Request) -> JSONResponse:
    raise ValueError("boom")


async def raw_fault(scope, receive, send) -> None:
    raise ValueError("boom")


@pytest.mark.parametrize("app", [Starlette(routes=[Route("/broken", broken)]), raw_fault])
def test_a_fault_is_a_500_error_body(app):
    """Whether the app answers its own 500 (a Starlette app) or lets the exception out."""
    response = TestClient(RequestGuard(app), raise_server_exceptions=False).get("/broken")
    assert response.status_code == 500
    assert set(response.json()) == {"error", "errors"} and response.json()["errors"] == []


@pytest.mark.parametrize(("body", "words"), [
    (json.dumps({"snapshot": {"received": {f"k{i}": 1 for i in range(5000)}}}), "5000 keys"),
    ("[" * 40 + "]" * 40 + " " * 5000, "40 levels"),
    (json.dumps({"snapshots": [0] * 2500}), "2500 items"),
    (json.dumps({"snapshot": {"n": [{f"k{i}": 1 for i in range(30)} for _ in range(100)]}}),
     "3001 keys in all"),
])
def test_bodies_beyond_the_shape_limits_get_400_before_they_are_parsed(body, words):
    response = _client().post("/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert words in response.json()["error"] and response.json()["errors"][0]["path"] == ""


def test_bodies_within_the_shape_limits_reach_the_app():
    body = json.dumps({"snapshots": [{"networks": {"twitter": {"window_days": 7}}}] * 2000})
    response = _client().post("/score", content=body, headers={"content-type": "application/json"})
    assert response.json() == {"size": len(body)}


# --- the request timeout that stands in for BentoML's -------------------------------------------

REQUEST = contextvars.ContextVar("request")


class _Marker:
    pass


async def _call(app) -> list[dict]:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_request_timeout_keeps_nothing_of_a_finished_request():
    """BentoML's timer held each request's context (its span, its Request) until it fired."""

    async def main() -> None:
        context = contextvars.copy_context()
        marker = _Marker()
        context.run(REQUEST.set, marker)
        held = weakref.ref(marker)
        del marker
        app = RequestTimeout(PlainTextResponse("ok"), timeout=60)
        sent = await asyncio.get_running_loop().create_task(_call(app), context=context)
        assert sent[0]["status"] == 200 and sent[1]["body"] == b"ok"
        del context
        for _ in range(3):  # callbacks of the finished tasks, already scheduled, run
            await asyncio.sleep(0)
        gc.collect()
        assert held() is None, "a finished request is still referenced (by its timer?)"

    asyncio.run(main())


def test_request_timeout_answers_504_when_no_answer_starts_in_time():
    async def slow(scope, receive, send) -> None:
        await asyncio.sleep(5)

    sent = asyncio.run(asyncio.wait_for(_call(RequestTimeout(slow, timeout=0.05)), 2))
    assert sent[0]["status"] == 504
    assert b"0.05 seconds" in sent[1]["body"]


def test_request_timeout_does_not_wait_for_the_timer_when_the_app_fails():
    async def broken(scope, receive, send) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(asyncio.wait_for(_call(RequestTimeout(broken, timeout=60)), 2))
