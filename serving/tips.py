"""Tips: concrete what-ifs, each a changed copy of the user's snapshot that is scored again through
the very same path as the snapshot itself (snapshot -> frame -> featurize -> model), so a tip's
gain is the model's own estimate, never a rule of thumb.

The what-ifs (all pure functions of the snapshot):

- `link_<network>`: link a network not linked yet, with activity like yours elsewhere: a copy
  of your most engaged network (by reactions received), reactions mapped family by family onto
  the new network's actions (a retweet becomes a share, a reply a comment; a family the network
  lacks is dropped), Twitter lists kept only on Twitter. Only the best linking tip is offered,
  so the three tips are not three networks to link.
- `media_half`: put a photo or a video in half of your posts (networks with posts, where fewer
  than half have media).
- `reply_engagers`: reply to people who engage with you: conversation actions sent raised to
  half of your unique engagers (or of the conversation reactions you got, when engagers are
  unknown), reciprocity raised to 0.5.
- `post_more`: post half again as often, with the reactions per post you get now.

A tip is offered only when its gain, rounded to 0.1 point, is positive; the best three by gain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from features.snapshot import MAX_COUNT, SIGNAL_BY_NAME, SignalSnapshot
from influence.vocabulary import NETWORKS, NETWORKS_WITH_LISTS, VOCABULARY, Family, family_of

MAX_TIPS = 3
MIN_GAIN = 0.1
LABELS: dict[str, str] = {
    "twitter": "Twitter",
    "facebook": "Facebook",
    "instagram": "Instagram",
    "linkedin": "LinkedIn",
    "youtube": "YouTube",
    "wordpress": "WordPress",
    "google_plus": "Google+",
    "foursquare": "Foursquare",
}

Window = dict[str, Any]
Networks = dict[str, list[Window]]


@dataclass(frozen=True)
class WhatIf:
    action: str
    text: str
    snapshot: SignalSnapshot


@dataclass(frozen=True)
class Gain:
    action: str
    text: str
    gain: float


# --- snapshot <-> plain windows ------------------------------------------------------------------


def _windows(snapshot: SignalSnapshot) -> Networks:
    """Per network, its windows as plain dicts (unset fields left out)."""
    return {
        network: [w.model_dump(exclude_none=True) for w in snapshot.windows_of(network)]
        for network in snapshot.networks
    }


def _rebuilt(snapshot: SignalSnapshot, networks: Networks) -> SignalSnapshot | None:
    """The changed snapshot, validated by the contract; None if a change broke it (a what-if
    is then not offered: it must never fail the request it advises)."""
    try:
        return SignalSnapshot.model_validate(
            {"user_id": snapshot.user_id, "as_of": snapshot.as_of, "networks": networks}
        )
    except ValidationError:
        return None


def _bounded(name: str, value: float) -> float:
    signal = SIGNAL_BY_NAME.get(name)
    high = MAX_COUNT if signal is None else signal.high
    return min(max(value, 0.0), high)


def _received_total(windows: Sequence[Window]) -> float:
    return sum(sum(w.get("received", {}).values()) for w in windows)


# --- the what-ifs --------------------------------------------------------------------------------


def _family_totals(network: str, counts: dict[str, float]) -> dict[Family, float]:
    totals: dict[Family, float] = {}
    for action, value in counts.items():
        family = family_of(network, action)
        totals[family] = totals.get(family, 0.0) + value
    return totals


def _spread_families(network: str, totals: dict[Family, float]) -> dict[str, float]:
    """Family totals over the network's actions of each family, evenly."""
    out: dict[str, float] = {}
    for family, total in totals.items():
        actions = [a.name for a in VOCABULARY[network] if a.family == family]
        for name in actions:
            out[name] = _bounded(f"received_{name}", total / len(actions))
    return out


def _moved_window(window: Window, source: str, target: str) -> Window:
    """A window of `source` as if it were on `target`."""
    moved = {k: v for k, v in window.items() if k not in ("received", "sent")}
    if target not in NETWORKS_WITH_LISTS:
        moved.pop("lists", None)
    for side in ("received", "sent"):
        moved[side] = _spread_families(target, _family_totals(source, window.get(side, {})))
    return moved


def link_network(snapshot: SignalSnapshot) -> list[WhatIf]:
    networks = _windows(snapshot)
    template = max(networks, key=lambda n: (_received_total(networks[n]), n))
    out = []
    for target in NETWORKS:
        if target in networks:
            continue
        linked = {**networks, target: [_moved_window(w, template, target) for w in networks[template]]}
        changed = _rebuilt(snapshot, linked)
        if changed is not None:
            text = f"Link {LABELS[target]}, with activity like yours on {LABELS[template]}"
            out.append(WhatIf(f"link_{target}", text, changed))
    return out


def _changed(snapshot: SignalSnapshot, change: Callable[[str, Window], Window | None]) -> SignalSnapshot | None:
    """The snapshot with `change` applied to every window (None from `change`: window unchanged);
    None when no window changed."""
    networks = _windows(snapshot)
    touched = False
    for network, windows in networks.items():
        for i, window in enumerate(windows):
            new = change(network, window)
            if new is not None and new != window:
                windows[i], touched = new, True
    return _rebuilt(snapshot, networks) if touched else None


def _half_media(network: str, window: Window) -> Window | None:
    posts = window.get("posts") or 0.0
    if posts <= 0 or window.get("posts_with_media", 0.0) >= posts / 2:
        return None
    return {**window, "posts_with_media": posts / 2}


def _conversation_actions(network: str) -> list[str]:
    return [a.name for a in VOCABULARY[network] if a.family is Family.CONVERSATION]


def _reply_to_engagers(network: str, window: Window) -> Window | None:
    actions = _conversation_actions(network)
    if not actions:
        return None
    received = window.get("received", {})
    engagers = window.get("unique_engagers")
    if engagers is None:
        engagers = sum(received.get(a, 0.0) for a in actions)
    target = _bounded("sent_reply", engagers / 2)
    sent = dict(window.get("sent", {}))
    current = sum(sent.get(a, 0.0) for a in actions)
    if target <= current:
        return None
    sent[actions[0]] = sent.get(actions[0], 0.0) + (target - current)
    new = {**window, "sent": sent}
    if window.get("reciprocity") is not None or engagers > 0:
        new["reciprocity"] = max(window.get("reciprocity") or 0.0, 0.5)
    return new


# Signals that grow with posting at a constant reaction rate per post.
_PER_POST = frozenset({
    "posts", "posts_with_media", "unique_engagers", "selective_reactions", "conversations_started",
})


def _post_more(network: str, window: Window, factor: float = 1.5) -> Window | None:
    if not window.get("posts"):
        return None
    new = dict(window)
    for name in _PER_POST & window.keys():
        new[name] = _bounded(name, window[name] * factor)
    new["received"] = {a: _bounded("received_" + a, v * factor)
                       for a, v in window.get("received", {}).items()}
    new["unique_engagers_by_family"] = {
        f: _bounded("unique_engagers", v * factor)
        for f, v in window.get("unique_engagers_by_family", {}).items()
    }
    if "active_days" in window:
        new["active_days"] = min(window["active_days"] * factor, window["window_days"])
    return new


_CHANGES: tuple[tuple[str, str, Callable[[str, Window], Window | None]], ...] = (
    ("media_half", "Put a photo or a video in half of your posts", _half_media),
    ("reply_engagers", "Reply to the people who engage with you", _reply_to_engagers),
    ("post_more", "Post half again as often, keeping the reactions per post you get now",
     _post_more),
)


def what_ifs(snapshot: SignalSnapshot) -> list[WhatIf]:
    """Every what-if that changes this snapshot."""
    out = link_network(snapshot)
    for action, text, change in _CHANGES:
        changed = _changed(snapshot, change)
        if changed is not None:
            out.append(WhatIf(action, text, changed))
    return out


def best_tips(score: float, candidates: Sequence[WhatIf], scores: Sequence[float]) -> list[Gain]:
    """The best `MAX_TIPS` positive gains, at most one of them a linking tip."""
    gains = sorted(
        (Gain(c.action, c.text, round(s - score, 1)) for c, s in zip(candidates, scores, strict=True)),
        key=lambda g: -g.gain,
    )
    chosen: list[Gain] = []
    for gain in gains:
        if gain.gain < MIN_GAIN or len(chosen) == MAX_TIPS:
            break
        if gain.action.startswith("link_") and any(c.action.startswith("link_") for c in chosen):
            continue
        chosen.append(gain)
    return chosen
