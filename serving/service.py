"""The influence-score HTTP service (BentoML 1.4).

    make serve                      # 127.0.0.1:3000, the registry's champion
    INFLUENCE_BUNDLE_DIR=dir make serve   # a saved ModelBundle instead (tests, experiments)

Endpoints (OpenAPI at /docs.json, UI at /):

- `POST /score`       `{"snapshot": SignalSnapshot, "explain": true}` -> `ScoreResponse`
- `POST /score_batch` `{"snapshots": [...1..1000], "explain": false}` -> `BatchResponse`, one item
                      per snapshot in order; an invalid snapshot gets its own errors
- `GET /users/{user_id}/score`, `GET /users/{user_id}/history?days=90`: the score history
                      (`serving.history`, written by `influence score-daily` / `backfill`)
- `GET /livez`, `/readyz`, `/metrics`: BentoML's health, readiness and Prometheus endpoints

The model is loaded once, in the worker's `__init__`, with `training.registry.load_champion()`
(MLflow registry model `influence-score@champion`, store from `MLFLOW_TRACKING_URI`), or from
`INFLUENCE_BUNDLE_DIR`. It is not put in BentoML's model store: the registry is the one source of
truth and a class-level `BentoModel` would fail on a store without it. Every answer carries the
bundle's `model_version`.

No adaptive batching: a batchable BentoML API takes one argument and queues requests up to a
latency budget, which only adds waiting for one client sending one request at a time, while a
client with many users has /score_batch (1,000 in one featurize pass and one model call, ~0.15
ms a user against ~1 ms for one). It would pay only under many concurrent single-user clients.

Errors: any malformed request gets a 4xx `ErrorBody` naming the field path and the problem (see
`serving.guard` for 401/413/415 and the shape of 400s). Settings: `serving.settings`.

Adding endpoints: a POST endpoint is another `@bentoml.api` method; GET routes (the score
history, `/users/...`) are a FastAPI app mounted on the service (`mount_asgi_app`, below), which
BentoML also lists in the OpenAPI document. The request guard covers every path except the open
ones, and leaves the JSON errors of mounted apps as they are.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bentoml
from pydantic import ValidationError

from features.snapshot import SignalSnapshot
from serving.contracts import BatchItem, BatchRequest, BatchResponse, ScoreRequest, ScoreResponse
from serving.errors import FieldError, field_errors
from serving.guard import RequestGuard, install_request_timeout
from serving.history import lookup_app
from serving.scorer import load_scorer
from serving.settings import REQUEST_TIMEOUT_S, ServingSettings


@contextmanager
def internal_errors() -> Iterator[None]:
    """A pydantic error raised while scoring is our bug, not the client's: BentoML would answer
    it with a 400, so it is re-raised as a plain error (500) instead."""
    try:
        yield
    except ValidationError as error:
        raise RuntimeError(f"internal contract violation: {error}") from None


def parse_item(item: Any) -> SignalSnapshot | list[FieldError]:
    """One batch item: a snapshot, or its errors (paths relative to the item)."""
    try:
        return SignalSnapshot.model_validate(item)
    except ValidationError as error:
        return field_errors(error.errors(include_url=False, include_input=False))


def batch_items(parsed: list[SignalSnapshot | list[FieldError]], results: list) -> list[BatchItem]:
    """Items in request order: the next result for each valid snapshot, errors for the others."""
    scored = iter(results)
    return [
        BatchItem(index=i, result=next(scored))
        if isinstance(p, SignalSnapshot)
        else BatchItem(index=i, errors=p)
        for i, p in enumerate(parsed)
    ]


@bentoml.service(
    name="influence",
    workers=1,
    http={"host": "127.0.0.1", "port": 3000},
    traffic={"timeout": REQUEST_TIMEOUT_S},
)
class InfluenceService:
    """Influence score 1-100: score, explain and advise from a user's signal snapshot."""

    def __init__(self) -> None:
        self.scorer = load_scorer(ServingSettings())
        # The model and the imports are the bulk of the heap and live as long as the worker:
        # out of the collector's sight, they no longer make full collections (tail latency) slow.
        gc.collect()
        gc.freeze()

    # async on purpose: one request is a millisecond or two of CPU under the GIL, so a hop to
    # BentoML's worker thread (and back) would cost about as much as the scoring itself and buy
    # no concurrency. The batch endpoint, ~100x longer, keeps the thread.
    @bentoml.api(route="/score", input_spec=ScoreRequest)
    async def score(self, snapshot: SignalSnapshot, explain: bool = True) -> ScoreResponse:
        """Score one user's signal snapshot; with explain (default) also points per network and
        family, the top factors and up to three tips."""
        with internal_errors():
            (result,) = self.scorer.score([snapshot], explain)
        return ScoreResponse.model_construct(
            **dict(result), model_version=self.scorer.model_version
        )

    @bentoml.api(route="/score_batch", input_spec=BatchRequest)
    def score_batch(self, snapshots: list[Any], explain: bool = False) -> BatchResponse:
        """Score up to 1,000 snapshots; one item per snapshot, in order. An invalid snapshot gets
        its own errors and does not sink the others."""
        parsed = [parse_item(item) for item in snapshots]
        valid = [p for p in parsed if isinstance(p, SignalSnapshot)]
        with internal_errors():
            items = batch_items(parsed, self.scorer.score(valid, explain))
        return BatchResponse(
            results=items,
            scored=len(valid),
            rejected=len(parsed) - len(valid),
            model_version=self.scorer.model_version,
        )


install_request_timeout()
# the score-history lookups: a FastAPI app (GET routes with path parameters), store read per request
InfluenceService.mount_asgi_app(lookup_app(), path="/users")
InfluenceService.add_asgi_middleware(
    RequestGuard, api_paths=tuple(api.route for api in InfluenceService.apis.values())
)
