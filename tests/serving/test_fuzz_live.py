"""Schemathesis over the OpenAPI document the real server serves, every operation, with all of
schemathesis's checks (server errors, status codes, content types, headers and bodies against the
document, allowed methods, positive data accepted, negative data rejected, ...). Bounded: a fixed
number of examples per operation and mode. Requests go over loopback to the session's
`real_server` (test_contract_fuzz.py runs the scoring operations in process, with more examples).

Positive data the document allows may break only the two rules OpenAPI 3.0 cannot express
(`serving.snapshot_doc`); such a 400 must name them, and is the one rejection accepted.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup

EXAMPLES = 15
CROSS_FIELD = ("exceeds window_days", "window_days repeated")


@pytest.fixture(scope="module")
def api(real_server):
    return schemathesis.openapi.from_url(f"{real_server.url}/docs.json")


def _operations(api) -> dict[str, object]:
    return {f"{op.method.upper()} {op.path}": op
            for op in (result.ok() for result in api.get_all_operations())}


def _has_input(operation) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


def _only_cross_field(response) -> bool:
    if response.status_code != 400:
        return False
    try:
        errors = response.json()["errors"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(errors) and all(any(rule in e["problem"] for rule in CROSS_FIELD) for e in errors)


def _check(case, response, checks) -> None:
    try:
        case.validate_response(response, checks=checks)
    except FailureGroup as group:
        kept = [f for f in group.exceptions
                if not (type(f).__name__ == "RejectedPositiveData" and _only_cross_field(response))]
        if kept:
            names = ", ".join(sorted({type(f).__name__ for f in kept}))
            raise AssertionError(f"{case.method} {case.path}: {names}: {response.status_code} "
                                 f"{response.text[:500]}") from None


def test_the_document_lists_every_operation(api):
    assert set(_operations(api)) >= {
        "POST /score", "POST /score_batch", "GET /users/{user_id}/score",
        "GET /users/{user_id}/history", "GET /livez", "GET /readyz", "GET /metrics",
    }


def _fuzz(operation, mode: GenerationMode, url: str, checks: list) -> set[int]:
    """The statuses of the operation's cases, every check applied to each."""
    seen: set[int] = set()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call(base_url=url, timeout=60)
        seen.add(response.status_code)
        _check(case, response, checks)

    try:
        run()
    except Unsatisfiable:  # nothing of it can be made invalid (a path of any string)
        assert mode == GenerationMode.NEGATIVE
    return seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
def test_every_operation_passes_every_check(api, real_server, mode):
    load_all_checks()
    checks = CHECKS.get_all()
    statuses = {name: _fuzz(operation, mode, real_server.url, checks)
                for name, operation in _operations(api).items()
                if mode == GenerationMode.POSITIVE or _has_input(operation)}
    assert all(s < 500 for found in statuses.values() for s in found), statuses
    fuzzed = {name for name, found in statuses.items() if found}
    assert {"POST /score", "POST /score_batch", "GET /users/{user_id}/history"} <= fuzzed
