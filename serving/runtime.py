"""What the service changes in the BentoML and uvicorn runtime it runs in, each for a defect of
theirs, each installed by `install_runtime` (called where the service is defined, before BentoML
builds its app or uvicorn its server):

- `RequestTimeout` replaces BentoML's request timeout, whose timers held every request's context
  until they fired (memory followed the peak request rate).
- `RouteMetrics` labels BentoML's Prometheus metrics by route template (`/users/{user_id}/score`)
  instead of the raw path: every distinct id used to add ~20 series, so `/metrics` grew without
  bound (8.9 MB and 6 s after 2,000 ids, the worker +400 MB after 5,000) and listed every id asked
  for. Paths that match no route share one label.
- `quiet_client_errors`: BentoML logs every invalid request as an ERROR with its traceback and the
  whole validation error (25 lines a request; 42 MB for one body of 100,000 bad keys). A client
  error becomes one INFO line with the count of problems; the access log has the request.
- `HeadDeadline`: uvicorn waits for a request's head forever (a client that connects and sends
  nothing, or a header a byte at a time, holds a connection and a file descriptor). A connection
  gets `header_timeout` seconds to send a whole head, from opening or from the first byte of its
  next request; idle keep-alive connections are closed by uvicorn's own keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from collections.abc import Iterable
from typing import Any, ClassVar

from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware

from serving.errors import ErrorBody
from serving.guard import respond

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
                await respond(send, 504, ErrorBody(
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


# --- metrics by route template ------------------------------------------------------------------

UNMATCHED = "/{unmatched}"
"""The one label of every path that matches no route."""
_REAL_PATH = "influence.real_path"


class RouteTemplates:
    """Maps a request path to the route template it matches (`/users/{user_id}/score`)."""

    def __init__(self, templates: Iterable[str]) -> None:
        self.exact = frozenset(t for t in templates if "{" not in t)
        self.patterns = [
            (re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(t)) + "$"), t)
            for t in templates if "{" in t
        ]

    def __call__(self, path: str) -> str:
        if path in self.exact:
            return path
        return next((t for pattern, t in self.patterns if pattern.match(path)), UNMATCHED)


class _RealPath:
    """Gives the app behind `RouteMetrics` the request's real path back."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        real = scope.get(_REAL_PATH)
        if real is not None:
            scope = {k: v for k, v in scope.items() if k != _REAL_PATH}
            scope["path"] = real
        await self.app(scope, receive, send)


class RouteMetrics(RunnerTrafficMetricsMiddleware):
    """BentoML's traffic metrics, same names and labels, with `endpoint` the route template.
    BentoML's middleware reads the label from the scope's path: it is given a copy of the scope
    whose path is the template, and the app behind it gets the real path back (`_RealPath`)."""

    templates: ClassVar[RouteTemplates] = RouteTemplates(())

    def __init__(self, app: Any, **options: Any) -> None:
        super().__init__(_RealPath(app), **options)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] != "/metrics":
            scope = {**scope, "path": self.templates(scope["path"]), _REAL_PATH: scope["path"]}
        await super().__call__(scope, receive, send)


def install_route_metrics(templates: Iterable[str]) -> None:
    """Make BentoML build its apps with `RouteMetrics` (labels: these templates, else
    `UNMATCHED`). BentoML looks the class up in `instruments` each time it builds an app."""
    from bentoml._internal.server.http import instruments

    RouteMetrics.templates = RouteTemplates(templates)
    instruments.RunnerTrafficMetricsMiddleware = RouteMetrics


# --- client errors in the log -------------------------------------------------------------------

BENTOML_ERROR_LOGGER = "bentoml._internal.server.http_app"
"""Where BentoML's `log_exception` writes ("Exception on <path> [<method>]", with traceback)."""


def _client_error(error: BaseException | None) -> str | None:
    """A short description when `error` is the client's (answered 4xx), else None."""
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        n = error.error_count()
        return f"invalid request body ({n} problem{'s' if n != 1 else ''})"
    if isinstance(error, BentoMLException) and 400 <= error.error_code.value < 500:
        return f"{type(error).__name__} ({error.error_code.value})"
    return None


class ClientErrorsOneLine(logging.Filter):
    """Rewrites BentoML's ERROR-with-traceback record of a client error as one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        summary = _client_error(error)
        if summary is not None:
            where = record.getMessage().removeprefix("Exception on ")
            record.msg, record.args = "client error on %s: %s", (where, summary)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_client_errors() -> None:
    logger = logging.getLogger(BENTOML_ERROR_LOGGER)
    if not any(isinstance(f, ClientErrorsOneLine) for f in logger.filters):
        logger.addFilter(ClientErrorsOneLine())


# --- the request-head deadline ------------------------------------------------------------------


class HeadDeadline:
    """Mixin for a uvicorn HTTP protocol (h11 or httptools: both keep the request being served
    in `self.cycle`, made when a head is complete): the connection is closed when a whole head has
    not arrived `head_timeout` seconds after the connection opened or the next request began."""

    head_timeout: ClassVar[float] = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle  # type: ignore[attr-defined]
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not cycle:  # type: ignore[attr-defined]
            self._disarm_head_timer()  # a head is complete: the request timeout takes over
        elif cycle is None or cycle.response_complete:
            self._arm_head_timer()  # part of the next request's head

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(  # type: ignore[attr-defined]
                self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        transport = self.transport  # type: ignore[attr-defined]
        if not transport.is_closing():
            transport.close()


def install_head_deadline(seconds: float) -> None:
    """Make uvicorn's default ("auto") HTTP protocol one with a `HeadDeadline` of `seconds`.
    uvicorn resolves the class when its server starts, after the service module is imported."""
    from uvicorn.protocols.http import auto

    base = auto.AutoHTTPProtocol
    if issubclass(base, HeadDeadline):
        base.head_timeout = seconds
        return
    auto.AutoHTTPProtocol = type(f"HeadDeadline{base.__name__}", (HeadDeadline, base),
                                 {"head_timeout": seconds})


def install_runtime(route_templates: Iterable[str], header_timeout: float | None) -> None:
    """Everything above; the head deadline only when a launcher asked for one (a real server)."""
    install_request_timeout()
    install_route_metrics(route_templates)
    quiet_client_errors()
    if header_timeout is not None:
        install_head_deadline(header_timeout)
