"""The API's documentation as the service serves it: the OpenAPI document at `/docs.json` and
its page at `/`.

The document is BentoML's (made from the contracts), made ours (`api_document`): our title,
version and description instead of the framework's boilerplate (and its links); request bodies
marked required; every endpoint's error answers documented as the one `ErrorBody` they are; and
real examples, each with the status it gets (`x-status`): requests run through the service's own
code in the worker when the document is first asked for (`live_examples`), so a 200 example shows
the answer this model gives and a 400 example the errors the service really writes. "Try it out"
on the page sends the first example of each endpoint, which succeeds. A test sends every example
to a real server and compares.

The page is Swagger UI from the files BentoML ships, configured here, with a Content Security
Policy that lets it load nothing from another origin (BentoML's own page loads Google's tag
manager, and Swagger UI would call an online validator).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pydantic_core
from pydantic import ValidationError

from serving.contracts import BatchRequest, ScoreRequest
from serving.errors import ErrorBody
from serving.history_api import EXAMPLE_USER, default_max_days
from serving.samples import EXAMPLE
from serving.settings import MAX_BATCH, REQUEST_TIMEOUT_S, ServingSettings

TITLE = "Influence score API"
DESCRIPTION = f"""\
One number, 1 to 100, of how much a person's activity across eight social networks moves other
people to act: send a user's **signal snapshot** (per linked network, the counters of a window:
audience, posts, reactions received and sent, engagers) and get the score, its percentile, what
it is made of (points per network and per signal family against the baseline, the top factors)
and what would raise it.

- `POST /score` scores one snapshot, `POST /score_batch` up to {MAX_BATCH:,}.
- `GET /users/{{user_id}}/score` and `/history` read the published daily scores.
- Every error answer, of every endpoint, is `{{"error": "...", "errors": [{{"path", "problem"}}]}}`:
  a summary and, for an invalid request, the field paths and what is wrong with each (at most 20;
  the summary counts them all).
- Limits: bodies up to 16 MiB by default (413 above), JSON only (415), at most 10 levels of
  nesting, 32 keys per object and 2,000 keys per snapshot (400), {REQUEST_TIMEOUT_S} s per request
  (504).
- Every answer names the `model_version` that scored it. Scores and points have 2 decimals.
"""
INFRA_TAG = "Infrastructure"
TAGS = [
    {"name": "Scoring", "description": "Score signal snapshots."},
    {"name": "Score history", "description": "The published daily scores."},
    {"name": INFRA_TAG, "description": "Health, readiness and Prometheus metrics (open: no key "
     "needed). Metrics are labelled by route template, never by a user's id."},
]
SCORING = ("/score", "/score_batch")
HISTORY = ("/users/{user_id}/score", "/users/{user_id}/history")
UNKNOWN_USER = "nobody"


def package_version() -> str:
    try:
        return version("influence")
    except PackageNotFoundError:
        return "0"


def example(value: Any, status: int, summary: str) -> dict[str, Any]:
    return {"summary": summary, "value": value, "x-status": status}


@dataclass(frozen=True)
class Examples:
    """Per endpoint: request examples (first: the one "Try it out" sends, a 200) and, per status,
    the answers they get."""

    requests: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    responses: dict[str, dict[int, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    parameters: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)

    def add(self, path: str, name: str, summary: str, request: Any, status: int, answer: Any) -> None:
        if request is not None:
            self.requests.setdefault(path, {})[name] = example(request, status, summary)
        self.responses.setdefault(path, {}).setdefault(status, {})[name] = {
            "summary": summary, "value": answer}


# --- the examples, run through the service's code -----------------------------------------------

INVALID_SCORE_REQUESTS = {
    "unknown_action": ("an action twitter does not have",
                       {"snapshot": {"networks": {"twitter": {"window_days": 30,
                                                              "received": {"clap": 2}}}}}),
    "no_window": ("a network without its window_days",
                  {"snapshot": {"networks": {"linkedin": {"followers": 500}}}}),
    "no_network": ("no linked network", {"snapshot": {"user_id": "alice", "networks": {}}}),
}
SECOND_SNAPSHOT = {"networks": {"linkedin": {"window_days": 30, "followers": 500,
                                             "received": {"recommendation": 3}}}}
INVALID_ITEM = {"user_id": "carol", "networks": {"twitter": {"window_days": 7, "posts": -4}}}


def _errors_of(contract: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The 400 answer of `request`, invalid against `contract`, as the service writes it."""
    from serving.answers import invalid_request

    try:
        contract.model_validate(request)
    except ValidationError as error:
        return invalid_request(error.errors(include_url=False, include_context=False,
                                            include_input=False)).model_dump()
    raise ValueError(f"documented as invalid, but valid: {request}")


def live_examples(scorer: Any, history_example: dict[str, Any] | None = None) -> Examples:
    """The examples of every endpoint, answered by this `scorer` through the service's code."""
    from features.snapshot import SignalSnapshot
    from serving.answers import batch_answer, score_answer

    examples = Examples()
    snapshot = SignalSnapshot.model_validate(EXAMPLE)
    for name, explain, summary in (("readme", True, "the README's snapshot, explained"),
                                   ("quick", False, "the same, score only (faster)")):
        answer = score_answer(scorer, snapshot, explain)
        body = answer.model_dump(mode="json") if hasattr(answer, "model_dump") else dict(answer)
        examples.add("/score", name, summary, {"snapshot": EXAMPLE, "explain": explain}, 200,
                     {**body, "model_version": scorer.model_version})
    for name, (summary, request) in INVALID_SCORE_REQUESTS.items():
        examples.add("/score", name, summary, request, 400, _errors_of(ScoreRequest, request))
    batch = {"snapshots": [EXAMPLE, SECOND_SNAPSHOT, INVALID_ITEM], "explain": False}
    examples.add("/score_batch", "three", "three snapshots, one of them invalid: it gets its own "
                 "errors, the others are scored", batch, 200,
                 json.loads(pydantic_core.to_json(batch_answer(scorer, batch["snapshots"], False))))
    examples.add("/score_batch", "empty", "no snapshot", {"snapshots": []}, 400,
                 _errors_of(BatchRequest, {"snapshots": []}))
    history = history_example or HISTORY_EXAMPLE
    examples.add("/users/{user_id}/score", "known", "a user of the history", None, 200, history)
    examples.add("/users/{user_id}/history", "known", "a user of the history", None, 200,
                 HISTORY_SERIES_EXAMPLE)
    for path in HISTORY:
        examples.add(path, "unknown", "a user without history", None, 404, {
            "error": f"no score history for user {UNKNOWN_USER!r}",
            "errors": [{"path": "user_id", "problem": "no score history for this user"}]})
        examples.parameters.setdefault(path, {})["user_id"] = {
            "known": example(EXAMPLE_USER, 200, "a user of the history"),
            "unknown": example(UNKNOWN_USER, 404, "a user without history"),
        }
    most = default_max_days()
    examples.parameters[HISTORY[1]]["days"] = {
        "default": example(90, 200, "the last 90 days"),
        "too_many": example(most + 1, 400, "more days than the history keeps"),
    }
    examples.add(HISTORY[1], "too_many", "more days than the history keeps", None, 400, {
        "error": "invalid request: 1 problem",
        "errors": [{"path": "days", "problem": f"Input should be less than or equal to {most}"}]})
    return examples


HISTORY_EXAMPLE: dict[str, Any] = {
    "user_id": EXAMPLE_USER, "date": "2026-11-02", "score": 47.31, "model_score": 47.6,
    "percentile": 68.12, "provisional": False, "model_version": "is-3f9c2a7b1d04",
    "score_delta": {"day_change": 0.42, "week_change": 1.9, "month_change": -2.05},
    "baseline": 38.75,
    "networks": {"twitter": 9.12, "instagram": -1.4, "cross_network": 1.2, "not_linked": -0.07},
}
"""Illustrative (the history depends on the day's data): its shape is tested against
`UserScore`, and the known example user exists in every simulated world."""
HISTORY_SERIES_EXAMPLE: dict[str, Any] = {
    "user_id": EXAMPLE_USER, "days": 3, "first": "2026-10-31", "last": "2026-11-02",
    "series": [
        {"date": "2026-10-31", "score": 46.89, "raw_score": 47.02, "percentile": 67.4,
         "model_version": "is-3f9c2a7b1d04"},
        {"date": "2026-11-02", "score": 47.31, "raw_score": 47.6, "percentile": 68.12,
         "model_version": "is-3f9c2a7b1d04"},
    ],
}


# --- the document -------------------------------------------------------------------------------

def _error_response(description: str, examples: dict[str, dict[str, Any]] | None = None) -> dict:
    content: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
    if examples:
        content["examples"] = examples
    return {"description": description, "content": {"application/json": content}}


def _one(summary: str, body: ErrorBody) -> dict[str, dict[str, Any]]:
    return {"answer": {"summary": summary, "value": body.model_dump()}}


def guard_errors(settings: ServingSettings) -> dict[int, dict]:
    """The answers of the request guard and the timeout (`serving.guard`, `serving.runtime`)."""
    from serving.guard import too_large, unauthorized, unsupported_media_type

    errors = {
        413: _error_response("the body is over the size limit", _one(
            "too large", too_large(settings.max_body_bytes))),
        415: _error_response("the body is not JSON", _one(
            "form data", unsupported_media_type("application/x-www-form-urlencoded"))),
        504: _error_response("no answer within the request timeout"),
        500: _error_response("a fault of the service (logged)"),
    }
    if settings.api_key:
        errors[401] = _error_response("no or a wrong API key", _one("no key", unauthorized()))
    return errors


def api_document(base: dict[str, Any], examples: Examples, settings: ServingSettings) -> dict:
    """BentoML's document `base`, made ours (see the module docstring)."""
    doc = copy.deepcopy(base)
    doc["info"] = {"title": TITLE, "version": package_version(), "description": DESCRIPTION}
    doc["tags"] = TAGS
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("InvalidArgument", "NotFound", "InternalServerError", "HTTPValidationError",
                 "ValidationError", "TaskStatusResponse"):
        schemas.pop(name, None)
    from serving.errors import FieldError

    schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["ErrorBody"].pop("$defs", None)
    schemas["FieldError"] = FieldError.model_json_schema()
    if settings.api_key:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    common = guard_errors(settings)
    for path, item in doc["paths"].items():
        for operation in item.values():
            if path in SCORING:
                _scoring(operation, path, examples, common)
            elif path in HISTORY:
                _history(operation, path, examples, common)
            else:
                operation["tags"] = [INFRA_TAG]
                continue
            if settings.api_key:
                operation["security"] = [{"bearer": []}]
    return doc


def _responses_with_examples(operation: dict, path: str, examples: Examples, common: dict) -> None:
    responses = {"200": operation.get("responses", {}).get(200)
                 or operation.get("responses", {})["200"]}
    operation["responses"] = responses
    for status, named in examples.responses.get(path, {}).items():
        if status == 200:
            responses["200"]["content"]["application/json"]["examples"] = named
        else:
            responses[str(status)] = _error_response(_STATUS_TEXT.get(status, "error"), named)
    for status, response in common.items():
        responses.setdefault(str(status), response)


_STATUS_TEXT = {400: "an invalid request: what is wrong, by field path",
                404: "no score history for this user",
                503: "the daily job is writing the history: retry after Retry-After seconds"}


def _scoring(operation: dict, path: str, examples: Examples, common: dict) -> None:
    operation["tags"] = ["Scoring"]
    body = operation.setdefault("requestBody", {})
    body["required"] = True
    body["content"]["application/json"]["examples"] = examples.requests.get(path, {})
    _responses_with_examples(operation, path, examples, common)


def _history(operation: dict, path: str, examples: Examples, common: dict) -> None:
    operation["tags"] = ["Score history"]
    for parameter in operation.get("parameters", []):
        named = examples.parameters.get(path, {}).get(parameter["name"])
        if named:
            parameter["examples"] = named
            parameter.pop("example", None)
    common = {s: r for s, r in common.items() if s not in (413, 415)}
    common[503] = _error_response(_STATUS_TEXT[503])
    _responses_with_examples(operation, path, examples, common)


# --- the page -----------------------------------------------------------------------------------

INIT_SCRIPT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "./docs.json", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl], layout: "StandaloneLayout",
    validatorUrl: null, tryItOutEnabled: false
  });
};"""
INDEX_HTML = f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>{TITLE}</title>
    <link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css" />
    <link rel="stylesheet" type="text/css" href="./static_content/index.css" />
    <link rel="icon" type="image/png" href="./static_content/favicon-light-32x32.png" sizes="32x32" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="./static_content/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script>{INIT_SCRIPT}</script>
  </body>
</html>
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(INIT_SCRIPT.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src 'self' 'sha256-{_SCRIPT_HASH}'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""Only this origin: the page's scripts (the init script by its hash), styles, images, and the
requests "Try it out" sends."""


class ApiDocs:
    """ASGI middleware answering `GET /` (the page) and `GET /docs.json` (the document, made once
    per worker when first asked for, with examples answered by the worker's model)."""

    def __init__(self, app: Any, base: Callable[[], dict[str, Any]],
                 scorer: Callable[[], Any], settings: ServingSettings | None = None) -> None:
        self.app = app
        self.base, self.scorer = base, scorer
        self.settings = settings or ServingSettings()
        self._document: bytes | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/":
            await _send(send, INDEX_HTML.encode(), "text/html; charset=utf-8",
                        [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode())])
        elif scope["path"] == "/docs.json":
            if self._document is None:
                doc = api_document(self.base(), live_examples(self.scorer()), self.settings)
                self._document = json.dumps(doc).encode()
            await _send(send, self._document, "application/json")
        else:
            await self.app(scope, receive, send)


async def _send(send: Any, body: bytes, media_type: str,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
