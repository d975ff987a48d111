"""The answers of the scoring endpoints, as plain JSON values, from validated requests: what the
service sends and what its OpenAPI document shows as examples (`serving.apidoc`), one code path.

Answers without explanations (/score with explain=false, /score_batch) are built from plain
values (`Scorer.score_rows`), never from a model object per item: the same JSON as the documented
models (tested against them), ~6 ms less for 1,000. Numbers are rounded as `serving.rounding`
says, here for plain rows and in `ScoreResult`'s serializer for the others.

Batch items are validated in chunks of `CHUNK` (a valid chunk in one call; an invalid one item by
item), each call short, so that the event loop gets the interpreter between them. Errors cost
~10x what valid keys cost: past `MAX_BATCH_ERRORS` problems in a batch the batch is refused as a
whole (`TooManyProblems`) instead of being validated to its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pydantic_core
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response

from features.snapshot import SignalSnapshot
from serving.contracts import ScoreResult
from serving.errors import ErrorBody, FieldError, field_errors, invalid_body, problems_summary
from serving.rounding import rounded_score
from serving.scorer import Scorer
from serving.settings import MAX_BATCH_ERRORS, MAX_LISTED_ERRORS, MAX_LISTED_ITEM_ERRORS

_SNAPSHOTS = TypeAdapter(list[SignalSnapshot])
CHUNK = 8


@dataclass(frozen=True)
class ItemProblems:
    """What is wrong with one batch item: the first problems and how many there are."""

    errors: list[FieldError]
    total: int


class TooManyProblems(ValueError):
    """A batch with more than `MAX_BATCH_ERRORS` problems: refused as a whole."""

    def __init__(self, found: int, first: list[FieldError]) -> None:
        super().__init__(f"more than {MAX_BATCH_ERRORS} problems in the snapshots")
        self.found, self.first = found, first

    def body(self) -> ErrorBody:
        return ErrorBody(
            error=f"invalid request: more than {MAX_BATCH_ERRORS} problems in the snapshots "
            f"({self.found} in the first items; the rest was not validated)",
            errors=self.first[:MAX_LISTED_ERRORS]
            or [FieldError(path="snapshots", problem=f"more than {MAX_BATCH_ERRORS} problems")],
        )


def _grouped(error: ValidationError) -> dict[int, list[dict[str, Any]]]:
    problems: dict[int, list[dict[str, Any]]] = {}
    for e in error.errors(include_url=False, include_input=False, include_context=False):
        index, *loc = e["loc"]
        problems.setdefault(index, []).append({**e, "loc": tuple(loc)})
    return problems


def parse_items(items: Sequence[Any]) -> list[SignalSnapshot | ItemProblems]:
    """Batch items: a snapshot, or the item's problems (paths relative to the item). Raises
    TooManyProblems past `MAX_BATCH_ERRORS` problems."""
    out: list[SignalSnapshot | ItemProblems] = []
    found = 0
    first: list[FieldError] = []
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        try:
            out.extend(_SNAPSHOTS.validate_python(chunk))
            continue
        except ValidationError as error:
            found += error.error_count()
            if found > MAX_BATCH_ERRORS:  # checked before the errors are made Python objects
                raise TooManyProblems(found, first) from None
            problems = _grouped(error)
        # a failed pass returns errors, not the valid snapshots: those are validated again
        valid = iter(_SNAPSHOTS.validate_python([x for i, x in enumerate(chunk) if i not in problems]))
        for i in range(len(chunk)):
            if i not in problems:
                out.append(next(valid))
                continue
            listed = field_errors(problems[i][:MAX_LISTED_ITEM_ERRORS])
            first.extend(field_errors(problems[i][:MAX_LISTED_ERRORS], prefix=("snapshots", start + i)))
            out.append(ItemProblems(listed, len(problems[i])))
    return out


def json_response(payload: Any, status: int = 200) -> Response:
    """An answer serialised in one call (plain values and contract models alike)."""
    return Response(pydantic_core.to_json(payload), status_code=status, media_type="application/json")


def batch_payload(
    parsed: Sequence[SignalSnapshot | ItemProblems],
    results: Sequence[ScoreResult | dict[str, Any]],
    model_version: str,
) -> dict[str, Any]:
    """A `BatchResponse` as plain values: items in request order, the next result for each
    valid snapshot, the problems of the others."""
    scored = iter(results)
    items = [
        {"index": i, "result": next(scored)}
        if isinstance(p, SignalSnapshot)
        else {"index": i, "error": problems_summary("invalid snapshot", p.total, len(p.errors)),
              "errors": p.errors}
        for i, p in enumerate(parsed)
    ]
    return {
        "results": items,
        "scored": len(results),
        "rejected": len(parsed) - len(results),
        "model_version": model_version,
    }


def score_answer(scorer: Scorer, snapshot: SignalSnapshot, explain: bool) -> dict[str, Any] | ScoreResult:
    """The /score answer without `model_version` (a plain row, or the explained result)."""
    if not explain:
        (row,) = scorer.score_rows([snapshot])
        return rounded_score(row)
    (result,) = scorer.score([snapshot], explain=True)
    return result


def batch_answer(scorer: Scorer, snapshots: Sequence[Any], explain: bool) -> dict[str, Any]:
    """The /score_batch answer of raw items (raises TooManyProblems)."""
    parsed = parse_items(snapshots)
    valid = [p for p in parsed if isinstance(p, SignalSnapshot)]
    if explain:
        results: Sequence[Any] = scorer.score(valid, explain=True)
    else:
        results = [rounded_score(row) for row in scorer.score_rows(valid)]
    return batch_payload(parsed, results, scorer.model_version)


def invalid_request(errors: Any) -> ErrorBody:
    """The 400 answer of a request that fails validation (as the service gives it)."""
    return invalid_body(field_errors(errors[:MAX_LISTED_ERRORS]), total=len(errors))
