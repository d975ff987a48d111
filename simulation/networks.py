"""How each network behaves in the synthetic world: popularity, activity, audiences, reaction mix.

Numbers are orders of magnitude of the real networks around 2013 (Twitter is chatty, YouTube
posts rarely but every post is a video, Foursquare audiences are small). Action names must be
the vocabulary's; `network_tables` checks that and turns everything into arrays aligned with
`influence.vocabulary.NETWORKS` for the vectorised engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from influence.vocabulary import ALL_ACTIONS, NETWORKS, NETWORKS_WITH_LISTS, VOCABULARY, Family


@dataclass(frozen=True)
class NetworkTraits:
    popularity: float
    """Weight of the network when a user picks which networks to link."""
    post_rate: float
    """Median posts per day of an active account."""
    audience_median: float
    following_median: float
    media_share: float
    """Share of posts carrying a photo or video."""
    media_boost: float
    """Log-odds added to a post's appeal when it carries media."""
    reach: float
    """Candidate engagers per post per audience**alpha (before selectivity thinning)."""
    reactions: dict[str, float]
    """On-post actions and their base weights."""
    user_level: dict[str, float] = field(default_factory=dict)
    """Actions on the user (no post) and their daily rate per audience**alpha."""


TRAITS: dict[str, NetworkTraits] = {
    "twitter": NetworkTraits(
        0.26,
        0.6,
        250,
        300,
        0.3,
        0.5,
        0.11,
        {"like": 0.40, "reply": 0.26, "retweet": 0.28, "quote": 0.06},
        {"mention": 0.015, "list_add": 0.002},
    ),
    "facebook": NetworkTraits(
        0.22,
        0.5,
        220,
        250,
        0.5,
        0.6,
        0.06,
        {"like": 0.75, "comment": 0.17, "share": 0.08},
        {"mention": 0.005},
    ),
    "instagram": NetworkTraits(
        0.20,
        0.35,
        280,
        350,
        0.97,
        0.0,
        0.08,
        {"like": 0.86, "comment": 0.08, "save": 0.06},
        {"mention": 0.005},
    ),
    "linkedin": NetworkTraits(
        0.12,
        0.12,
        350,
        350,
        0.3,
        0.3,
        0.05,
        {"like": 0.72, "comment": 0.16, "share": 0.12},
        {"recommendation": 0.0003, "endorsement": 0.003},
    ),
    "youtube": NetworkTraits(
        0.09,
        0.07,
        120,
        60,
        1.0,
        0.0,
        0.1,
        {"like": 0.80, "comment": 0.15, "share": 0.05},
        {"subscribe": 0.005},
    ),
    "wordpress": NetworkTraits(
        0.05,
        0.15,
        60,
        40,
        0.6,
        0.3,
        0.06,
        {"like": 0.55, "comment": 0.30, "reblog": 0.08, "pingback": 0.07},
    ),
    "google_plus": NetworkTraits(
        0.04,
        0.3,
        90,
        90,
        0.4,
        0.4,
        0.05,
        {"plus_one": 0.70, "comment": 0.20, "reshare": 0.10},
        {"mention": 0.004},
    ),
    "foursquare": NetworkTraits(
        0.02,
        0.5,
        35,
        40,
        0.3,
        0.3,
        0.05,
        {"tip_like": 0.75, "tip_save": 0.25},
        {"mention": 0.003},
    ),
}

N_NETWORKS = len(NETWORKS)
ACTION_CODE: dict[str, int] = {name: i for i, name in enumerate(ALL_ACTIONS)}
MAX_REACTIONS = max(len(t.reactions) for t in TRAITS.values())
STYLE_FAMILIES = (Family.CONVERSATION, Family.AMPLIFICATION)
"""Families whose weight depends on the actor's style (repliers, sharers); others weigh 1."""


@dataclass(frozen=True)
class NetworkTables:
    """Per-network numbers as arrays indexed by network code (position in NETWORKS)."""

    popularity: np.ndarray
    post_rate: np.ndarray
    audience_median: np.ndarray
    following_median: np.ndarray
    media_share: np.ndarray
    media_boost: np.ndarray
    reach: np.ndarray
    reaction_code: np.ndarray
    """(network, slot) -> action code, -1 for unused slots."""
    reaction_weight: np.ndarray
    """(network, slot) -> base weight, 0 for unused slots."""
    reaction_style: np.ndarray
    """(network, slot) -> 0 none, 1 conversation, 2 amplification."""
    approval_code: np.ndarray
    """network -> action code of its approval action (like, plus_one, tip_like)."""
    conversation_code: np.ndarray
    """network -> action code of its conversation action, or the approval one."""
    user_level: tuple[tuple[int, int, float], ...]
    """(network code, action code, rate) of every action made on a user."""
    has_lists: np.ndarray


def _check_vocabulary() -> None:
    for network, traits in TRAITS.items():
        on_post = {a.name for a in VOCABULARY[network] if a.on_post}
        off_post = {a.name for a in VOCABULARY[network] if not a.on_post}
        if set(traits.reactions) != on_post or not set(traits.user_level) <= off_post:
            raise ValueError(f"simulation traits of {network} disagree with the vocabulary")
    if set(TRAITS) != set(NETWORKS):
        raise ValueError("simulation traits must cover exactly the vocabulary's networks")


def network_tables() -> NetworkTables:
    _check_vocabulary()
    traits = [TRAITS[n] for n in NETWORKS]
    code = np.full((N_NETWORKS, MAX_REACTIONS), -1, dtype=np.int16)
    weight = np.zeros((N_NETWORKS, MAX_REACTIONS))
    style = np.zeros((N_NETWORKS, MAX_REACTIONS), dtype=np.int8)
    approval = np.zeros(N_NETWORKS, dtype=np.int16)
    conversation = np.zeros(N_NETWORKS, dtype=np.int16)
    user_level = []
    for i, (network, t) in enumerate(zip(NETWORKS, traits)):
        families = {a.name: a.family for a in VOCABULARY[network]}
        for slot, (name, w) in enumerate(t.reactions.items()):
            code[i, slot] = ACTION_CODE[name]
            weight[i, slot] = w
            fam = families[name]
            style[i, slot] = STYLE_FAMILIES.index(fam) + 1 if fam in STYLE_FAMILIES else 0
        approvals = [n for n in t.reactions if families[n] == Family.APPROVAL]
        talks = [n for n in t.reactions if families[n] == Family.CONVERSATION]
        approval[i] = ACTION_CODE[approvals[0]]
        conversation[i] = ACTION_CODE[(talks or approvals)[0]]
        user_level += [(i, ACTION_CODE[name], rate) for name, rate in t.user_level.items()]
    weight /= weight.sum(axis=1, keepdims=True)
    return NetworkTables(
        popularity=np.array([t.popularity for t in traits]),
        post_rate=np.array([t.post_rate for t in traits]),
        audience_median=np.array([t.audience_median for t in traits]),
        following_median=np.array([t.following_median for t in traits]),
        media_share=np.array([t.media_share for t in traits]),
        media_boost=np.array([t.media_boost for t in traits]),
        reach=np.array([t.reach for t in traits]),
        reaction_code=code,
        reaction_weight=weight,
        reaction_style=style,
        approval_code=approval,
        conversation_code=conversation,
        user_level=tuple(user_level),
        has_lists=np.array([n in NETWORKS_WITH_LISTS for n in NETWORKS]),
    )
