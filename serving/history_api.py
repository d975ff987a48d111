"""The score-history lookups the service answers (`GET /users/{user_id}/score`,
`GET /users/{user_id}/history`): pure functions from a user's rows to the answers, and the
FastAPI app the service mounts under `/users`. The store they read is `serving.history`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from serving.errors import ErrorBody, FieldError
from serving.history import NEW_ACCOUNT, HistoryStore, StoreBusy, default_store
from serving.rounding import parts_to_total

LOOKUP_DAYS = 30
"""Days of a user's history the score lookup reads: enough for the month change."""
DELTA_LAGS = {"day_change": 1, "week_change": 7, "month_change": 30}


# --------------------------------------------------------------------------------------------
# lookups (pure)
# --------------------------------------------------------------------------------------------


Day = date  # response fields are named `date`: the annotation needs another name


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScoreDelta(_Response):
    """Published score of the latest day minus that of 1, 7 and 30 days before; null when the
    user has no score on that exact day."""

    day_change: float | None = None
    week_change: float | None = None
    month_change: float | None = None


class UserScore(_Response):
    user_id: str
    date: Day = Field(description="the day of the latest published score")
    score: float = Field(description="published score 1-100 (smoothed: it follows the model's "
                         "score of each day with a 3-day half-life)")
    model_score: float = Field(description="the model's own score that day, before smoothing")
    percentile: float | None
    provisional: bool | None
    model_version: str
    score_delta: ScoreDelta
    baseline: float | None = Field(
        None, description="the model's score of an average user that day: the points below "
        "are measured from it")
    networks: dict[str, float] = Field(
        default_factory=dict,
        description="points per linked network against the baseline (negative: that network "
        "holds the score below the baseline); with cross_network, not_linked and new_account "
        "they add up to model_score - baseline")
class HistoryPoint(_Response):
    date: Day
    score: float
    raw_score: float
    percentile: float | None
    model_version: str


class UserHistory(_Response):
    user_id: str
    days: int = Field(description="length of the period asked for, ending on the latest day")
    first: Day
    last: Day
    series: list[HistoryPoint]


def score_delta(history: pl.DataFrame, decimals: int = 2) -> ScoreDelta:
    """Changes of one user's published score, from their rows (any order)."""
    if history.height == 0:
        return ScoreDelta()
    by_day = dict(zip(history["date"].to_list(), history["score"].to_list(), strict=True))
    latest = max(by_day)
    changes = {
        name: (
            round(by_day[latest] - by_day[latest - timedelta(days=lag)], decimals)
            if latest - timedelta(days=lag) in by_day
            else None
        )
        for name, lag in DELTA_LAGS.items()
    }
    return ScoreDelta(**changes)


def user_score(user_id: str, history: pl.DataFrame, decimals: int = 2,
               baseline: float | None = None) -> UserScore | None:
    """The latest published score of a user with its changes, None for a user without history.
    `baseline`: the model's baseline of that day (the store's `runs`)."""
    if history.height == 0:
        return None
    latest = history.sort("date").row(-1, named=True)
    points = {  # as the service explains: no hold-back bucket without a hold-back
        k: v for k, v in (latest["points"] or {}).items()
        if v is not None and not (k == NEW_ACCOUNT and v == 0)
    }
    model_score = round(latest["raw_score"], decimals)
    if baseline is not None:
        baseline = round(baseline, decimals)
        networks = parts_to_total(points, model_score - baseline, decimals)
    else:
        networks = {k: round(v, decimals) + 0.0 for k, v in points.items()}
    return UserScore(
        user_id=user_id,
        date=latest["date"],
        score=round(latest["score"], decimals),
        model_score=model_score,
        percentile=None if latest["percentile"] is None else round(latest["percentile"], decimals),
        provisional=latest["provisional"],
        model_version=latest["model_version"],
        score_delta=score_delta(history, decimals),
        baseline=baseline,
        networks=networks,
    )


def user_series(user_id: str, history: pl.DataFrame, days: int) -> UserHistory | None:
    """The series of the `days` days ending on the user's latest day (days without a score are
    absent), None for a user without history."""
    if history.height == 0:
        return None
    history = history.sort("date")
    last = history["date"][-1]
    first = last - timedelta(days=days - 1)
    rows = history.filter(pl.col("date") >= first)
    return UserHistory(
        user_id=user_id,
        days=days,
        first=first,
        last=last,
        series=[
            HistoryPoint(**{k: row[k] for k in HistoryPoint.model_fields})
            for row in rows.with_columns(pl.col("score", "raw_score", "percentile").round(2))
            .iter_rows(named=True)
        ],
    )


# --------------------------------------------------------------------------------------------
# the HTTP lookups (mounted on the BentoML service under /users)
# --------------------------------------------------------------------------------------------

BUSY_RETRY_SECONDS = 2.0
"""A lookup waits this long for the daily job's write to finish before answering 503."""
EXAMPLE_USER = "1000000001"
"""A user of every simulated world (`make run`'s included): the documented example."""


def _not_found_problem(store: HistoryStore) -> str:
    if store.exists():
        return "no score history for this user"
    return ("no score history for this user: the history is empty (run `influence score-daily` "
            "or `make backfill`)")


def lookup_app(store: Callable[[], HistoryStore] = default_store, max_days: int | None = None):
    """A FastAPI app with `GET /{user_id}/score` and `GET /{user_id}/history?days=`; the store is
    resolved on each request, so the app can be built before any history exists. Errors are the
    service's `ErrorBody` (400 for an invalid `days`, 404 for an unknown user, 503 while the
    daily job writes)."""
    from fastapi import FastAPI, Path, Query
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    limit = max_days or default_max_days()
    app = FastAPI(title="Influence score history", openapi_url=None, docs_url=None, redoc_url=None)
    responses: dict = {
        400: {"model": ErrorBody, "description": "invalid `days`"},
        404: {"model": ErrorBody, "description": "no score history for this user"},
        503: {"model": ErrorBody, "description": "the daily job is writing the history; retry "
              "after the seconds of the Retry-After header"},
    }
    user = Path(description="the user's id, as the daily job scored it")

    def _history(user_id: str, days: int) -> pl.DataFrame:
        return store().user_history(user_id, days, timeout=BUSY_RETRY_SECONDS)

    def _error(status: int, body: ErrorBody, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(body.model_dump(), status_code=status, headers=headers)

    def _not_found(user_id: str) -> JSONResponse:
        return _error(404, ErrorBody(error=f"no score history for user {user_id!r}", errors=[
            FieldError(path="user_id", problem=_not_found_problem(store()))]))

    def _busy() -> JSONResponse:
        return _error(503, ErrorBody(error="the score history is being written; retry in a few "
                                     "seconds"), headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, error: RequestValidationError) -> JSONResponse:
        problems = [FieldError(path=".".join(str(p) for p in e["loc"][1:]) or "", problem=e["msg"])
                    for e in error.errors()]
        n = len(problems)
        return _error(400, ErrorBody(error=f"invalid request: {n} problem{'s' if n != 1 else ''}",
                                     errors=problems))

    @app.get("/{user_id}/score", response_model=UserScore, responses=responses)
    def get_score(user_id: str = user):
        """The latest published score with its day, week and month changes, and the model's
        score of that day explained in points per network against the baseline."""
        try:
            history = _history(user_id, LOOKUP_DAYS + 1)
            baseline = _baseline(store(), history)
        except StoreBusy:
            return _busy()
        found = user_score(user_id, history, baseline=baseline)
        return found if found is not None else _not_found(user_id)

    @app.get("/{user_id}/history", response_model=UserHistory, responses=responses)
    def get_history(user_id: str = user,
                    days: int = Query(90, ge=1, le=limit, description="days, ending on the latest")):
        """The published scores of the last `days` days (days without a score are absent)."""
        try:
            found = user_series(user_id, _history(user_id, days), days)
        except StoreBusy:
            return _busy()
        return found if found is not None else _not_found(user_id)

    return app


def _baseline(store: HistoryStore, history: pl.DataFrame) -> float | None:
    """The baseline of the model on the user's latest day (the store's `runs`)."""
    if history.height == 0:
        return None
    runs = store.runs()
    if not runs.height or "baseline" not in runs.columns:
        return None
    day = runs.filter(pl.col("date") == history["date"].max())
    return day["baseline"][0] if day.height else None


def default_max_days() -> int:
    from influence.params import default_params

    return default_params().score_daily.history_max_days
