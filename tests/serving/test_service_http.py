"""The service through its full HTTP stack (BentoML's ASGI app, in process)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from features.snapshot import SignalSnapshot
from serving.contracts import BatchResponse, ScoreResponse
from serving.errors import field_errors
from serving.samples import EXAMPLE, random_snapshot_dicts
from serving.settings import ServingSettings
from serving.tips import what_ifs
from training.bundle import ModelBundle


def _score(client, snapshot: dict, explain: bool = True) -> dict:
    response = client.post("/score", json={"snapshot": snapshot, "explain": explain})
    assert response.status_code == 200, response.text
    return response.json()


def test_score_answers_the_contract(client, bundle_dir):
    body = _score(client, EXAMPLE)
    assert body["model_version"] == ModelBundle.load(bundle_dir).version
    assert body["user_id"] == "alice"
    assert 1 <= body["score"] <= 100 and 0 <= body["percentile"] <= 100
    assert isinstance(body["provisional"], bool)
    gap = body["score"] - body["baseline"]
    assert sum(body["networks"].values()) == pytest.approx(gap, abs=1e-6)
    assert sum(body["families"].values()) == pytest.approx(gap, abs=1e-6)
    assert 0 < len(body["factors"]) <= 5
    assert {"signal", "meaning", "network", "family", "value", "points"} <= set(body["factors"][0])
    assert len(body["tips"]) <= 3 and all(t["gain"] > 0 for t in body["tips"])


def test_explain_false_skips_explanation_and_tips(client):
    body = _score(client, EXAMPLE, explain=False)
    assert not {"baseline", "networks", "families", "factors", "tips"} & set(body)
    assert body["score"] == _score(client, EXAMPLE)["score"]


def test_tip_gains_are_rescored_what_ifs(client):
    body = _score(client, EXAMPLE)
    assert body["tips"], "the example user should get at least one tip"
    by_action = {w.action: w.snapshot for w in what_ifs(SignalSnapshot.model_validate(EXAMPLE))}
    for tip in body["tips"]:
        changed = by_action[tip["action"]].model_dump(mode="json", exclude_none=True)
        rescored = _score(client, changed, explain=False)["score"]
        assert tip["gain"] == pytest.approx(rescored - body["score"], abs=0.051)


def test_partial_snapshot_with_one_network_and_one_field_scores(client):
    body = _score(client, {"networks": {"linkedin": {"window_days": 9}}})
    assert 1 <= body["score"] <= 100 and "user_id" not in body


def test_batch_keeps_order_and_isolates_invalid_items(client):
    good = random_snapshot_dicts(5, seed=3)
    bad = {"networks": {"twitter": {"window_days": 30, "followers": -1}}}
    snapshots = [good[0], bad, good[1], 42, good[2]]
    response = client.post("/score_batch", json={"snapshots": snapshots})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["scored"], body["rejected"]) == (3, 2)
    assert [item["index"] for item in body["results"]] == [0, 1, 2, 3, 4]
    assert "result" not in body["results"][1]
    assert body["results"][1]["errors"] == [
        {"path": "networks.twitter.followers", "problem": "Input should be greater than or equal to 0"}
    ]
    assert body["results"][3]["errors"][0]["path"] == ""
    for i in (0, 2, 4):
        item = body["results"][i]["result"]
        assert item["user_id"] == snapshots[i]["user_id"]
        assert item["score"] == pytest.approx(_score(client, snapshots[i], explain=False)["score"])
        assert "tips" not in item


def _alone(item) -> list[dict]:
    """The errors of one snapshot validated on its own."""
    try:
        SignalSnapshot.model_validate(item)
    except ValidationError as error:
        return [e.model_dump() for e in field_errors(error.errors(include_url=False))]
    raise AssertionError(f"{item!r} is valid")


def test_batch_items_get_the_errors_they_get_alone_and_the_answer_is_the_contract(client):
    good = random_snapshot_dicts(4, seed=13)
    del good[1]["user_id"]
    bad = [
        {"networks": {"myspace": {"window_days": 30}}},
        {"networks": {"twitter": [{"window_days": 7}, {"window_days": 30, "posts": -1, "foo": 1}]}},
        {"networks": {"twitter": {"window_days": 7, "active_days": 9}}},
        {"networks": {"twitter": {"window_days": 7, "received": {"share": 1}}}},
        {"networks": {"twitter": {"window_days": 7}}, "as_of": "soon"},
        [1, 2],
        None,
    ]
    snapshots = [good[0], *bad[:4], good[1], *bad[4:], good[2], good[3]]
    response = client.post("/score_batch", json={"snapshots": snapshots})
    assert response.status_code == 200, response.text
    answer = BatchResponse.model_validate_json(response.content)
    assert (answer.scored, answer.rejected) == (4, len(bad))
    body = response.json()
    for i, (item, snapshot) in enumerate(zip(body["results"], snapshots, strict=True)):
        assert item["index"] == i
        if snapshot in bad:
            alone = _alone(snapshot)
            assert set(item) == {"index", "error", "errors"} and item["errors"] == alone
            assert item["error"] == f"invalid snapshot: {len(alone)} problem" + "s" * (len(alone) > 1)
        else:
            assert set(item) == {"index", "result"}
            assert item["result"] == {k: v for k, v in _score(client, snapshot, explain=False).items()
                                      if k != "model_version"}
    assert "user_id" not in body["results"][5]["result"]


def test_score_without_explanation_is_the_contract(client):
    response = client.post("/score", json={"snapshot": EXAMPLE, "explain": False})
    assert response.headers["content-type"] == "application/json"
    answer = ScoreResponse.model_validate_json(response.content)
    assert set(response.json()) == {"user_id", "score", "percentile", "provisional", "model_version"}
    assert answer.user_id == "alice"
    anonymous = _score(client, {"networks": {"linkedin": {"window_days": 9}}}, explain=False)
    assert "user_id" not in anonymous and 1 <= anonymous["score"] <= 100


def test_batch_with_explanations(client):
    snapshots = random_snapshot_dicts(3, seed=4)
    response = client.post("/score_batch", json={"snapshots": snapshots, "explain": True})
    BatchResponse.model_validate_json(response.content)
    body = response.json()
    for item, snapshot in zip(body["results"], snapshots):
        single = _score(client, snapshot)
        assert item["result"]["networks"] == pytest.approx(single["networks"])
        assert item["result"]["tips"] == single["tips"]


def test_batch_of_a_thousand_and_no_more(client):
    snapshots = random_snapshot_dicts(1000, seed=5)
    body = client.post("/score_batch", json={"snapshots": snapshots}).json()
    assert body["scored"] == 1000
    assert all(1 <= item["result"]["score"] <= 100 for item in body["results"])
    over = client.post("/score_batch", json={"snapshots": snapshots + snapshots[:1]})
    assert over.status_code == 400
    assert over.json()["errors"][0]["path"] == "snapshots"
    assert "1000" in over.json()["errors"][0]["problem"]


def test_empty_batch_is_refused(client):
    response = client.post("/score_batch", json={"snapshots": []})
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "snapshots"


def test_repeated_user_ids_in_a_batch_are_scored_separately(client):
    a, b = random_snapshot_dicts(2, seed=6)
    b["user_id"] = a["user_id"]
    body = client.post("/score_batch", json={"snapshots": [a, b]}).json()
    scores = [item["result"]["score"] for item in body["results"]]
    assert scores[0] == pytest.approx(_score(client, a, explain=False)["score"])
    assert scores[1] == pytest.approx(_score(client, b, explain=False)["score"])


def _twitter(**signals) -> dict:
    return {"snapshot": {"networks": {"twitter": {"window_days": 30, **signals}}}}


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        ({"snapshot": {"networks": {}}}, "snapshot.networks", "at least 1"),
        ({"snapshot": {"networks": {"myspace": {"window_days": 30}}}}, "snapshot.networks.myspace",
         "allowed: twitter, facebook"),
        ({"snapshot": {"networks": {"twitter": {"posts": 3}}}},
         "snapshot.networks.twitter.window_days", "missing"),
        (_twitter(received={"share": 2}), "snapshot.networks.twitter.received",
         "'share' is not allowed on twitter; allowed: like, reply, retweet"),
        (_twitter(received={"clap": 2}), "snapshot.networks.twitter.received.clap",
         "unknown action 'clap' on twitter; allowed: like, reply, retweet"),
        (_twitter(posts=-1), "snapshot.networks.twitter.posts", "greater than or equal to 0"),
        (_twitter(posts=1e12), "snapshot.networks.twitter.posts", "less than or equal"),
        (_twitter(posts=True), "snapshot.networks.twitter.posts", "valid number"),
        ({"snapshot": {"networks": {"twitter": {"window_days": "30"}}}},
         "snapshot.networks.twitter.window_days", "valid integer"),
        ({**_twitter(), "explain": "yes"}, "explain", "valid boolean"),
        ({"snapshots": []}, "snapshot", "missing"),
    ],
)
def test_malformed_requests_get_400_naming_the_field(client, body, path, words):
    response = client.post("/score", json=body)
    assert response.status_code == 400
    errors = {e["path"]: e["problem"] for e in response.json()["errors"]}
    assert path in errors, errors
    assert words in errors[path]


@pytest.mark.parametrize("raw", [b'{"snapshot": {"networks": {"twitter": {"window_days": 30, "posts": NaN}}}}',
                                 b'{"snapshot": {"networks": {"twitter": {"window_days": 30, "posts": Infinity}}}}',
                                 b'{"snapshot": {"networks": {"twitter": {"window_days": 30, "posts": 1e999}}}}'])
def test_nan_and_infinity_are_refused(client, raw):
    response = client.post("/score", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "snapshot.networks.twitter.posts"


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'"x"', b"null", b"\xff\xfe"])
def test_bodies_that_are_not_a_request_object_get_400(client, raw):
    response = client.post("/score", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"].startswith("invalid request")


def test_unsupported_media_type_is_415(client):
    response = client.post("/score", content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


def test_unknown_route_and_wrong_method_are_json(client):
    assert client.get("/nowhere").json()["error"] == "Not Found"
    assert client.get("/score").status_code == 405


def test_health_and_readiness(client):
    # /metrics needs the Prometheus multiprocess folder that `bentoml serve` sets up: it is
    # checked against a real server in test_real_server.py, like the API key.
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_openapi_documents_both_endpoints(client):
    spec = client.get("/docs.json").json()
    assert {"/score", "/score_batch"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert "SignalSnapshot" in schemas and "TwitterSignals" in schemas
    assert set(schemas["TwitterActions"]["properties"]) == {"like", "reply", "retweet", "quote", "mention", "list_add"}
    score_ok = spec["paths"]["/score"]["post"]["responses"]["200"]["content"]["application/json"]
    assert "model_version" in str(score_ok) or "ScoreResponse" in str(score_ok)


def test_scores_stay_within_1_and_100_at_the_extremes(client):
    zeros = {"networks": {n: {"window_days": 1, "followers": 0, "posts": 0} for n in ("twitter", "youtube")}}
    huge = {"networks": {"twitter": {"window_days": 365, "followers": 1e10, "posts": 1e10,
                                     "received": {"like": 1e10, "retweet": 1e10},
                                     "unique_engagers": 1e10, "engager_influence": 100}}}
    for snapshot in (zeros, huge):
        body = _score(client, snapshot)
        assert 1 <= body["score"] <= 100 and not math.isnan(body["percentile"])


def test_body_over_the_limit_is_413_before_it_is_read(client):
    limit = ServingSettings().max_body_bytes
    response = client.post("/score_batch", content=b" " * (limit + 1),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert f"{limit} bytes" in response.json()["error"]


def test_the_curl_example_of_make_serve_scores(client):
    from serving.cli import CURL_EXAMPLE

    response = client.post("/score", content=CURL_EXAMPLE, headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json()["user_id"] == "alice"


def test_explained_batches_are_bounded(client):
    snapshots = random_snapshot_dicts(101, seed=8)
    response = client.post("/score_batch", json={"snapshots": snapshots, "explain": True})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["path"] == "snapshots" and "at most 100 with explain=true" in error["problem"]
    ok = client.post("/score_batch", json={"snapshots": snapshots[:100], "explain": True})
    assert ok.status_code == 200 and ok.json()["scored"] == 100


def test_the_service_times_requests_out_with_request_timeout(service_app):
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    from serving.runtime import RequestTimeout

    layers = [m.cls for m in service_app.user_middleware]
    assert RequestTimeout in layers and TimeoutMiddleware is RequestTimeout
