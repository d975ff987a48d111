"""The what-ifs behind the tips are honest copies of the snapshot, changed as their text says."""

from __future__ import annotations

from features.snapshot import SignalSnapshot
from serving.tips import MAX_TIPS, WhatIf, best_tips, what_ifs


def _snapshot(**networks) -> SignalSnapshot:
    return SignalSnapshot.model_validate({"user_id": "alice", "networks": networks})


ALICE = _snapshot(
    twitter={
        "window_days": 30, "followers": 1200, "lists": 12, "posts": 90, "posts_with_media": 20,
        "received": {"like": 800, "retweet": 120, "reply": 40, "mention": 60},
        "sent": {"retweet": 10, "reply": 30, "mention": 20},
        "unique_engagers": 350, "engager_influence": 42.5,
    },
    linkedin={"window_days": 30, "followers": 500, "received": {"recommendation": 3}},
)


def _by_action(snapshot: SignalSnapshot) -> dict[str, WhatIf]:
    return {w.action: w for w in what_ifs(snapshot)}


def test_every_unlinked_network_can_be_linked_and_only_those():
    actions = _by_action(ALICE)
    linked = {a.removeprefix("link_") for a in actions if a.startswith("link_")}
    assert linked == {"facebook", "instagram", "youtube", "wordpress", "google_plus", "foursquare"}


def test_a_linked_network_copies_the_most_engaged_one_family_by_family():
    facebook = _by_action(ALICE)["link_facebook"].snapshot.windows_of("facebook")[0]
    assert facebook.received == {"like": 800, "share": 120, "comment": 40, "mention": 60}
    assert facebook.sent == {"share": 10, "comment": 30, "mention": 20}
    assert facebook.followers == 1200 and facebook.unique_engagers == 350
    assert facebook.lists is None  # Twitter lists stay on Twitter
    assert "like yours on Twitter" in _by_action(ALICE)["link_facebook"].text


def test_linking_keeps_the_rest_of_the_snapshot():
    linked = _by_action(ALICE)["link_youtube"].snapshot
    assert linked.windows_of("twitter") == ALICE.windows_of("twitter")
    assert linked.user_id == "alice"


def test_a_family_the_network_lacks_is_dropped():
    foursquare = _by_action(ALICE)["link_foursquare"].snapshot.windows_of("foursquare")[0]
    assert set(foursquare.received) <= {"tip_like", "tip_save", "mention"}
    assert foursquare.received["tip_like"] == 800


def test_media_half():
    twitter = _by_action(ALICE)["media_half"].snapshot.windows_of("twitter")[0]
    assert twitter.posts_with_media == 45


def test_reply_to_engagers_raises_replies_and_reciprocity():
    twitter = _by_action(ALICE)["reply_engagers"].snapshot.windows_of("twitter")[0]
    assert twitter.sent["reply"] == 175  # half of 350 engagers
    assert twitter.reciprocity == 0.5


def test_post_more_keeps_reactions_per_post():
    twitter = _by_action(ALICE)["post_more"].snapshot.windows_of("twitter")[0]
    assert twitter.posts == 135 and twitter.received["like"] == 1200
    assert twitter.followers == 1200  # levels do not move


def test_what_ifs_that_change_nothing_are_not_offered():
    quiet = _snapshot(twitter={"window_days": 30, "followers": 10})
    assert not {"media_half", "reply_engagers", "post_more"} & set(_by_action(quiet))


def test_all_windows_of_a_multi_window_snapshot_change_together():
    snap = _snapshot(twitter=[{"window_days": 7, "posts": 10}, {"window_days": 30, "posts": 40}])
    windows = _by_action(snap)["media_half"].snapshot.windows_of("twitter")
    assert [w.posts_with_media for w in windows] == [5, 20]


def test_huge_counts_stay_within_the_contract():
    snap = _snapshot(twitter={"window_days": 30, "posts": 8e9, "received": {"like": 9e9}})
    post_more = _by_action(snap)["post_more"].snapshot.windows_of("twitter")[0]
    assert post_more.posts == 1e10 and post_more.received["like"] == 1e10


def test_best_tips_positive_top_three_one_link():
    candidates = [WhatIf(a, a, ALICE) for a in
                  ("link_facebook", "link_youtube", "media_half", "reply_engagers", "post_more")]
    tips = best_tips(40.0, candidates, [45.0, 44.0, 40.04, 41.0, 42.5])
    assert [(t.action, t.gain) for t in tips] == [
        ("link_facebook", 5.0), ("post_more", 2.5), ("reply_engagers", 1.0)
    ]
    assert len(tips) <= MAX_TIPS
    assert best_tips(40.0, candidates, [39.0] * 5) == []


def test_linking_never_sums_a_family_past_the_contract():
    # LinkedIn's recommendations and endorsements are both endorsements: Twitter's list_add
    snap = _snapshot(linkedin={"window_days": 30, "received": {"recommendation": 9e9, "endorsement": 9e9}})
    twitter = _by_action(snap)["link_twitter"].snapshot.windows_of("twitter")[0]
    assert twitter.received == {"list_add": 1e10}


def test_a_what_if_that_would_break_the_contract_is_not_offered():
    # active_days at the window's length: post_more caps it; media_half, reply stay valid
    snap = _snapshot(twitter={"window_days": 7, "active_days": 7, "posts": 3, "unique_engagers": 4})
    for what_if in what_ifs(snap):
        assert what_if.snapshot is not None
