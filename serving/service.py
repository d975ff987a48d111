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
client with many users has /score_batch (1,000 in one validation pass, one featurize pass and
one model call on every core, ~0.1 ms a user against ~1 ms for one). It would pay only under
many concurrent single-user clients.

Answers without explanations (/score with explain=false, every /score_batch) are serialised
straight from plain values (`json_response`): the same JSON as the documented models (tested
against them), without a model object built, validated and dumped per item. The ranges the
contract promises (score 1-100, percentile 0-100) are checked on the score arrays instead
(`Scorer.score_rows`).

Errors: any malformed request gets a 4xx `ErrorBody` naming the field path and the problem (see
`serving.guard` for 401/413/415 and the shape of 400s). Settings: `serving.settings`.

Adding endpoints: a POST endpoint is another `@bentoml.api` method; GET routes (the score
history, `/users/...`) are a FastAPI app mounted on the service (`mount_asgi_app`, below), which
BentoML also lists in the OpenAPI document. The request guard covers every path except the open
ones, and leaves the JSON errors of mounted apps as they are.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import bentoml
import pydantic_core
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response

from features.snapshot import SignalSnapshot
from serving.contracts import BatchRequest, BatchResponse, ScoreRequest, ScoreResponse, ScoreResult
from serving.errors import FieldError, field_errors
from serving.guard import RequestGuard, install_request_timeout
from serving.history_api import lookup_app
from serving.scorer import load_scorer
from serving.settings import REQUEST_TIMEOUT_S, ServingSettings

_SNAPSHOTS = TypeAdapter(list[SignalSnapshot])


@contextmanager
def internal_errors() -> Iterator[None]:
    """A pydantic error raised while scoring is our bug, not the client's: BentoML would answer
    it with a 400, so it is re-raised as a plain error (500) instead."""
    try:
        yield
    except ValidationError as error:
        raise RuntimeError(f"internal contract violation: {error}") from None


def parse_items(items: Sequence[Any]) -> list[SignalSnapshot | list[FieldError]]:
    """Batch items: a snapshot, or the item's errors (paths relative to the item).

    The whole list is validated in one pass; only when some items fail are the others
    validated again on their own (a failed pass returns errors, not the valid snapshots)."""
    try:
        return list(_SNAPSHOTS.validate_python(items))
    except ValidationError as error:
        problems: dict[int, list[dict[str, Any]]] = {}
        for e in error.errors(include_url=False, include_input=False):
            index, *loc = e["loc"]
            problems.setdefault(index, []).append({**e, "loc": tuple(loc)})
    valid = iter(_SNAPSHOTS.validate_python([x for i, x in enumerate(items) if i not in problems]))
    return [field_errors(problems[i]) if i in problems else next(valid) for i in range(len(items))]


def release_free_memory() -> None:
    """Give the heap pages freed since start-up back to the OS. Loading the model (its text
    parsed, the compiled trees built or loaded and proven) leaves ~13 MB of them, which glibc
    keeps mapped otherwise. Not glibc: nothing to do."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def json_response(payload: Any) -> Response:
    """An answer serialised in one call (plain values and contract models alike): a bulk answer
    as plain dicts skips building and dumping a model object per item, ~6 ms in 1,000."""
    return Response(pydantic_core.to_json(payload), media_type="application/json")


def batch_payload(
    parsed: Sequence[SignalSnapshot | list[FieldError]],
    results: Sequence[ScoreResult | dict[str, Any]],
    model_version: str,
) -> dict[str, Any]:
    """A `BatchResponse` as plain values: items in request order, the next result for each
    valid snapshot, errors for the others."""
    scored = iter(results)
    items = [
        {"index": i, "result": next(scored)}
        if isinstance(p, SignalSnapshot)
        else {"index": i, "errors": p}
        for i, p in enumerate(parsed)
    ]
    return {
        "results": items,
        "scored": len(results),
        "rejected": len(parsed) - len(results),
        "model_version": model_version,
    }


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
        release_free_memory()

    # async on purpose: one request is a millisecond or two of CPU under the GIL, so a hop to
    # BentoML's worker thread (and back) would cost about as much as the scoring itself and buy
    # no concurrency. The batch endpoint, ~100x longer, keeps the thread.
    @bentoml.api(route="/score", input_spec=ScoreRequest)
    async def score(self, snapshot: SignalSnapshot, explain: bool = True) -> ScoreResponse:
        """Score one user's signal snapshot; with explain (default) also points per network and
        family, the top factors and up to three tips."""
        version = self.scorer.model_version
        with internal_errors():
            if not explain:
                (row,) = self.scorer.score_rows([snapshot])
                return json_response({**row, "model_version": version})
            (result,) = self.scorer.score([snapshot], explain)
        return ScoreResponse.model_construct(**dict(result), model_version=version)

    @bentoml.api(route="/score_batch", input_spec=BatchRequest)
    def score_batch(self, snapshots: list[Any], explain: bool = False) -> BatchResponse:
        """Score up to 1,000 snapshots; one item per snapshot, in order. An invalid snapshot gets
        its own errors and does not sink the others."""
        parsed = parse_items(snapshots)
        valid = [p for p in parsed if isinstance(p, SignalSnapshot)]
        with internal_errors():
            results = (
                self.scorer.score(valid, explain=True) if explain else self.scorer.score_rows(valid)
            )
        return json_response(batch_payload(parsed, results, self.scorer.model_version))


install_request_timeout()
# the score-history lookups: a FastAPI app (GET routes with path parameters), store read per request
InfluenceService.mount_asgi_app(lookup_app(), path="/users")
InfluenceService.add_asgi_middleware(
    RequestGuard, api_paths=tuple(api.route for api in InfluenceService.apis.values())
)
