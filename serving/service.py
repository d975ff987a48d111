"""The influence-score HTTP service (BentoML 1.4).

    make serve                            # 127.0.0.1:3000, the registry's champion
    influence serve --port N [--bundle DIR] [--workers W]
    INFLUENCE_BUNDLE_DIR=dir make serve   # a saved ModelBundle instead (tests, experiments)

Start it through `serving.launch` (what both commands do): it checks the settings and the model
before anything listens, keeps BentoML's supervisor off the network and the server's metrics
apart from any other's, and stops everything when a worker cannot start.

Endpoints (OpenAPI at /docs.json, its page at /, both `serving.apidoc`):

- `POST /score`       `{"snapshot": SignalSnapshot, "explain": true}` -> `ScoreResponse`
- `POST /score_batch` `{"snapshots": [...1..1000], "explain": false}` -> `BatchResponse`, one item
                      per snapshot in order; an invalid snapshot gets its own errors
- `GET /users/{user_id}/score`, `GET /users/{user_id}/history?days=90`: the score history
                      (`serving.history_api`, written by `influence score-daily` / `backfill`)
- `GET /livez`, `/readyz`, `/metrics`: BentoML's health, readiness and Prometheus endpoints

The model is loaded once, in the worker's `__init__`, with `training.registry.load_champion()`
(MLflow registry model `influence-score@champion`, store from `MLFLOW_TRACKING_URI`), or from
`INFLUENCE_BUNDLE_DIR`. It is not put in BentoML's model store: the registry is the one source of
truth and a class-level `BentoModel` would fail on a store without it. Every answer carries the
bundle's `model_version`.

No adaptive batching: a batchable BentoML API takes one argument and queues requests up to a
latency budget, which only adds waiting for one client sending one request at a time, while a
client with many users has /score_batch (1,000 in one validation pass, one featurize pass and
one model call on every core, ~0.1 ms a user against ~1 ms for one). It would pay only under
many concurrent single-user clients.

Answers: `serving.answers` (plain JSON, rounded). Errors: every answer of status 400 or more is
an `ErrorBody` (`serving.guard`: 401/413/415, the body's shape, and the rewriting of BentoML's
and the mounted app's answers). BentoML and uvicorn are adjusted in `serving.runtime` (request
timeout, metrics by route template, one-line client errors, request-head deadline).
Settings: `serving.settings`.

Adding endpoints: a POST endpoint is another `@bentoml.api` method (add its route to
`ROUTE_TEMPLATES`); GET routes (the score history, `/users/...`) are a FastAPI app mounted on the
service (`mount_asgi_app`, below), which BentoML also lists in the OpenAPI document. The request
guard covers every path except the open ones.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bentoml
from pydantic import ValidationError

from features.snapshot import SignalSnapshot
from serving.answers import TooManyProblems, batch_answer, json_response, score_answer
from serving.apidoc import ApiDocs
from serving.contracts import BatchRequest, BatchResponse, ScoreRequest, ScoreResponse
from serving.guard import RequestGuard
from serving.history_api import lookup_app
from serving.launch import HEADER_TIMEOUT_ENV, stop_supervisor
from serving.runtime import install_runtime
from serving.scorer import load_scorer
from serving.settings import OPEN_PATHS, REQUEST_TIMEOUT_S, ServingSettings

logger = logging.getLogger("influence.service")
ROUTE_TEMPLATES = (
    "/score", "/score_batch", "/users/{user_id}/score", "/users/{user_id}/history",
    "/static_content/{file}", *OPEN_PATHS,
)
"""What the Prometheus metrics are labelled with (any other path: one `/{unmatched}` label)."""


@contextmanager
def internal_errors() -> Iterator[None]:
    """A pydantic error raised while scoring is our bug, not the client's: BentoML would answer
    it with a 400, so it is re-raised as a plain error (500) instead."""
    try:
        yield
    except ValidationError as error:
        raise RuntimeError(f"internal contract violation: {error}") from None


def release_free_memory() -> None:
    """Give the heap pages freed since start-up back to the OS. Loading the model (its text
    parsed, the compiled trees built or loaded and proven) leaves ~13 MB of them, which glibc
    keeps mapped otherwise. Not glibc: nothing to do."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@bentoml.service(
    name="influence",
    workers=1,
    http={"host": "127.0.0.1", "port": 3000},
    traffic={"timeout": REQUEST_TIMEOUT_S},
)
class InfluenceService:
    """Influence score 1-100: score, explain and advise from a user's signal snapshot."""

    def __init__(self) -> None:
        try:
            self.scorer = load_scorer(ServingSettings())
        except Exception as error:
            # one line naming the file or store, and the whole server stops (serving.launch)
            message = f"cannot start: {type(error).__name__}: {error}"
            logger.critical(message)
            stop_supervisor(message)
            raise
        # The model and the imports are the bulk of the heap and live as long as the worker:
        # out of the collector's sight, they no longer make full collections (tail latency) slow.
        gc.collect()
        gc.freeze()
        release_free_memory()

    # async on purpose: one request is a millisecond or two of CPU under the GIL, so a hop to
    # BentoML's worker thread (and back) would cost about as much as the scoring itself and buy
    # no concurrency. The batch endpoint, ~100x longer, keeps the thread.
    @bentoml.api(route="/score", input_spec=ScoreRequest)
    async def score(self, snapshot: SignalSnapshot, explain: bool = True) -> ScoreResponse:
        """Score one user's signal snapshot; with explain (default) also points per network and
        family against the baseline, the top factors and up to three tips."""
        version = self.scorer.model_version
        with internal_errors():
            answer = score_answer(self.scorer, snapshot, explain)
        if isinstance(answer, dict):
            return json_response({**answer, "model_version": version})
        return ScoreResponse.model_construct(**dict(answer), model_version=version)

    @bentoml.api(route="/score_batch", input_spec=BatchRequest)
    def score_batch(self, snapshots: list[Any], explain: bool = False) -> BatchResponse:
        """Score up to 1,000 snapshots; one item per snapshot, in order. An invalid snapshot gets
        its own errors and does not sink the others."""
        try:
            with internal_errors():
                return json_response(batch_answer(self.scorer, snapshots, explain))
        except TooManyProblems as refused:
            return json_response(refused.body(), status=400)


def _current_scorer() -> Any:
    return bentoml.get_current_service().scorer


_header_timeout = os.environ.get(HEADER_TIMEOUT_ENV)
install_runtime(ROUTE_TEMPLATES, float(_header_timeout) if _header_timeout else None)
# the score-history lookups: a FastAPI app (GET routes with path parameters), store read per request
InfluenceService.mount_asgi_app(lookup_app(), path="/users")
InfluenceService.add_asgi_middleware(RequestGuard)
InfluenceService.add_asgi_middleware(
    ApiDocs, base=lambda: InfluenceService.openapi_spec.asdict(), scorer=_current_scorer
)
