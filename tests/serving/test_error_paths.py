"""Client errors name the field path and the problem, with the allowed names for unknown keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.contracts import BatchRequest, ScoreRequest
from serving.errors import field_errors, invalid_body


def _errors(body: dict | bytes) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        if isinstance(body, bytes):
            ScoreRequest.model_validate_json(body)
        else:
            ScoreRequest.model_validate(body)
    return {e.path: e.problem for e in field_errors(caught.value.errors())}


def _twitter(**signals) -> dict:
    return {"snapshot": {"networks": {"twitter": {"window_days": 30, **signals}}}}


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        ({"snapshot": {"networks": {}}}, "snapshot.networks", "at least 1"),
        ({}, "snapshot", "missing"),
        ({"snapshot": {"networks": {"twitter": {"followers": 3}}}},
         "snapshot.networks.twitter.window_days", "missing"),
        (_twitter(followers=-3), "snapshot.networks.twitter.followers", "greater than or equal"),
        (_twitter(followers=float("inf")), "snapshot.networks.twitter.followers", "finite"),
        (_twitter(followers=1e300), "snapshot.networks.twitter.followers", "less than or equal"),
        (_twitter(followers="12"), "snapshot.networks.twitter.followers", "valid number"),
        (_twitter(active_days=31), "snapshot.networks.twitter", "exceeds window_days"),
        (_twitter(window_days=0), "snapshot.networks.twitter.window_days", "greater than"),
        ({**_twitter(), "explian": False}, "explian", "unknown field"),
    ],
)
def test_each_problem_is_named_at_its_path(body, path, words):
    errors = _errors(body)
    assert path in errors, errors
    assert words in errors[path]


def test_nan_in_json_is_refused():
    body = b'{"snapshot": {"networks": {"twitter": {"window_days": 30, "posts": NaN}}}}'
    assert "finite" in _errors(body)["snapshot.networks.twitter.posts"]


def test_invalid_json_is_a_body_level_error():
    assert "Invalid JSON" in _errors(b'{"snapshot": ')[""]


def test_unknown_network_lists_the_networks():
    problem = _errors({"snapshot": {"networks": {"tiktok": {"window_days": 7}}}})[
        "snapshot.networks.tiktok"
    ]
    assert "unknown network 'tiktok'" in problem
    assert "twitter" in problem and "foursquare" in problem


def test_unknown_action_lists_the_actions_of_that_network():
    problem = _errors(_twitter(received={"bogus": 1}))["snapshot.networks.twitter.received.bogus"]
    assert problem.startswith("unknown action 'bogus' on twitter; allowed: like, reply")
    assert "comment" not in problem


def test_action_of_another_network_is_refused_with_the_allowed_ones():
    problem = _errors(_twitter(sent={"comment": 1}))["snapshot.networks.twitter.sent"]
    assert "'comment' is not allowed on twitter" in problem and "retweet" in problem


def test_unknown_field_in_a_window_list_gets_its_position_and_the_allowed_fields():
    body = {"snapshot": {"networks": {"youtube": [{"window_days": 7, "folowers": 1}]}}}
    problem = _errors(body)["snapshot.networks.youtube[0].folowers"]
    assert "unknown field 'folowers'" in problem and "followers" in problem


def test_batches_over_the_limit_are_refused():
    with pytest.raises(ValidationError) as caught:
        BatchRequest.model_validate({"snapshots": [{}] * 1001})
    (error,) = field_errors(caught.value.errors())
    assert error.path == "snapshots" and "1000" in error.problem


def test_summary_counts_the_problems():
    assert invalid_body([]).error == "invalid request: 0 problems"
    errors = field_errors([{"loc": ("a",), "msg": "bad", "type": "x"}])
    assert invalid_body(errors).model_dump() == {
        "error": "invalid request: 1 problem",
        "errors": [{"path": "a", "problem": "bad"}],
    }
