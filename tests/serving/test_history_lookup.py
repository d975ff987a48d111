"""Score lookups: deltas on hand-built histories, the series, and the HTTP answers (404, 400, all
in the service's one error shape)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from historybuild import history_rows

from serving.history import DayRun, HistoryStore
from serving.history_api import lookup_app, score_delta, user_score, user_series

LATEST = date(2026, 10, 31)


def _history(scores_by_offset: dict[int, float], user: str = "a") -> pl.DataFrame:
    """One user's rows: {days before LATEST: published score}."""
    return pl.concat(
        [history_rows(LATEST - timedelta(days=k), {user: s}) for k, s in scores_by_offset.items()]
    )


def test_deltas_compare_with_exactly_one_seven_and_thirty_days_before():
    history = _history({0: 50.0, 1: 48.5, 7: 45.25, 30: 40.0, 31: 10.0, 6: 1.0})
    assert score_delta(history).model_dump() == {
        "day_change": 1.5,
        "week_change": 4.75,
        "month_change": 10.0,
    }


def test_missing_days_give_null_deltas_not_neighbours():
    # day 1 and day 30 are missing; days 2, 8 and 29 must not stand in for them
    history = _history({0: 50.0, 2: 49.0, 7: 47.0, 8: 46.0, 29: 30.0, 31: 30.0})
    assert score_delta(history).model_dump() == {
        "day_change": None,
        "week_change": 3.0,
        "month_change": None,
    }


def test_a_first_day_has_no_deltas():
    assert score_delta(_history({0: 50.0})).model_dump() == {
        "day_change": None,
        "week_change": None,
        "month_change": None,
    }


def test_user_score_is_the_latest_row_with_its_points():
    found = user_score("a", _history({3: 44.0, 0: 47.0, 1: 46.0}))
    assert found is not None
    assert (found.date, found.score, found.model_version) == (LATEST, 47.0, "1")
    assert found.score_delta.day_change == 1.0
    assert found.networks == {"twitter": 7.0}
    assert user_score("a", _history({0: 1.0}).clear()) is None


def test_points_are_against_the_baseline_and_add_up_to_the_model_score_in_cents():
    rows = _history({0: 47.0}).with_columns(
        pl.col("raw_score").alias("raw_score") + 0.123456,
        # model score 47.123456, baseline 43.119: the points add up to 4.004456
        pl.struct(twitter=pl.lit(4.661), instagram=pl.lit(-1.337), cross_network=pl.lit(0.6811),
                  not_linked=pl.lit(-0.000644), new_account=pl.lit(0.0)).alias("points"),
    )
    found = user_score("a", rows, baseline=43.119)
    assert (found.model_score, found.baseline) == (47.12, 43.12)
    # rounded one by one they would add up to 3.99; the cent goes to the part that lost most
    assert found.networks == {"twitter": 4.66, "instagram": -1.34, "cross_network": 0.68,
                              "not_linked": 0.0}
    assert round(sum(found.networks.values()), 2) == round(found.model_score - found.baseline, 2)


def test_series_covers_the_days_asked_ending_on_the_latest():
    series = user_series("a", _history({k: 40.0 + k for k in range(0, 20, 2)}), days=7)
    assert series is not None
    assert (series.first, series.last) == (LATEST - timedelta(days=6), LATEST)
    assert [p.date for p in series.series] == [LATEST - timedelta(days=k) for k in (6, 4, 2, 0)]


# --- over HTTP --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    store = HistoryStore(tmp_path_factory.mktemp("lookup") / "scores.duckdb", lock_timeout_seconds=2)
    for k in range(40):
        day = LATEST - timedelta(days=k)
        scores = {"alice": 60.0 - 0.25 * k} | ({"bob": 30.0} if k in (0, 5) else {})
        store.replace_day(history_rows(day, scores, model_version="7"), DayRun(day, "7"))
    return TestClient(lookup_app(lambda: store, max_days=365))


def test_get_score_answers_the_latest_score_with_its_changes(client: TestClient):
    response = client.get("/alice/score")
    assert response.status_code == 200
    body = response.json()
    assert body["date"] == LATEST.isoformat()
    assert body["score"] == 60.0
    assert body["model_version"] == "7"
    assert body["score_delta"] == {"day_change": 0.25, "week_change": 1.75, "month_change": 7.5}
    assert body["percentile"] == 60.0


def test_a_user_without_enough_history_gets_nulls_for_what_cannot_be_computed(client: TestClient):
    body = client.get("/bob/score").json()
    assert body["score_delta"] == {"day_change": None, "week_change": None, "month_change": None}


def test_get_history_returns_the_series(client: TestClient):
    body = client.get("/alice/history", params={"days": 10}).json()
    assert body["days"] == 10 and body["last"] == LATEST.isoformat()
    assert len(body["series"]) == 10
    assert body["series"][0]["date"] == (LATEST - timedelta(days=9)).isoformat()
    assert len(client.get("/alice/history").json()["series"]) == 40  # default 90 days, 40 stored


def test_unknown_users_get_404_with_a_clear_message(client: TestClient):
    for path in ("/nobody/score", "/nobody/history"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json() == {
            "error": "no score history for user 'nobody'",
            "errors": [{"path": "user_id", "problem": "no score history for this user"}],
        }


def test_an_empty_history_says_how_to_fill_it(tmp_path: Path):
    client = TestClient(lookup_app(lambda: HistoryStore(tmp_path / "none.duckdb")))
    response = client.get("/alice/score")
    assert response.status_code == 404
    assert "influence score-daily" in response.json()["errors"][0]["problem"]


@pytest.mark.parametrize("days", ["0", "-3", "abc", "366"])
def test_bad_day_counts_get_400_naming_days(client: TestClient, days: str):
    response = client.get("/alice/history", params={"days": days})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "errors"} and body["errors"][0]["path"] == "days"


def test_the_documented_days_maximum_is_the_one_enforced(client: TestClient):
    parameters = client.app.openapi()["paths"]["/{user_id}/history"]["get"]["parameters"]
    (days,) = [p for p in parameters if p["name"] == "days"]
    assert days["schema"]["maximum"] == 365
    assert client.get("/alice/history", params={"days": 365}).status_code == 200
    assert client.get("/alice/history", params={"days": 366}).status_code == 400
