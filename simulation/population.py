"""The static side of the world: people, their hidden traits, their accounts, who follows whom.

Everything here is a pure function of (config, random generator). Users are indexed 0..n-1 and
accounts 0..m-1; accounts are sorted by network so every network is one contiguous segment,
which lets the daily engine sample "anyone on this network" and "a follower of this account"
with the same cumulative-weight trick (`sample_segment`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from influence.vocabulary import NETWORKS
from simulation.config import WorldConfig
from simulation.networks import N_NETWORKS, NetworkTables

USER_ID_BASE = 1_000_000_000
AUDIENCE_RAMP_DAYS = 120.0
"""New accounts approach their potential audience with this time constant."""
FOLLOWING_RAMP_DAYS = 45.0
"""... and the number of accounts they follow with this one (bots: a few days)."""

# Correlation of the user-level latent normals (influence, audience, activity, following).
# Audience follows influence; active people follow more; following is only loosely tied to
# audience (real Twitter: followers~following rank correlation 0.27).
_LATENT_CORR = np.array(
    [
        [1.00, 0.65, 0.25, 0.00],
        [0.65, 1.00, 0.40, 0.45],
        [0.25, 0.40, 1.00, 0.35],
        [0.00, 0.45, 0.35, 1.00],
    ]
)
_LINKED_COUNT_P = np.array([0.46, 0.22, 0.12, 0.08, 0.05, 0.03, 0.02, 0.02])
"""How many networks a person links: many only one, some all eight."""
_BOT_NETWORK_WEIGHT = {"twitter": 0.5, "instagram": 0.3, "facebook": 0.2}
_POD_NETWORK_WEIGHT = {
    "instagram": 0.45,
    "twitter": 0.2,
    "linkedin": 0.15,
    "facebook": 0.15,
    "youtube": 0.05,
}
_BUY_NETWORK_PREFERENCE = ("instagram", "twitter", "youtube", "facebook")


@dataclass(frozen=True)
class Users:
    user_id: np.ndarray
    is_bot: np.ndarray
    influence: np.ndarray
    """Latent influence at the start of the window (standard normal for people; bots far below)."""
    activity: np.ndarray
    selectivity: np.ndarray
    """Exponent on a post's appeal when deciding to react: ~0 reacts to anything, 3 is picky."""
    reactivity: np.ndarray
    """How much this person engages at all (weight when drawn as an engager); 0 for bots."""
    talk_style: np.ndarray
    share_style: np.ndarray
    media_taste: np.ndarray
    bought_followers: np.ndarray
    bought_likes: np.ndarray


@dataclass(frozen=True)
class Accounts:
    user: np.ndarray
    network: np.ndarray
    created_day: np.ndarray
    """Window day of creation (negative: before the window). Active from the next day on."""
    created_sec: np.ndarray
    linked_day: np.ndarray
    linked_sec: np.ndarray
    audience_potential: np.ndarray
    following_potential: np.ndarray
    following_ramp: np.ndarray
    """Days over which a new account builds up what it follows."""
    post_rate: np.ndarray
    media_p: np.ndarray
    influence_offset: np.ndarray
    list_ratio: np.ndarray
    posts_before: np.ndarray
    """Posts made before the window, from the account's age and rate."""
    bought_before: np.ndarray
    """Followers bought before the window (already in the first counters)."""
    buy_day: np.ndarray
    """Window day of a follower purchase, -1 if none."""
    buy_size: np.ndarray
    buys_likes: np.ndarray
    pod: np.ndarray
    """Pod id of this account, -1 if none."""
    network_start: np.ndarray
    """Account index where each network's segment starts (length N_NETWORKS + 1)."""


@dataclass(frozen=True)
class Graph:
    """In-world follow graph as CSR by followee: followers of account j are
    `follower[offset[j]:offset[j+1]]`; `cum` is the exclusive prefix sum of their reactivity."""

    offset: np.ndarray
    follower: np.ndarray
    cum: np.ndarray


@dataclass(frozen=True)
class Population:
    users: Users
    accounts: Accounts
    graph: Graph
    pool_cum: np.ndarray
    """Exclusive prefix sum of account reactivity in account order (network segments)."""
    pod_offset: np.ndarray
    pod_member: np.ndarray
    bots_by_network: np.ndarray
    """Bot account indices sorted by network; `bot_start` gives each network's segment."""
    bot_start: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.users.user_id)

    @property
    def n_accounts(self) -> int:
        return len(self.accounts.user)


def sample_segment(cum: np.ndarray, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index in [lo, hi) drawn with probability proportional to the weights whose exclusive
    prefix sum is `cum`; callers make sure the segment's total weight is positive."""
    start = cum[lo]
    r = start + u * (cum[hi] - start)
    return np.clip(_sorted_searchsorted(cum, r, side="right") - 1, lo, hi - 1)


def _sorted_searchsorted(table: np.ndarray, queries: np.ndarray, side: str = "left") -> np.ndarray:
    """np.searchsorted, with the queries sorted first: walking a large table in order is
    several times faster than jumping around it."""
    order = np.argsort(queries)
    pos = np.empty(len(queries), dtype=np.int64)
    pos[order] = np.searchsorted(table, queries[order], side=side)
    return pos


def _exclusive_cumsum(weights: np.ndarray) -> np.ndarray:
    out = np.empty(len(weights) + 1)
    out[0] = 0.0
    np.cumsum(weights, out=out[1:])
    return out


def _weights(names: dict[str, float]) -> np.ndarray:
    w = np.array([names.get(n, 0.0) for n in NETWORKS])
    return w / w.sum()


def make_users(cfg: WorldConfig, rng: np.random.Generator) -> tuple[Users, np.ndarray]:
    """People and the latent normals (influence, audience, activity, following) behind them."""
    n = cfg.users
    is_bot = rng.random(n) < cfg.bot_share
    latent = rng.multivariate_normal(np.zeros(4), _LATENT_CORR, size=n, method="cholesky")
    influence, activity = latent[:, 0].copy(), latent[:, 2].copy()
    influence[is_bot] = -3.0

    indiscriminate = rng.random(n) < 0.12
    selectivity = np.where(indiscriminate, rng.uniform(0, 0.15, n), 0.7 + rng.gamma(2.0, 0.7, n))
    reactivity = np.exp(0.9 * activity) * np.where(indiscriminate, 4.0, 1.0)
    selectivity[is_bot], reactivity[is_bot] = 0.0, 0.0

    human = ~is_bot
    bought_followers = human & (rng.random(n) < cfg.bought_share)
    bought_likes = human & (rng.random(n) < cfg.bought_share)
    return Users(
        user_id=USER_ID_BASE + np.arange(n, dtype=np.int64),
        is_bot=is_bot,
        influence=influence,
        activity=activity,
        selectivity=selectivity,
        reactivity=reactivity,
        talk_style=np.exp(rng.normal(0, 0.7, n)),
        share_style=np.exp(rng.normal(0, 0.7, n)),
        media_taste=rng.normal(0, 0.8, n),
        bought_followers=bought_followers,
        bought_likes=bought_likes,
    ), latent


def _linked_networks(
    cfg: WorldConfig, users: Users, nets: NetworkTables, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(user, network) pairs: a random subset per user, popular networks first (Gumbel top-k)."""
    n = cfg.users
    count = rng.choice(np.arange(1, N_NETWORKS + 1), size=n, p=_LINKED_COUNT_P)
    count[users.is_bot] = rng.integers(1, 3, users.is_bot.sum())
    weight = np.where(users.is_bot[:, None], _weights(_BOT_NETWORK_WEIGHT), nets.popularity)
    with np.errstate(divide="ignore"):
        keys = np.log(weight) + rng.gumbel(size=(n, N_NETWORKS))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    chosen = (rank < count[:, None]) & np.isfinite(keys)
    user, network = np.nonzero(chosen)
    order = np.lexsort((user, network))
    return user[order], network[order].astype(np.int8)


def _creation_days(cfg: WorldConfig, is_bot: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    m = len(is_bot)
    new_share = np.where(is_bot, 0.35, cfg.new_account_share)
    inside = rng.random(m) < new_share
    age = np.exp(rng.uniform(np.log(14), np.log(3650), m))
    last_creation_day = max(cfg.days - 2, 0)
    return np.where(inside, rng.integers(0, last_creation_day + 1, m), -np.ceil(age)).astype(
        np.int32
    )


def make_accounts(
    cfg: WorldConfig,
    users: Users,
    latent: np.ndarray,
    nets: NetworkTables,
    rng: np.random.Generator,
) -> Accounts:
    user, network = _linked_networks(cfg, users, nets, rng)
    m = len(user)
    bot = users.is_bot[user]
    z, f, a, g = (latent[user, i] for i in range(4))

    log_audience = np.log(nets.audience_median[network]) + cfg.audience_sigma * (
        0.92 * f + 0.39 * rng.normal(size=m)
    )
    log_audience[bot] = np.log(20) + 0.8 * rng.normal(size=bot.sum())
    log_following = np.log(nets.following_median[network]) + 1.3 * (
        0.9 * g + 0.43 * rng.normal(size=m)
    )
    log_following[bot] = np.log(2500) + 0.7 * rng.normal(size=bot.sum())
    post_rate = nets.post_rate[network] * np.exp(0.9 * a + 0.5 * rng.normal(size=m))
    post_rate[bot] *= 2.0

    created_day = _creation_days(cfg, bot, rng)
    linked_delay = np.ceil(np.exp(rng.normal(np.log(60), 1.5, m))).astype(np.int32)
    linked_day = np.minimum(created_day + linked_delay, cfg.days - 1)
    linked_day = np.maximum(linked_day, created_day + 1)
    age_at_start = np.maximum(-created_day, 0)
    logit_media = np.log(nets.media_share[network] / (1.000001 - nets.media_share[network]))
    media_p = 1 / (1 + np.exp(-(logit_media + users.media_taste[user])))

    audience = np.exp(log_audience)
    buyer = _pick_one_account(users.bought_followers, user, network, rng)
    buy_size = np.where(buyer, audience * rng.uniform(0.5, 3.0, m) + rng.uniform(500, 5000, m), 0)
    before = buyer & (rng.random(m) < 0.5)
    day = np.maximum(rng.integers(0, cfg.days, m), created_day + 1)
    before |= buyer & (day >= cfg.days)  # created too late to buy inside the window
    buy_day = np.where(buyer & ~before, day, -1).astype(np.int32)

    return Accounts(
        user=user.astype(np.int32),
        network=network,
        created_day=created_day,
        created_sec=rng.integers(0, 86_400, m).astype(np.int32),
        linked_day=linked_day.astype(np.int32),
        linked_sec=rng.integers(0, 86_400, m).astype(np.int32),
        audience_potential=audience,
        following_potential=np.exp(log_following),
        following_ramp=np.where(bot, 5.0, FOLLOWING_RAMP_DAYS),
        post_rate=post_rate,
        media_p=media_p,
        influence_offset=rng.normal(0, 0.35, m),
        list_ratio=np.exp(np.log(0.04) + 0.3 * z + 0.3 * rng.normal(size=m)),
        posts_before=np.floor(post_rate * age_at_start * rng.uniform(0.5, 1.5, m)).astype(np.int64),
        bought_before=np.where(before, buy_size, 0.0),
        buy_day=buy_day,
        buy_size=np.where(buy_day >= 0, buy_size, 0.0),
        buys_likes=_pick_one_account(users.bought_likes, user, network, rng),
        pod=np.full(m, -1, dtype=np.int32),
        network_start=np.searchsorted(network, np.arange(N_NETWORKS + 1)).astype(np.int64),
    )


def _pick_one_account(
    flag: np.ndarray, user: np.ndarray, network: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """For each flagged user, one of their accounts, on the network where buying is common."""
    preference = np.full(N_NETWORKS, len(_BUY_NETWORK_PREFERENCE), dtype=float)
    for rank, name in enumerate(_BUY_NETWORK_PREFERENCE):
        preference[NETWORKS.index(name)] = rank
    key = preference[network] + rng.random(len(user)) * 0.5
    order = np.lexsort((key, user))
    first = np.ones(len(user), dtype=bool)
    first[1:] = user[order][1:] != user[order][:-1]
    out = np.zeros(len(user), dtype=bool)
    out[order[first]] = True
    return out & flag[user]


def make_graph(accounts: Accounts, users: Users, rng: np.random.Generator) -> Graph:
    """Each person follows a few dozen in-world accounts of the same network, picked by
    attractiveness (audience**0.7): preferential attachment gives heavy-tailed in-degrees."""
    m = len(accounts.user)
    human = ~users.is_bot[accounts.user]
    followers, followees = [], []
    for net in range(N_NETWORKS):
        lo, hi = accounts.network_start[net], accounts.network_start[net + 1]
        members = np.arange(lo, hi)[human[lo:hi]]
        if len(members) < 2:
            continue
        k = np.clip(np.round(3 + 0.08 * accounts.following_potential[members]), 3, 150).astype(int)
        k = np.minimum(k, len(members) - 1)
        p = accounts.audience_potential[members] ** 0.7
        picked = members[
            _sorted_searchsorted(np.cumsum(p / p.sum()), rng.random(k.sum())).clip(
                0, len(members) - 1
            )
        ]
        followee, follower = _unique_edges(picked, np.repeat(members, k), m)
        followees.append(followee)
        followers.append(follower)
    # Networks are contiguous account segments, so the per-network sorted edges stay sorted.
    followee = np.concatenate(followees) if followees else np.zeros(0, dtype=np.int32)
    follower = np.concatenate(followers) if followers else np.zeros(0, dtype=np.int32)
    offset = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(followee, minlength=m), out=offset[1:])
    weight = users.reactivity[accounts.user[follower]]
    return Graph(offset=offset, follower=follower, cum=_exclusive_cumsum(weight))


def _unique_edges(
    followee: np.ndarray, follower: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Edges without self-follows and repeats, sorted by (followee, follower), as int32."""
    keep = follower != followee
    key = np.sort(followee[keep].astype(np.int64) * m + follower[keep])
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return (key // m).astype(np.int32), (key % m).astype(np.int32)


def assign_pods(
    cfg: WorldConfig, accounts: Accounts, users: Users, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Engagement pods: small groups (4-12) on one network that react to each other's posts.
    Returns (pod of each account, pod member offsets, member accounts)."""
    pod = np.full(len(accounts.user), -1, dtype=np.int32)
    target = round(cfg.pod_share * int((~users.is_bot).sum()))
    in_pod_user = np.zeros(cfg.users, dtype=bool)
    sizes_all, members_all = [], []
    share = _weights(_POD_NETWORK_WEIGHT)
    for net in np.flatnonzero(share):
        lo, hi = accounts.network_start[net], accounts.network_start[net + 1]
        candidates = np.arange(lo, hi)
        candidates = candidates[
            ~users.is_bot[accounts.user[candidates]] & ~in_pod_user[accounts.user[candidates]]
        ]
        want = min(round(target * float(share[net])), len(candidates))
        if want < 4:
            continue
        chosen = rng.permutation(candidates)[:want]
        sizes = rng.integers(4, 13, want // 4 + 1)
        sizes = sizes[np.cumsum(sizes) <= want]
        members = chosen[: sizes.sum()]
        sizes_all.append(sizes)
        members_all.append(members)
        in_pod_user[accounts.user[members]] = True
    if not sizes_all:
        return pod, np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    sizes = np.concatenate(sizes_all)
    members = np.concatenate(members_all)
    pod[members] = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    return pod, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), members


def make_population(cfg: WorldConfig, nets: NetworkTables, rng: np.random.Generator) -> Population:
    users, latent = make_users(cfg, rng)
    accounts = make_accounts(cfg, users, latent, nets, rng)
    graph = make_graph(accounts, users, rng)
    pod, pod_offset, pod_member = assign_pods(cfg, accounts, users, rng)
    accounts = replace(accounts, pod=pod)
    bots = np.flatnonzero(users.is_bot[accounts.user])
    return Population(
        users=users,
        accounts=accounts,
        graph=graph,
        pool_cum=_exclusive_cumsum(users.reactivity[accounts.user]),
        pod_offset=pod_offset,
        pod_member=pod_member,
        bots_by_network=bots,
        bot_start=np.searchsorted(accounts.network[bots], np.arange(N_NETWORKS + 1)),
    )
