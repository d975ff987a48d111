"""The service's one ASGI middleware: API key, body size, media type, and 4xx answers as JSON.

In the order a request meets them:
1. `INFLUENCE_API_KEY` set and the path is not open (`serving.settings.OPEN_PATHS`): without
   `Authorization: Bearer <key>` -> 401.
2. A body over `INFLUENCE_MAX_BODY_BYTES` -> 413: announced by Content-Length (refused before it
   is read), or streamed in chunks (read up to the limit, then replayed to the app).
3. A POST body that is not JSON -> 415 (BentoML would otherwise try multipart or arrow decoders,
   whose failures on arbitrary bytes are not all 4xx).
4. On the way out, 4xx answers are made `ErrorBody`s: on the service's own API routes
   (`api_paths`) BentoML's validation answer (`{"error", "detail": [pydantic errors]}`) becomes
   one (path, problem) per error; on any path a plain-text answer (404, 405) is wrapped. JSON
   answers of mounted apps (the history lookups) keep their own documented shape.

`RequestTimeout` stands in for BentoML's own request timeout (`install_request_timeout`), see
there.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
from http import HTTPStatus
from typing import Any

from serving.errors import ErrorBody, field_errors, invalid_body
from serving.settings import ServingSettings, is_open_path

JSON_TYPES = ("application/json", "")


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


def error_payload(status: int, body: bytes, media_type: str) -> ErrorBody:
    """The ErrorBody for a 4xx answer the app produced (see the module docstring, step 4)."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
    if media_type.startswith("application/json"):
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
            data = data[0]  # BentoML wraps some error bodies in a 1-tuple
        if isinstance(data, dict) and isinstance(data.get("detail"), list):
            try:
                return invalid_body(field_errors(data["detail"]))
            except (TypeError, ValueError, AttributeError):
                pass
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return ErrorBody(error=data["error"])
        if isinstance(data, dict) and isinstance(data.get("detail"), str):
            return ErrorBody(error=data["detail"])
    text = body.decode("utf-8", "replace").strip()
    return ErrorBody(error=text if 0 < len(text) <= 200 else phrase)


class RequestGuard:
    def __init__(
        self, app: Any, api_paths: tuple[str, ...] = (), settings: ServingSettings | None = None
    ) -> None:
        self.app = app
        self.api_paths = frozenset(api_paths)
        self.settings = settings or ServingSettings()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        api_key = self.settings.api_key
        if api_key and not is_open_path(path) and not _authorized(scope, api_key):
            await _respond(send, 401, ErrorBody(error="missing or wrong API key: send "
                                                "'Authorization: Bearer <key>'"),
                           [(b"www-authenticate", b"Bearer")])
            return
        if scope.get("method") == "POST" and not is_open_path(path):
            if _media_type(scope) not in JSON_TYPES:
                await _respond(send, 415, ErrorBody(
                    error=f"unsupported media type {_media_type(scope)!r}: send application/json"))
                return
            limit = self.settings.max_body_bytes
            announced = _header(scope, b"content-length")
            if announced is not None and announced.strip().isdigit():
                # the HTTP server holds the client to its Content-Length: nothing to count
                too_big = int(announced) > limit
            else:
                body = await _read_body(receive, limit)
                too_big = body is None
                if not too_big:
                    receive = _replay(body, receive)
            if too_big:
                await _respond(send, 413, ErrorBody(
                    error=f"request body over the limit of {limit} bytes"))
                return
        await self.app(scope, receive, _json_4xx(send, rewrite_json=path in self.api_paths))


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """A streamed (chunked) body, or None as soon as it exceeds `limit`."""
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


def _json_4xx(send: Any, rewrite_json: bool) -> Any:
    """`send`, except that a 4xx answer is collected and re-sent as an ErrorBody (a JSON one
    only when `rewrite_json`)."""
    start: dict[str, Any] | None = None
    chunks: list[bytes] = []

    async def wrapped(message: dict[str, Any]) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
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
        if media_type.startswith("application/json") and not rewrite_json:
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks)})
            return
        payload = error_payload(start["status"], b"".join(chunks), media_type)
        kept = [(k, v) for k, v in start.get("headers", ())
                if k.lower() not in (b"content-type", b"content-length")]
        await _respond(send, start["status"], payload, kept)

    return wrapped


async def _respond(send: Any, status: int, payload: ErrorBody,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = payload.model_dump_json().encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [*(headers or []), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


# --- the request timeout ------------------------------------------------------------------------

_NO_CONTEXT = contextvars.Context()


def _time_out(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class RequestTimeout:
    """BentoML's `TimeoutMiddleware` (`traffic.timeout`: 504 when no answer has started in time)
    without its leak: BentoML arms a timer per request and never cancels it, and the timer holds a
    copy of the request's context (its tracing span, its Request, ~5 KB) until it fires. The
    worker then held every request of the last `timeout` seconds (~20 MB at 300 requests/s and
    10 s) and its RSS crept up with every new peak of the request rate. Here the timer runs in an
    empty context and is cancelled as soon as the answer starts (or the app ends)."""

    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        started = loop.create_future()
        timer = loop.call_later(self.timeout, _time_out, started, context=_NO_CONTEXT)

        async def send_started(message: dict[str, Any]) -> None:
            if not started.done():
                started.set_result(None)
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, send_started))
        # an app that ends without answering (it raised) must not wait for the timer
        task.add_done_callback(lambda _: started.done() or started.set_result(None))
        try:
            await started
        except TimeoutError:
            if task.cancel():
                await _respond(send, 504, ErrorBody(
                    error=f"Not able to process the request in {self.timeout} seconds"))
            return
        except BaseException:
            task.cancel()
            raise
        finally:
            timer.cancel()
        await task


def install_request_timeout() -> None:
    """Make BentoML build its apps with `RequestTimeout` in place of its `TimeoutMiddleware`
    (same place in the middleware stack, same setting, same 504). BentoML looks the class up in
    `bentoml._internal.server.http.traffic` each time it builds an app; if that module ever
    changes, this fails at import rather than silently serving with the leak."""
    from bentoml._internal.server.http import traffic

    original = traffic.TimeoutMiddleware
    if original is not RequestTimeout:
        if not callable(getattr(original, "_set_timer_out", None)):
            raise RuntimeError("bentoml's TimeoutMiddleware changed: review RequestTimeout")
        traffic.TimeoutMiddleware = RequestTimeout
