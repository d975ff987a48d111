"""Property-based fuzz of the OpenAPI contract (schemathesis): no input makes the service fail,
and every answer matches the document. Bounded: a fixed number of examples per endpoint and mode.

Positive mode draws requests the document allows (they must score: 200 and a body matching the
response schema; a batch item may be any value, answered with its own errors when it is not a
snapshot); negative mode draws requests it forbids (they must get a 4xx, never a 5xx).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# The two rules OpenAPI 3.0 cannot express (see serving.snapshot_doc): a request the document
# allows may break only these, and then gets a 400 naming them.
CROSS_FIELD = ("exceeds window_days", "window_days repeated")


@pytest.fixture(scope="module")
def api_schema(client):
    """The document the service serves (its cases are sent by the session's TestClient)."""
    return schemathesis.openapi.from_dict(client.get("/docs.json").json())


def _send(client, case):
    """A schemathesis case through our TestClient (one app, one lifespan; bodies serialised as
    schemathesis would, NaN included)."""
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
    body = kwargs.get("data")
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
    return client.request(kwargs["method"], kwargs["url"], headers=kwargs["headers"],
                          params=kwargs.get("params") or None, content=body)


def _operations(api_schema) -> list:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    return [op for op in operations if op.method.upper() == "POST"]


def _examples(operation) -> list:
    body = operation.definition.raw.get("requestBody", {})
    return [e["value"] for e in body.get("content", {}).get("application/json", {})
            .get("examples", {}).values()]


def _is_snapshot_like(item: object) -> bool:
    """A batch item drawn from the document's snapshot branch (the other branch is any value)."""
    return isinstance(item, dict) and isinstance(item.get("networks"), dict) and bool(
        item["networks"]) and set(item) <= {"user_id", "as_of", "networks"}


def _problems(body: dict, request: dict) -> list[str]:
    sent = request.get("snapshots") or []
    items = [item for item in body.get("results") or []
             if item["index"] < len(sent) and _is_snapshot_like(sent[item["index"]])]
    nested = [e for item in items for e in (item.get("errors") or [])]
    return [f"{e['path']}: {e['problem']}" for e in body.get("errors", []) + nested]


def _fuzz(client, operation, mode: GenerationMode) -> tuple[Counter, list[str]]:
    statuses: Counter = Counter()
    problems: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        response = _send(client, case)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
        documented = case.body in _examples(operation)  # some show errors on purpose
        if response.status_code in (200, 400) and isinstance(case.body, dict) and not documented:
            problems.extend(_problems(response.json(), case.body))

    check()
    return statuses, problems


def test_the_document_lists_both_endpoints(api_schema):
    assert sorted(op.path for op in _operations(api_schema)) == ["/score", "/score_batch"]


@pytest.mark.parametrize("path", ["/score", "/score_batch"])
def test_allowed_requests_score(client, api_schema, path):
    (operation,) = [op for op in _operations(api_schema) if op.path == path]
    statuses, problems = _fuzz(client, operation, GenerationMode.POSITIVE)
    assert set(statuses) <= {200, 400} and statuses[200] > 0, statuses
    unexpected = [p for p in problems if not any(rule in p for rule in CROSS_FIELD)]
    assert not unexpected, unexpected


@pytest.mark.parametrize("path", ["/score", "/score_batch"])
def test_forbidden_requests_get_4xx_never_5xx(client, api_schema, path):
    (operation,) = [op for op in _operations(api_schema) if op.path == path]
    statuses, _ = _fuzz(client, operation, GenerationMode.NEGATIVE)
    assert statuses and all(400 <= s < 500 or s == 200 for s in statuses), statuses
