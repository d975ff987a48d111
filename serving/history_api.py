"""The score-history lookups the service answers (`GET /users/{user_id}/score`,
`GET /users/{user_id}/history`): pure functions from a user's rows to the answers, and the
FastAPI app the service mounts under `/users`. The store they read is `serving.history`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from serving.history import NEW_ACCOUNT, HistoryStore, StoreBusy, default_store

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
    score: float = Field(description="published score 1-100 (smoothed)")
    percentile: float | None
    provisional: bool | None
    model_version: str
    score_delta: ScoreDelta
    networks: dict[str, float] = Field(
        default_factory=dict, description="points of the model's score per linked network"
    )


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


class UnknownUser(_Response):
    detail: str
    user_id: str


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


def user_score(user_id: str, history: pl.DataFrame, decimals: int = 2) -> UserScore | None:
    """The latest published score of a user with its changes, None for a user without history."""
    if history.height == 0:
        return None
    latest = history.sort("date").row(-1, named=True)
    points = latest["points"] or {}
    return UserScore(
        user_id=user_id,
        date=latest["date"],
        score=latest["score"],
        percentile=latest["percentile"],
        provisional=latest["provisional"],
        model_version=latest["model_version"],
        score_delta=score_delta(history, decimals),
        networks={  # as the service explains: no hold-back bucket without a hold-back, no -0.0
            k: round(v, decimals) + 0.0
            for k, v in points.items()
            if v is not None and not (k == NEW_ACCOUNT and v == 0)
        },
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
            for row in rows.with_columns(pl.col("raw_score").round(4)).iter_rows(named=True)
        ],
    )


# --------------------------------------------------------------------------------------------
# the HTTP lookups (mounted on the BentoML service under /users)
# --------------------------------------------------------------------------------------------

BUSY_RETRY_SECONDS = 2.0
"""A lookup waits this long for the daily job's write to finish before answering 503."""


def lookup_app(store: Callable[[], HistoryStore] = default_store, max_days: Callable[[], int] | None = None):
    """A FastAPI app with `GET /{user_id}/score` and `GET /{user_id}/history?days=`; the store is
    resolved on each request, so the app can be built before any history exists."""
    from fastapi import FastAPI, Query
    from fastapi.responses import JSONResponse

    max_days = max_days or _default_max_days
    app = FastAPI(title="Influence score history", openapi_url=None, docs_url=None, redoc_url=None)
    responses: dict = {
        404: {"model": UnknownUser, "description": "no score history for this user"},
        503: {"description": "the daily job is writing the history; retry shortly"},
    }

    def _history(user_id: str, days: int) -> pl.DataFrame:
        return store().user_history(user_id, days, timeout=BUSY_RETRY_SECONDS)

    def _not_found(user_id: str) -> JSONResponse:
        detail = (
            f"no score history for user {user_id!r}"
            if store().exists()
            else f"no score history for user {user_id!r}: the history is empty "
            "(run `influence score-daily` or `make backfill`)"
        )
        return JSONResponse({"detail": detail, "user_id": user_id}, status_code=404)

    def _busy() -> JSONResponse:
        return JSONResponse(
            {"detail": "the score history is being written; retry in a few seconds"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.get("/{user_id}/score", response_model=UserScore, responses=responses)
    def get_score(user_id: str):
        """The latest published score with its day, week and month changes."""
        try:
            found = user_score(user_id, _history(user_id, LOOKUP_DAYS + 1))
        except StoreBusy:
            return _busy()
        return found if found is not None else _not_found(user_id)

    @app.get("/{user_id}/history", response_model=UserHistory, responses=responses)
    def get_history(user_id: str, days: int = Query(90, ge=1, description="days, ending on the latest")):
        """The published scores of the last `days` days (days without a score are absent)."""
        limit = max_days()
        if days > limit:
            return JSONResponse(
                {"detail": [{"loc": ["query", "days"], "msg": f"days must be at most {limit}",
                             "type": "less_than_equal", "input": days}]},
                status_code=422,
            )
        try:
            found = user_series(user_id, _history(user_id, days), days)
        except StoreBusy:
            return _busy()
        return found if found is not None else _not_found(user_id)

    return app


def _default_max_days() -> int:
    from influence.params import default_params

    return default_params().score_daily.history_max_days
