"""The raw-signal vocabulary: networks, their actions, and the family of every action.

This is the only place the vocabulary is written down. Schemas, the simulator, the feature
pipeline and the HTTP contract all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Family(StrEnum):
    """Cross-network families that actions fall into."""

    APPROVAL = "approval"
    CONVERSATION = "conversation"
    AMPLIFICATION = "amplification"
    ATTENTION = "attention"
    ENDORSEMENT = "endorsement"


@dataclass(frozen=True)
class Action:
    name: str
    family: Family
    on_post: bool
    """True when the action is made on a post (a like, a share); False for user-level actions
    (a mention, a recommendation, a subscription), whose interactions carry no post id."""


def _a(name: str, family: Family, on_post: bool = True) -> Action:
    return Action(name, family, on_post)


A, C, M, T, E = (
    Family.APPROVAL,
    Family.CONVERSATION,
    Family.AMPLIFICATION,
    Family.ATTENTION,
    Family.ENDORSEMENT,
)

VOCABULARY: dict[str, tuple[Action, ...]] = {
    "twitter": (
        _a("like", A),
        _a("reply", C),
        _a("retweet", M),
        _a("quote", M),
        _a("mention", T, on_post=False),
        _a("list_add", E, on_post=False),
    ),
    "facebook": (_a("like", A), _a("comment", C), _a("share", M), _a("mention", T, on_post=False)),
    "instagram": (_a("like", A), _a("comment", C), _a("mention", T, on_post=False), _a("save", E)),
    "linkedin": (
        _a("like", A),
        _a("comment", C),
        _a("share", M),
        _a("recommendation", E, on_post=False),
        _a("endorsement", E, on_post=False),
    ),
    "youtube": (_a("like", A), _a("comment", C), _a("share", M), _a("subscribe", E, on_post=False)),
    "wordpress": (_a("like", A), _a("comment", C), _a("reblog", M), _a("pingback", T)),
    "google_plus": (
        _a("plus_one", A),
        _a("comment", C),
        _a("reshare", M),
        _a("mention", T, on_post=False),
    ),
    "foursquare": (_a("tip_like", A), _a("tip_save", E), _a("mention", T, on_post=False)),
}

NETWORKS: tuple[str, ...] = tuple(VOCABULARY)
FAMILIES: tuple[Family, ...] = tuple(Family)

# Networks whose profiles have public list memberships (Twitter lists).
NETWORKS_WITH_LISTS: frozenset[str] = frozenset({"twitter"})

ALL_ACTIONS: tuple[str, ...] = tuple(
    dict.fromkeys(action.name for actions in VOCABULARY.values() for action in actions)
)


def actions_of(network: str) -> tuple[str, ...]:
    """Action names allowed on a network; KeyError names the unknown network."""
    if network not in VOCABULARY:
        raise KeyError(f"unknown network {network!r}; allowed: {', '.join(NETWORKS)}")
    return tuple(action.name for action in VOCABULARY[network])


def action(network: str, name: str) -> Action:
    for candidate in VOCABULARY[network]:
        if candidate.name == name:
            return candidate
    raise KeyError(
        f"action {name!r} is not allowed on {network}; allowed: {', '.join(actions_of(network))}"
    )


def family_of(network: str, name: str) -> Family:
    return action(network, name).family


def allowed_pairs() -> list[tuple[str, str]]:
    """Every (network, action) pair of the vocabulary, in vocabulary order."""
    return [(network, a.name) for network, actions in VOCABULARY.items() for a in actions]


def pairs_on_post() -> list[tuple[str, str]]:
    return [(n, a.name) for n, actions in VOCABULARY.items() for a in actions if a.on_post]


def actions_in_family(network: str, family: Family) -> tuple[str, ...]:
    return tuple(a.name for a in VOCABULARY[network] if a.family == family)
