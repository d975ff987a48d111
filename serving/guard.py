"""The service's request guard (one ASGI middleware): API key, body size, media type, body shape,
and every error answer in the one shape `{"error", "errors": [{"path", "problem"}]}`.

In the order a request meets them:
1. `INFLUENCE_API_KEY` set and the path is not open (`serving.settings.OPEN_PATHS`): without
   `Authorization: Bearer <key>` -> 401.
2. A POST body that is not JSON -> 415 (BentoML would otherwise try multipart or arrow decoders,
   whose failures on arbitrary bytes are not all 4xx).
3. A body over `INFLUENCE_MAX_BODY_BYTES` -> 413: announced by Content-Length (refused before it
   is read), or streamed in chunks (read up to the limit).
4. A body of `SHAPE_CHECK_FROM_BYTES` or more whose shape breaks the limits of
   `serving.settings` (nesting, keys per object, items per array, keys per snapshot) -> 400,
   before anything parses it (`serving.bodyshape`; in a thread past `SHAPE_THREAD_FROM_BYTES`).
   Smaller bodies cannot cost much whatever they hold (~700 keys at most, ~15 ms of errors).
   The body read is then replayed to the app.
5. On the way out, any answer of status 400 or more is made an `ErrorBody` unless it is one
   already: BentoML's validation answer (`{"error", "detail": [pydantic errors]}`) becomes one
   (path, problem) per error, at most `MAX_LISTED_ERRORS` of them (the summary counts all);
   plain-text answers (404, 405) and `{"error"}` or `{"detail"}` bodies are wrapped. An
   exception that escapes the app before it answered gets a 500 `ErrorBody`, and is raised on
   to be logged.
"""

from __future__ import annotations

import hmac
import json
from http import HTTPStatus
from typing import Any

from serving.bodyshape import ShapeLimits, shape_problem
from serving.errors import ErrorBody, FieldError, field_errors, invalid_body
from serving.settings import (
    MAX_DEPTH,
    MAX_ITEMS_PER_ARRAY,
    MAX_KEYS_PER_OBJECT,
    MAX_KEYS_PER_SNAPSHOT,
    MAX_LISTED_ERRORS,
    ServingSettings,
    is_open_path,
)

JSON_TYPES = ("application/json", "")
SHAPE_LIMITS = ShapeLimits(MAX_DEPTH, MAX_KEYS_PER_OBJECT, MAX_ITEMS_PER_ARRAY,
                           MAX_KEYS_PER_SNAPSHOT)
SHAPE_CHECK_FROM_BYTES = 4 * 1024
SHAPE_THREAD_FROM_BYTES = 256 * 1024
"""Bodies this big are measured in a worker thread (numpy lets the event loop run meanwhile)."""


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _media_type(scope: dict[str, Any]) -> str:
    return (_header(scope, b"content-type") or "").split(";")[0].strip().lower()


def _authorized(scope: dict[str, Any], api_key: str) -> bool:
    given = _header(scope, b"authorization") or ""
    scheme, _, token = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


def unauthorized() -> ErrorBody:
    return ErrorBody(error="missing or wrong API key: send 'Authorization: Bearer <key>'")


def unsupported_media_type(media_type: str) -> ErrorBody:
    return ErrorBody(error=f"unsupported media type {media_type!r}: send application/json")


def too_large(limit: int) -> ErrorBody:
    return ErrorBody(error=f"request body over the limit of {limit} bytes")


def too_complex(problem: str) -> ErrorBody:
    return ErrorBody(error=f"invalid request: the body is too large in shape: {problem}",
                     errors=[FieldError(path="", problem=problem)])


def _is_error_body(data: Any) -> bool:
    return (isinstance(data, dict) and set(data) == {"error", "errors"}
            and isinstance(data["error"], str) and isinstance(data["errors"], list))


def error_payload(status: int, body: bytes, media_type: str) -> ErrorBody | None:
    """The ErrorBody for an error answer the app produced, None when it is one already."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
    if media_type.startswith("application/json"):
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        if _is_error_body(data):
            return None
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
            data = data[0]  # BentoML wraps some error bodies in a 1-tuple
        if isinstance(data, dict) and isinstance(data.get("detail"), list):
            detail = data["detail"]
            try:
                return invalid_body(field_errors(detail[:MAX_LISTED_ERRORS]), total=len(detail))
            except (TypeError, ValueError, AttributeError):
                pass
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return ErrorBody(error=data["error"])
        if isinstance(data, dict) and isinstance(data.get("detail"), str):
            return ErrorBody(error=data["detail"])
    text = body.decode("utf-8", "replace").strip()
    return ErrorBody(error=text if 0 < len(text) <= 200 else phrase)


class RequestGuard:
    def __init__(self, app: Any, settings: ServingSettings | None = None) -> None:
        self.app = app
        self.settings = settings or ServingSettings()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        api_key = self.settings.api_key
        if api_key and not is_open_path(path) and not _authorized(scope, api_key):
            await respond(send, 401, unauthorized(), [(b"www-authenticate", b"Bearer")])
            return
        if scope.get("method") == "POST" and not is_open_path(path):
            refusal = await self._refusal(scope, receive)
            if isinstance(refusal, tuple):
                await respond(send, *refusal)
                return
            receive = _replay(refusal, receive)
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, _as_error_bodies(tracked))
        except Exception:
            # a fault: answered in the one shape too, then raised on to be logged
            if not started:
                await respond(send, 500, ErrorBody(error="internal error (logged)"))
            raise

    async def _refusal(self, scope: dict[str, Any], receive: Any) -> bytes | tuple[int, ErrorBody]:
        """The body of a POST (read whole), or the status and answer that refuse it."""
        if _media_type(scope) not in JSON_TYPES:
            return 415, unsupported_media_type(_media_type(scope))
        limit = self.settings.max_body_bytes
        announced = _header(scope, b"content-length")
        if announced is not None and announced.strip().isdigit() and int(announced) > limit:
            return 413, too_large(limit)
        body = await _read_body(receive, limit)
        if body is None:
            return 413, too_large(limit)
        problem = await _shape_problem(body)
        if problem:
            return 400, too_complex(problem)
        return body


async def _shape_problem(body: bytes) -> str | None:
    if len(body) < SHAPE_CHECK_FROM_BYTES:
        return None
    if len(body) < SHAPE_THREAD_FROM_BYTES:
        return shape_problem(body, SHAPE_LIMITS)
    import anyio.to_thread

    return await anyio.to_thread.run_sync(shape_problem, body, SHAPE_LIMITS)


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The whole body, or None as soon as it exceeds `limit`."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """A `receive` that gives the buffered body once, then waits on the real one (disconnect)."""
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _as_error_bodies(send: Any) -> Any:
    """`send`, except that an answer of status 400 or more is collected and re-sent as an
    ErrorBody when it is not one already."""
    start: dict[str, Any] | None = None
    chunks: list[bytes] = []

    async def wrapped(message: dict[str, Any]) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and message["status"] >= 400:
            start = message
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        media_type = next((v.decode("latin-1") for k, v in start.get("headers", ())
                           if k.lower() == b"content-type"), "")
        payload = error_payload(start["status"], b"".join(chunks), media_type)
        if payload is None:
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks)})
            return
        kept = [(k, v) for k, v in start.get("headers", ())
                if k.lower() not in (b"content-type", b"content-length")]
        await respond(send, start["status"], payload, kept)

    return wrapped


async def respond(send: Any, status: int, payload: ErrorBody,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = payload.model_dump_json().encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [*(headers or []), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
