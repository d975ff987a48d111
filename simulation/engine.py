"""One simulated day, vectorised: posts, who reacts to them, and how the counters move.

`simulate_day(world, state, day, rng) -> (DayOutput, State)` is pure: it reads the static world
and yesterday's state and returns today's rows and tomorrow's state. Rows are plain numpy arrays
of account indices and action codes; `simulation.frames` turns them into the raw tables.

How a reaction happens: a post (or, for mentions and the like, a person) is *exposed* to
candidate engagers, drawn mostly from the author's in-world followers, weighted by how much each
of them engages at all, and the rest from anyone on that network. A candidate reacts with
probability appeal**selectivity, where the appeal grows with the author's latent influence and
with media: indiscriminate people (selectivity ~0) react to almost anything, selective ones
only to appealing posts. The number of candidates grows like audience**alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from influence.vocabulary import ALL_ACTIONS, NETWORKS, VOCABULARY, Family, family_of
from simulation.config import WorldConfig
from simulation.networks import NetworkTables
from simulation.population import AUDIENCE_RAMP_DAYS, Population, sample_segment

DAY_SEC = 86_400
LAST_POST_SEC = DAY_SEC - 3_600
"""Posts are made before 23:00 so their first reactions fall on the same day."""
POST_ID_BASE = 3_000_000_000_000
INTERACTION_ID_BASE = 7_000_000_000_000
WEEKDAY_ACTIVITY = np.array([1.05, 1.1, 1.1, 1.05, 1.0, 0.8, 0.85])
"""Monday..Sunday: a little less posting at weekends."""


def _family_table() -> np.ndarray:
    """(network, action code) -> 0 other, 1 conversation, 2 amplification."""
    table = np.zeros((len(NETWORKS), len(ALL_ACTIONS)), dtype=np.int8)
    for i, network in enumerate(NETWORKS):
        for j, name in enumerate(ALL_ACTIONS):
            try:
                fam = family_of(network, name)
            except KeyError:
                continue
            table[i, j] = {Family.CONVERSATION: 1, Family.AMPLIFICATION: 2}.get(fam, 0)
    return table


FAMILY_KIND = _family_table()
ONCE_ONLY = np.array(
    [
        any(
            a.name == name and a.family == Family.ENDORSEMENT and not a.on_post
            for actions in VOCABULARY.values()
            for a in actions
        )
        for name in ALL_ACTIONS
    ]
)
"""Action codes made at most once per (actor, target): subscribe, list_add, recommendation..."""


@dataclass(frozen=True)
class World:
    cfg: WorldConfig
    nets: NetworkTables
    pop: Population
    start_weekday: int


@dataclass(frozen=True)
class State:
    influence: np.ndarray
    """Latent influence per user, today."""
    earned: np.ndarray
    """Followers won (or lost) inside the window, per account, purchases excluded."""
    bought: np.ndarray
    """Followers bought inside the window, per account."""
    followed: np.ndarray
    """Accounts followed inside the window beyond the account's ramp-up, per account."""
    posts_total: np.ndarray
    endorsed: np.ndarray
    """Sorted keys of (actor, target, action) for once-only actions already made (subscribe,
    list_add, recommendation, endorsement): nobody subscribes twice to the same channel."""
    recip_actor: np.ndarray
    recip_target: np.ndarray
    """Yesterday's replies and shares (actor account -> target account), to be returned."""
    next_post_id: int
    next_interaction_id: int


@dataclass(frozen=True)
class DayOutput:
    day: int
    post_id: np.ndarray
    post_account: np.ndarray
    post_sec: np.ndarray
    post_media: np.ndarray
    interaction_id: np.ndarray
    interaction_sec: np.ndarray
    actor: np.ndarray
    target: np.ndarray
    action: np.ndarray
    interaction_post: np.ndarray
    """Post id, -1 for actions on the user."""
    profile_account: np.ndarray
    followers: np.ndarray
    following: np.ndarray
    lists: np.ndarray
    """-1 on networks without lists."""
    posts_total: np.ndarray


def initial_state(world: World) -> State:
    acc = world.pop.accounts
    m = len(acc.user)
    empty = np.zeros(0, dtype=np.int64)
    return State(
        influence=world.pop.users.influence.copy(),
        earned=np.zeros(m),
        bought=np.zeros(m),
        followed=np.zeros(m),
        posts_total=acc.posts_before.copy(),
        endorsed=np.zeros(0, dtype=np.int64),
        recip_actor=empty,
        recip_target=empty,
        next_post_id=POST_ID_BASE,
        next_interaction_id=INTERACTION_ID_BASE,
    )


def real_audience(world: World, state: State, day: int) -> np.ndarray:
    """Followers who are real people: the potential audience reached so far, plus what was
    earned in the window. Bought followers are counted in the public counter only."""
    acc = world.pop.accounts
    age = np.maximum(day - acc.created_day, 0)
    ramp = -np.expm1(-age / AUDIENCE_RAMP_DAYS)
    return np.maximum(acc.audience_potential * ramp + state.earned, 0.0)


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _after(sec: np.ndarray, rng: np.random.Generator, spread: float = 4.0) -> np.ndarray:
    """A time after `sec` in the same day, mostly soon after (Beta(1, spread) of what is left);
    DAY_SEC when nothing is left (the caller drops those)."""
    remaining = DAY_SEC - 1 - sec
    x = 1.0 - rng.random(len(sec)) ** (1.0 / spread)
    out = sec + 1 + np.floor(np.maximum(remaining - 1, 0) * x).astype(np.int64)
    return np.where(remaining >= 1, out, DAY_SEC)


@dataclass(frozen=True)
class _Today:
    """What every part of a day reads: who exists, audiences, influence, today's posts."""

    day: int
    active: np.ndarray
    audience: np.ndarray
    reach: np.ndarray
    z_acc: np.ndarray
    is_bot_acc: np.ndarray
    author: np.ndarray
    post_id: np.ndarray
    post_sec: np.ndarray
    post_net: np.ndarray


@dataclass
class _Rows:
    """Interaction rows gathered during a day, concatenated at the end."""

    parts: list

    def add(self, actor, target, action, post, sec) -> None:
        self.parts.append((actor, target, action, post, sec))

    def concat(self) -> tuple[np.ndarray, ...]:
        if not self.parts:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z, z, z
        cols = zip(*self.parts)
        return tuple(np.concatenate([np.asarray(c, dtype=np.int64) for c in col]) for col in cols)


def _engage(
    world: World,
    active: np.ndarray,
    source: np.ndarray,
    author: np.ndarray,
    appeal: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Exposures -> reactions. `source[i]` is the account whose audience sees exposure i,
    `author[i]` who gets the reaction. Returns (indices of exposures that reacted, actors)."""
    pop, cfg = world.pop, world.cfg
    acc, graph = pop.accounts, pop.graph
    k = len(source)
    u = rng.random(k)
    degree = graph.offset[source + 1] - graph.offset[source]
    from_followers = (degree > 0) & (rng.random(k) < cfg.follow_fraction)
    actor = np.empty(k, dtype=np.int64)
    fi = np.flatnonzero(from_followers)
    s = source[fi]
    actor[fi] = graph.follower[
        sample_segment(graph.cum, graph.offset[s], graph.offset[s + 1], u[fi])
    ]
    pi = np.flatnonzero(~from_followers)
    net = acc.network[source[pi]]
    actor[pi] = sample_segment(
        pop.pool_cum, acc.network_start[net], acc.network_start[net + 1], u[pi]
    )
    user = acc.user[actor]
    keep = active[actor] & (user != acc.user[author]) & (pop.users.reactivity[user] > 0)
    keep &= rng.random(k) < appeal ** pop.users.selectivity[user]
    idx = np.flatnonzero(keep)
    return idx, actor[idx]


def _choose_reaction(
    world: World, net: np.ndarray, actor: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """An on-post action per reaction: the network's mix, tilted by the actor's style
    (some people mostly reply, some mostly share)."""
    nets, users = world.nets, world.pop.users
    user = world.pop.accounts.user[actor]
    style = nets.reaction_style[net]
    mult = np.where(
        style == 1,
        users.talk_style[user][:, None],
        np.where(style == 2, users.share_style[user][:, None], 1.0),
    )
    cum = np.cumsum(nets.reaction_weight[net] * mult, axis=1)
    r = rng.random(len(net)) * cum[:, -1]
    slot = (cum <= r[:, None]).sum(axis=1)
    return nets.reaction_code[net, slot].astype(np.int64)


def simulate_day(
    world: World, state: State, day: int, rng: np.random.Generator
) -> tuple[DayOutput, State]:
    cfg, nets, pop = world.cfg, world.nets, world.pop
    acc, users = pop.accounts, pop.users
    m = len(acc.user)
    active = (day - acc.created_day) > 0
    audience = real_audience(world, state, day)
    z_acc = state.influence[acc.user] + acc.influence_offset

    # Posts, in time order so ids grow with time.
    weekday = WEEKDAY_ACTIVITY[(world.start_weekday + day) % 7]
    n_posts = rng.poisson(acc.post_rate * weekday * active)
    author = np.repeat(np.arange(m), n_posts)
    post_sec = rng.integers(0, LAST_POST_SEC, len(author))
    order = np.lexsort((author, post_sec))
    author, post_sec = author[order], post_sec[order]
    n = len(author)
    today = _Today(
        day=day,
        active=active,
        audience=audience,
        reach=audience**cfg.alpha,
        z_acc=z_acc,
        is_bot_acc=users.is_bot[acc.user],
        author=author,
        post_id=state.next_post_id + np.arange(n, dtype=np.int64),
        post_sec=post_sec,
        post_net=acc.network[author],
    )
    media = rng.random(n) < acc.media_p[author]
    appeal = _expit(
        cfg.appeal_intercept
        + cfg.influence_slope * z_acc[author]
        + nets.media_boost[today.post_net] * media
        + rng.normal(0, 0.5, n)
    )

    rows = _Rows([])
    _waves(world, rows, today, appeal, rng)
    _user_level(world, rows, today, rng)
    _reciprocity(world, rows, state, today, rng)
    _bots(world, rows, today, rng)
    _bought_likes(world, rows, today, rng)
    _pods(world, rows, today, rng)
    actor, target, action, ipost, isec, endorsed = _finish(world, rows, state.endorsed)

    new_state = _advance(world, state, today, actor, target, action, rng)
    new_state = replace(
        new_state,
        endorsed=endorsed,
        next_post_id=state.next_post_id + n,
        next_interaction_id=state.next_interaction_id + len(actor),
    )
    followers, lists = public_counters(world, new_state, day + 1)
    shown = np.flatnonzero(active)
    out = DayOutput(
        day=day,
        post_id=today.post_id,
        post_account=author,
        post_sec=post_sec,
        post_media=media,
        interaction_id=state.next_interaction_id + np.arange(len(actor), dtype=np.int64),
        interaction_sec=isec,
        actor=actor,
        target=target,
        action=action,
        interaction_post=ipost,
        profile_account=shown,
        followers=followers[shown],
        following=public_following(world, new_state, day + 1)[shown],
        lists=lists[shown],
        posts_total=new_state.posts_total[shown],
    )
    return out, new_state


def _waves(world: World, rows: _Rows, today: _Today, appeal: np.ndarray, rng) -> None:
    """First wave: the author's audience reacts. Second wave: amplifiers (retweets, shares)
    expose the post to their own audience, the bigger theirs the more."""
    cfg, nets = world.cfg, world.nets
    author, post_net = today.author, today.post_net
    exposures = rng.poisson(nets.reach[post_net] * today.reach[author])
    exp_post = np.repeat(np.arange(len(author)), exposures)
    source = author[exp_post]
    hit, actor = _engage(world, today.active, source, source, appeal[exp_post], rng)
    p1 = exp_post[hit]
    action1 = _choose_reaction(world, post_net[p1], actor, rng)
    sec1 = _after(today.post_sec[p1], rng)
    rows.add(actor, author[p1], action1, today.post_id[p1], sec1)

    amp = np.flatnonzero(FAMILY_KIND[post_net[p1], action1] == 2)
    via = np.repeat(amp, rng.poisson(cfg.second_wave_reach * today.reach[actor[amp]]))
    hit2, actor2 = _engage(world, today.active, actor[via], author[p1[via]], appeal[p1[via]], rng)
    via = via[hit2]
    p2 = p1[via]
    action2 = _choose_reaction(world, post_net[p2], actor2, rng)
    rows.add(actor2, author[p2], action2, today.post_id[p2], _after(sec1[via], rng))


def public_counters(world: World, state: State, day: int) -> tuple[np.ndarray, np.ndarray]:
    """(followers, lists) as the networks show them. Bought followers inflate the followers
    counter but nobody puts an account on a list for them."""
    acc = world.pop.accounts
    real = real_audience(world, state, day)
    followers = np.floor(real + acc.bought_before + state.bought).astype(np.int64)
    lists = np.where(
        world.nets.has_lists[acc.network], np.floor(acc.list_ratio * real**0.95), -1
    ).astype(np.int64)
    return followers, lists


def public_following(world: World, state: State, day: int) -> np.ndarray:
    acc = world.pop.accounts
    age = np.maximum(day - acc.created_day, 0)
    ramp = -np.expm1(-age / acc.following_ramp)
    return np.floor(acc.following_potential * ramp + state.followed).astype(np.int64)


def _user_level(world: World, rows: _Rows, today: _Today, rng) -> None:
    """Mentions, list adds, subscriptions, recommendations: actions on a person, not a post."""
    cfg, acc = world.cfg, world.pop.accounts
    active, reach, z_acc, is_bot_acc = today.active, today.reach, today.z_acc, today.is_bot_acc
    targets, rates, codes = [], [], []
    for net, code, rate in world.nets.user_level:
        lo, hi = acc.network_start[net], acc.network_start[net + 1]
        ids = np.arange(lo, hi)
        ids = ids[active[lo:hi] & ~is_bot_acc[lo:hi]]
        targets.append(ids)
        rates.append(rate * reach[ids])
        codes.append(np.full(len(ids), code))
    if not targets:
        return
    target, rate, code = map(np.concatenate, (targets, rates, codes))
    count = rng.poisson(rate)
    exp_t = np.repeat(np.arange(len(target)), count)
    t = target[exp_t]
    appeal = _expit(cfg.appeal_intercept + cfg.influence_slope * z_acc[t])
    hit, actor = _engage(world, active, t, t, appeal, rng)
    rows.add(
        actor, t[hit], code[exp_t[hit]], np.full(len(hit), -1), rng.integers(0, DAY_SEC, len(hit))
    )


def _reciprocity(world: World, rows: _Rows, state: State, today: _Today, rng) -> None:
    """People return yesterday's replies and shares on the giver's first post of today (a
    favour not returned the next day is forgotten). Reacting only to same-day posts keeps
    every (post, actor, action) unique without remembering past reactions."""
    nets, acc = world.nets, world.pop.accounts
    # Big accounts cannot return every favour: the chance falls with the receiver's audience.
    chance = world.cfg.reciprocity / (1.0 + np.sqrt(today.audience[state.recip_target] / 2_000.0))
    back = rng.random(len(state.recip_actor)) < chance
    giver, receiver = state.recip_actor[back], state.recip_target[back]
    post = _first_of_each(today.author, len(acc.user))[giver]
    ok = (post >= 0) & today.active[receiver]
    giver, receiver, post = giver[ok], receiver[ok], post[ok]
    net = acc.network[giver]
    talk = rng.random(len(giver)) < 0.25
    action = np.where(talk, nets.conversation_code[net], nets.approval_code[net])
    rows.add(receiver, giver, action, today.post_id[post], _after(today.post_sec[post], rng))


def _bots(world: World, rows: _Rows, today: _Today, rng) -> None:
    """Bots like whatever was posted today on their network, at random."""
    active, author, post_id = today.active, today.author, today.post_id
    post_sec, post_net = today.post_sec, today.post_net
    pop, nets = world.pop, world.nets
    bots = pop.bots_by_network
    bots = bots[active[bots]]
    liker = np.repeat(bots, rng.poisson(world.cfg.bot_likes_per_day, len(bots)))
    net = pop.accounts.network[liker]
    by_net = np.argsort(post_net, kind="stable")
    start = np.searchsorted(post_net[by_net], np.arange(len(NETWORKS) + 1))
    available = start[net + 1] - start[net]
    ok = available > 0
    liker, net = liker[ok], net[ok]
    pick = by_net[start[net] + np.floor(rng.random(len(liker)) * available[ok]).astype(np.int64)]
    rows.add(
        liker, author[pick], nets.approval_code[net], post_id[pick], _after(post_sec[pick], rng)
    )


def _bought_likes(world: World, rows: _Rows, today: _Today, rng) -> None:
    """Accounts that bought likes get a batch of bot likes on every post, within minutes."""
    active, author, post_id = today.active, today.author, today.post_id
    post_sec, post_net = today.post_sec, today.post_net
    pop = world.pop
    buyer_posts = np.flatnonzero(pop.accounts.buys_likes[author])
    count = rng.poisson(world.cfg.bought_likes_per_post, len(buyer_posts))
    p = np.repeat(buyer_posts, count)
    net = post_net[p]
    lo, hi = pop.bot_start[net], pop.bot_start[net + 1]
    ok = hi > lo
    p, net, lo, hi = p[ok], net[ok], lo[ok], hi[ok]
    liker = pop.bots_by_network[lo + np.floor(rng.random(len(p)) * (hi - lo)).astype(np.int64)]
    ok = active[liker]
    p, liker, net = p[ok], liker[ok], net[ok]
    rows.add(
        liker,
        author[p],
        world.nets.approval_code[net],
        post_id[p],
        _after(post_sec[p], rng, spread=40.0),
    )


def _pods(world: World, rows: _Rows, today: _Today, rng) -> None:
    """Pod members like (and often comment on) every post of every other member, fast."""
    active, author, post_id = today.active, today.author, today.post_id
    post_sec, post_net = today.post_sec, today.post_net
    pop, nets = world.pop, world.nets
    pp = np.flatnonzero(pop.accounts.pod[author] >= 0)
    pod = pop.accounts.pod[author[pp]]
    size = pop.pod_offset[pod + 1] - pop.pod_offset[pod]
    p = np.repeat(pp, size)
    within = np.arange(len(p)) - np.repeat(np.cumsum(size) - size, size)
    member = pop.pod_member[np.repeat(pop.pod_offset[pod], size) + within]
    ok = active[member] & (member != author[p])
    p, member = p[ok], member[ok]
    net = post_net[p]
    like = rng.random(len(p)) < 0.9
    rows.add(
        member[like],
        author[p[like]],
        nets.approval_code[net[like]],
        post_id[p[like]],
        _after(post_sec[p[like]], rng, spread=20.0),
    )
    talk = rng.random(len(p)) < 0.5
    rows.add(
        member[talk],
        author[p[talk]],
        nets.conversation_code[net[talk]],
        post_id[p[talk]],
        _after(post_sec[p[talk]], rng, spread=20.0),
    )


def _finish(world, rows, endorsed: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop self-interactions, rows past midnight, repeats of an action on the same post, and
    once-only actions (subscribe...) already made; order by time. Also returns the updated
    keys of once-only actions made so far."""
    m = len(world.pop.accounts.user)
    n_actions = len(ALL_ACTIONS)
    actor, target, action, post, sec = rows.concat()
    user = world.pop.accounts.user
    keep = (user[actor] != user[target]) & (sec < DAY_SEC)
    actor, target, action, post, sec = (a[keep] for a in (actor, target, action, post, sec))

    repeat = np.zeros(len(actor), dtype=bool)
    on_post = np.flatnonzero(post >= 0)
    key = ((post[on_post] - POST_ID_BASE) * m + actor[on_post]) * n_actions + action[on_post]
    repeat[on_post[_repeats(key)]] = True
    once = np.flatnonzero(ONCE_ONLY[action])
    once_key = (actor[once] * m + target[once]) * n_actions + action[once]
    found = np.minimum(np.searchsorted(endorsed, once_key), max(len(endorsed) - 1, 0))
    done_before = (endorsed[found] == once_key) if len(endorsed) else np.zeros(len(once), bool)
    repeat[once[_repeats(once_key) | done_before]] = True
    endorsed = np.sort(np.concatenate([endorsed, once_key[~repeat[once]]]))
    actor, target, action, post, sec = (a[~repeat] for a in (actor, target, action, post, sec))

    # One int64 key (time, actor, target, action) orders the day; rows equal in all of them
    # are identical, so an unstable sort is still deterministic.
    if DAY_SEC * m * m * n_actions < 2**62:
        order = np.argsort(((sec * m + actor) * m + target) * n_actions + action)
    else:
        order = np.lexsort((action, target, actor, sec))
    return (*(a[order] for a in (actor, target, action, post, sec)), endorsed)


def _repeats(key: np.ndarray) -> np.ndarray:
    """Mask of the entries whose key already appeared earlier in the array."""
    by_key = np.argsort(key, kind="stable")
    sorted_key = key[by_key]
    mask = np.zeros(len(key), dtype=bool)
    mask[by_key[1:][sorted_key[1:] == sorted_key[:-1]]] = True
    return mask


def _first_of_each(group: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the first entry of each group (-1 where a group has none)."""
    first = np.full(n_groups, -1, dtype=np.int64)
    by_group = np.argsort(group, kind="stable")
    sorted_group = group[by_group]
    starts = np.concatenate([[True], sorted_group[1:] != sorted_group[:-1]]) if len(group) else []
    first[sorted_group[starts]] = by_group[starts]
    return first


def _advance(
    world: World,
    state: State,
    today: _Today,
    actor: np.ndarray,
    target: np.ndarray,
    action: np.ndarray,
    rng: np.random.Generator,
) -> State:
    """Counters move: engagement from big accounts brings followers (future reach), people
    follow a few more accounts, bots follow many; latent influence drifts weekly."""
    acc = world.pop.accounts
    m = len(acc.user)
    day, audience, active = today.day, today.audience, today.active
    kind = FAMILY_KIND[acc.network[target], action]
    gain = 0.001 * np.sqrt(audience[actor]) * np.where(kind == 2, 5.0, 1.0)
    organic = 0.0002 * audience * np.exp(0.4 * today.z_acc) * active
    churn = rng.poisson(0.0002 * audience)
    earned = state.earned + rng.poisson(np.bincount(target, gain, minlength=m) + organic) - churn

    bought = state.bought + np.where(acc.buy_day == day, acc.buy_size, 0.0)
    follow_rate = np.where(today.is_bot_acc, 25.0, 0.02 + 0.003 * np.sqrt(acc.following_potential))
    followed = state.followed + rng.poisson(follow_rate * active)

    is_bot = world.pop.users.is_bot
    giving = (kind > 0) & ~is_bot[acc.user[actor]] & ~is_bot[acc.user[target]]

    influence = state.influence
    if (day + 1) % 7 == 0:
        influence = drift_influence(world, influence, rng)
    return replace(
        state,
        influence=influence,
        earned=earned,
        bought=bought,
        followed=followed,
        posts_total=state.posts_total + np.bincount(today.author, minlength=m),
        recip_actor=actor[giving],
        recip_target=target[giving],
    )


def drift_influence(world: World, influence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A slow mean-reverting random walk around each person's long-run level."""
    users = world.pop.users
    step = -0.03 * (influence - users.influence) + world.cfg.influence_drift * rng.normal(
        size=len(influence)
    )
    return np.where(users.is_bot, influence, influence + step)
