"""Is the synthetic world like the real one? Simulated Twitter accounts next to real ones.

The real sample (`twitter_profiles_peerindex.csv`, 2013 PeerIndex challenge) has per account:
followers, following, lists, and per-day rates of mentions/retweets received and sent and of
posts (floored at 0.1). `twitter_signals` computes the same columns from the raw tables only,
`compare` puts both side by side: quantiles (shape, not levels: the real sample leans towards
notable accounts) and Spearman rank correlations, the five that matter checked to +-0.15.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

SIGNALS = (
    "follower_count",
    "following_count",
    "listed_count",
    "mentions_received",
    "retweets_received",
    "mentions_sent",
    "retweets_sent",
    "posts",
)
RATES = SIGNALS[3:]
RATE_FLOOR = 0.1
"""The real sample never shows a rate below ~0.1; the simulated rates get the same floor."""
MIN_ACTIVE_DAYS = 14
"""Accounts younger than this inside the window have no stable rates and are left out."""
KEY_PAIRS: dict[tuple[str, str], float] = {
    ("follower_count", "listed_count"): 0.96,
    ("follower_count", "mentions_received"): 0.85,
    ("mentions_received", "retweets_received"): 0.94,
    ("follower_count", "following_count"): 0.27,
    ("posts", "mentions_received"): 0.62,
}
"""Rank correlations of the real sample the simulated one must match within TOLERANCE."""
TOLERANCE = 0.15
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

_MENTION_LIKE = ("mention", "reply")
_RETWEET_LIKE = ("retweet", "quote")
_STATUS_LIKE = ("mention", "reply", "retweet", "quote")
"""Actions that are tweets of their own, so they count in the posts rate like on Twitter."""


def twitter_signals(
    profiles: pl.LazyFrame, interactions: pl.LazyFrame, posts: pl.LazyFrame
) -> pl.DataFrame:
    """One row per simulated Twitter account with the real sample's columns.

    Counters come from the last day's profile; rates are events per day the account existed
    inside the window (its number of daily profile rows)."""
    tw = pl.col("network") == "twitter"
    prof = profiles.filter(tw)
    last = prof.select(pl.col("date").max()).collect().item()
    days = prof.group_by("user_id").agg(pl.len().alias("days"))
    counters = prof.filter(pl.col("date") == last).select(
        "user_id",
        pl.col("followers").alias("follower_count"),
        pl.col("following").alias("following_count"),
        pl.col("lists").fill_null(0).alias("listed_count"),
    )
    acts = interactions.filter(tw & (pl.col("actor_id") != pl.col("target_id")))
    received = acts.group_by(pl.col("target_id").alias("user_id")).agg(
        pl.col("action").is_in(_MENTION_LIKE).sum().alias("mentions_received"),
        pl.col("action").is_in(_RETWEET_LIKE).sum().alias("retweets_received"),
    )
    sent = acts.group_by(pl.col("actor_id").alias("user_id")).agg(
        pl.col("action").is_in(_MENTION_LIKE).sum().alias("mentions_sent"),
        pl.col("action").is_in(_RETWEET_LIKE).sum().alias("retweets_sent"),
        pl.col("action").is_in(_STATUS_LIKE).sum().alias("statuses_sent"),
    )
    own = posts.filter(tw).group_by("user_id").agg(pl.len().alias("own_posts"))
    joined = (
        counters.join(days, on="user_id")
        .join(received, on="user_id", how="left")
        .join(sent, on="user_id", how="left")
        .join(own, on="user_id", how="left")
        .fill_null(0)
        .filter(pl.col("days") >= MIN_ACTIVE_DAYS)
        .with_columns(posts=pl.col("own_posts") + pl.col("statuses_sent"))
    )
    rate = [(pl.col(c) / pl.col("days")).clip(lower_bound=RATE_FLOOR).alias(c) for c in RATES]
    return joined.select("user_id", *SIGNALS[:3], *rate).sort("user_id").collect()


def default_real_sample() -> Path:
    """The shared real sample, next to the repository (../shared/data)."""
    return (
        Path(__file__).resolve().parents[2] / "shared" / "data" / "twitter_profiles_peerindex.csv"
    )


def read_raw_signals(raw: Path) -> pl.DataFrame:
    raw = Path(raw)

    def scan(t: str) -> pl.LazyFrame:
        return pl.scan_parquet(raw / t, hive_partitioning=True)

    return twitter_signals(scan("profiles"), scan("interactions"), scan("posts"))


def read_real(path: Path) -> pl.DataFrame:
    return pl.read_csv(path).select(SIGNALS)


def spearman(frame: pl.DataFrame) -> dict[str, dict[str, float]]:
    ranks = np.column_stack([frame[c].rank("average").to_numpy() for c in SIGNALS])
    corr = np.corrcoef(ranks, rowvar=False)
    return {
        a: {b: round(float(corr[i, j]), 3) for j, b in enumerate(SIGNALS)}
        for i, a in enumerate(SIGNALS)
    }


def _spread(frame: pl.DataFrame) -> dict[str, float]:
    """Decades between the 5% and 95% quantiles: the shape of a heavy tail, not its level."""
    out = {}
    for c in SIGNALS:
        lo, hi = (max(float(frame[c].quantile(q, "linear")), RATE_FLOOR) for q in (0.05, 0.95))
        out[c] = round(float(np.log10(hi / lo)), 2)
    return out


def _quantiles(frame: pl.DataFrame) -> dict[str, list[float]]:
    return {
        c: [round(float(frame[c].quantile(q, "linear")), 3) for q in QUANTILES] for c in SIGNALS
    }


def _key_pairs(sim_corr: dict, real_corr: dict) -> list[dict]:
    pairs = []
    for (a, b), target in KEY_PAIRS.items():
        sim, measured = sim_corr[a][b], real_corr[a][b]
        pairs.append(
            {
                "pair": f"{a}~{b}",
                "real": measured,
                "brief": target,
                "simulated": sim,
                "delta": round(sim - measured, 3),
                "ok": abs(sim - measured) <= TOLERANCE,
            }
        )
    return pairs


def compare(simulated: pl.DataFrame, real: pl.DataFrame) -> dict:
    """The realism report: sizes, quantiles side by side, rank correlations, key-pair check.

    `notable` repeats the key pairs on the simulated accounts at least as followed as the real
    sample's 5% quantile, for information: the real sample leans towards notable accounts."""
    sim_corr, real_corr = spearman(simulated), spearman(real)
    pairs = _key_pairs(sim_corr, real_corr)
    floor = float(real["follower_count"].quantile(0.05, "linear"))
    notable = simulated.filter(pl.col("follower_count") >= floor)
    return {
        "accounts": {"simulated": simulated.height, "real": real.height},
        "quantiles": {
            "q": list(QUANTILES),
            "simulated": _quantiles(simulated),
            "real": _quantiles(real),
        },
        "decades_5_to_95": {"simulated": _spread(simulated), "real": _spread(real)},
        "spearman": {"simulated": sim_corr, "real": real_corr},
        "key_pairs": pairs,
        "notable": {
            "min_followers": floor,
            "accounts": notable.height,
            "key_pairs": _key_pairs(spearman(notable), real_corr) if notable.height > 2 else [],
        },
        "tolerance": TOLERANCE,
        "ok": all(p["ok"] for p in pairs),
    }


def render(report: dict) -> str:
    """Plain-text tables of a `compare` report, for the terminal."""
    q = report["quantiles"]
    head = "  ".join(f"{'q' + format(x, 'g'):>10}" for x in q["q"])
    sizes = report["accounts"]
    lines = [
        f"accounts: simulated {sizes['simulated']:,}, real {sizes['real']:,}",
        "",
        f"{'signal':<19}{'':5}{head}",
    ]
    spread = report["decades_5_to_95"]
    for c in SIGNALS:
        for who in ("simulated", "real"):
            vals = "  ".join(f"{v:>10.4g}" for v in q[who][c])
            lines.append(
                f"{c if who == 'simulated' else '':<19}{who[:4]:<5}{vals}"
                f"   {spread[who][c]:>4.1f} decades"
            )
    lines += ["", f"{'rank correlation':<42}{'real':>7}{'sim':>7}{'delta':>7}"]
    for p in report["key_pairs"]:
        mark = "ok" if p["ok"] else "OFF"
        lines.append(
            f"{p['pair']:<42}{p['real']:>7.2f}{p['simulated']:>7.2f}{p['delta']:>+7.2f}  {mark}"
        )
    notable = report["notable"]
    lines.append(
        f"(notable only, followers >= {notable['min_followers']:.0f}, "
        f"{notable['accounts']:,} accounts: "
        + ", ".join(f"{p['simulated']:.2f}" for p in notable["key_pairs"])
        + ")"
    )
    lines.append(f"\nall key pairs within +-{report['tolerance']}: {report['ok']}")
    return "\n".join(lines)
