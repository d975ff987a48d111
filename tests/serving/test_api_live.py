"""The API as a first-time user meets it, on a real server (`python -m serving.launch`, loopback,
the session's `real_server`): every example of the OpenAPI document gets the status and the
answer the document shows, the README's commands run verbatim, and every error answer of every
endpoint has the one shape `{"error", "errors": [{"path", "problem"}]}`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.apidoc import TITLE
from serving.history_api import UserHistory, UserScore
from serving.samples import EXAMPLE, random_snapshot_dicts

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def http(real_server):
    with httpx.Client(base_url=real_server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def doc(http) -> dict[str, Any]:
    response = http.get("/docs.json")
    assert response.status_code == 200
    return response.json()


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in doc["paths"].items()
            for method, op in item.items()]


def _documented(op: dict, status: int, name: str) -> Any:
    return op["responses"][str(status)]["content"]["application/json"]["examples"][name]["value"]


def test_the_document_is_ours(doc):
    info = doc["info"]
    assert info["title"] == TITLE and info["version"] not in ("None", "", None)
    assert "bentoml" not in json.dumps(info).lower() and "contact" not in info


def test_every_body_example_gets_its_documented_status_and_answer(http, doc):
    sent = 0
    for path, method, op in _operations(doc):
        body = op.get("requestBody")
        if not body:
            continue
        assert body["required"] is True, path
        examples = body["content"]["application/json"]["examples"]
        assert next(iter(examples.values()))["x-status"] == 200, f"{path}: Try it out must succeed"
        for name, example in examples.items():
            response = http.request(method.upper(), path, json=example["value"])
            assert response.status_code == example["x-status"], (path, name, response.text[:300])
            assert response.json() == _documented(op, example["x-status"], name), (path, name)
            sent += 1
    assert sent >= 7


def test_every_parameter_example_gets_its_documented_status(http, doc):
    for path, method, op in _operations(doc):
        parameters = [p for p in op.get("parameters", []) if p.get("examples")]
        if not parameters:
            continue
        first = {p["name"]: next(iter(p["examples"].values()))["value"] for p in parameters}
        for parameter in parameters:
            for name, example in parameter["examples"].items():
                values = {**first, parameter["name"]: example["value"]}
                url = path.format(**{k: v for k, v in values.items() if "{" + k + "}" in path})
                query = {k: v for k, v in values.items() if "{" + k + "}" not in path}
                response = http.get(url, params=query)
                assert response.status_code == example["x-status"], (url, query, response.text)
                if example["x-status"] == 200:
                    model = UserHistory if path.endswith("/history") else UserScore
                    model.model_validate(response.json())
                else:
                    assert response.json() == _documented(op, example["x-status"], name)


def test_the_infrastructure_endpoints_answer(http, doc):
    for path, method, op in _operations(doc):
        if op.get("tags") == ["Infrastructure"]:
            assert http.request(method.upper(), path).status_code == 200, path


def test_scores_and_points_have_two_decimals_and_points_add_up(http):
    body = http.post("/score", json={"snapshot": EXAMPLE}).json()
    for value in (body["score"], body["percentile"], body["baseline"],
                  *body["networks"].values(), *body["families"].values()):
        assert round(value, 2) == value
    gap = round(body["score"] - body["baseline"], 2)
    assert round(sum(body["networks"].values()), 2) == gap
    assert round(sum(body["families"].values()), 2) == gap


def test_the_user_score_explains_points_against_the_baseline(http):
    body = http.get("/users/1000000001/score").json()
    assert body["baseline"] is not None and body["networks"]
    gap = round(body["model_score"] - body["baseline"], 2)
    assert round(sum(body["networks"].values()), 2) == gap


# --- the README -----------------------------------------------------------------------------


def readme_commands() -> list[str]:
    """The README's shell blocks that talk to the service (`make run` serves on 3000)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [b for b in blocks if "curl" in b and "127.0.0.1:3000" in b]


def test_the_readme_examples_run_verbatim(real_server):
    blocks = readme_commands()
    assert blocks, "the README has no curl examples"
    # curl prints the status after each answer; nothing else of the commands is changed
    wrapper = 'curl() { command curl -w "\\n@@%{http_code}\\n" "$@"; }\n'
    for block in blocks:
        script = wrapper + block.replace("http://127.0.0.1:3000", real_server.url)
        ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                             check=False)
        assert ran.returncode == 0, ran.stderr
        answers = re.findall(r"(.*?)\n@@(\d{3})\n", ran.stdout, flags=re.DOTALL)
        assert len(answers) == block.count("curl "), ran.stdout[:500]
        for text, status in answers:
            assert status == "200", text[:500]
            json.loads(text)


def test_the_readme_snapshot_is_the_documented_one():
    (block,) = [b for b in readme_commands() if "/score " in b or "/score -H" in b]
    sent = json.loads(re.search(r"-d '(.*?)'", block, flags=re.DOTALL).group(1))
    assert sent["snapshot"] == EXAMPLE


# --- one error shape ------------------------------------------------------------------------

JSON = {"content-type": "application/json"}


def _big_chunks(size: int):
    for _ in range(size // 65536 + 1):
        yield b" " * 65536


def error_requests() -> list[tuple[str, str, dict, int]]:
    """(method, path, httpx arguments, status) of every kind of error, on every endpoint."""
    too_many = [{"networks": {"twitter": {"window_days": 7, "posts": -1, "followers": -1,
                                          "lists": -1}}}] * 1000
    cases = [
        ("POST", "/score", {"content": b"{", "headers": JSON}, 400),
        ("POST", "/score", {"content": b"", "headers": JSON}, 400),
        ("POST", "/score", {"content": b"[1, 2]", "headers": JSON}, 400),
        ("POST", "/score", {"json": {"snapshot": {"networks": {}}, "explain": "yes"}}, 400),
        ("POST", "/score", {"json": {"snapshot": EXAMPLE, "extra": 1}}, 400),
        ("POST", "/score", {"json": {"snapshot": {"networks": {"twitter": {
            "window_days": 30, "received": {f"k{i}": 1 for i in range(30)}}}}}}, 400),
        ("POST", "/score", {"json": {"snapshot": {"networks": {"twitter": {
            "window_days": 30, "received": {f"k{i}": 1 for i in range(100_000)}}}}}}, 400),
        ("POST", "/score", {"content": b"[" * 64 + b"]" * 64 + b" " * 5000, "headers": JSON}, 400),
        ("POST", "/score", {"content": b"a=1",
                            "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415),
        ("POST", "/score", {"content": b" " * (4 * 1024 * 1024 + 1), "headers": JSON}, 413),
        ("POST", "/score", {"content": _big_chunks(4 * 1024 * 1024 + 1), "headers": JSON}, 413),
        ("GET", "/score", {}, 405),
        ("POST", "/score_batch", {"json": {"snapshots": []}}, 400),
        ("POST", "/score_batch", {"json": {"snapshots": random_snapshot_dicts(1001)}}, 400),
        ("POST", "/score_batch", {"json": {"snapshots": random_snapshot_dicts(101),
                                           "explain": True}}, 400),
        ("POST", "/score_batch", {"json": {"snapshots": too_many}}, 400),
        ("POST", "/score_batch", {"json": {}}, 400),
        ("GET", "/users/nobody/score", {}, 404),
        ("GET", "/users/nobody/history", {}, 404),
        ("GET", "/users/1000000001/history", {"params": {"days": 0}}, 400),
        ("GET", "/users/1000000001/history", {"params": {"days": "abc"}}, 400),
        ("GET", "/users/1000000001/history", {"params": {"days": 100_000}}, 400),
        ("POST", "/users/1000000001/score", {"json": {}}, 405),
        ("GET", "/users", {}, 404),
        ("GET", "/nowhere", {}, 404),
        ("POST", "/livez", {}, 405),
    ]
    return cases


def _assert_one_shape(body: Any, where: str) -> None:
    assert isinstance(body, dict) and set(body) == {"error", "errors"}, (where, body)
    assert isinstance(body["error"], str) and body["error"], where
    assert isinstance(body["errors"], list) and len(body["errors"]) <= 20, where
    for e in body["errors"]:
        assert set(e) == {"path", "problem"} and all(isinstance(v, str) for v in e.values()), where


@pytest.mark.parametrize(("method", "path", "arguments", "status"), error_requests(),
                         ids=lambda v: v if isinstance(v, str | int) else "")
def test_every_error_of_every_endpoint_has_the_one_shape(http, method, path, arguments, status):
    response = http.request(method, path, **arguments)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    _assert_one_shape(response.json(), f"{method} {path} -> {status}")


def test_invalid_batch_items_have_the_shape_too(http):
    items = [EXAMPLE, 42, {"networks": {"twitter": {"window_days": 7, "received": {
        f"k{i}": 1 for i in range(12)}}}}]
    body = http.post("/score_batch", json={"snapshots": items}).json()
    for item in body["results"][1:]:
        assert set(item) == {"index", "error", "errors"}
        _assert_one_shape({"error": item["error"], "errors": item["errors"]}, "batch item")
    assert body["results"][2]["error"] == "invalid snapshot: 12 problems (5 listed, 7 not shown)"
