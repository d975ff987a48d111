"""The real Twitter sample (`../shared/data/twitter_profiles_peerindex.csv`) as signal snapshots.

The 2013 PeerIndex/Kaggle export has one row per account: three profile levels and five
activity *rates* that look like per-day averages (floor 0.1). The rule, one Twitter-only
snapshot per row with a window of `WINDOW_DAYS` days:

| CSV column | snapshot field (network `twitter`) | how |
| --- | --- | --- |
| follower_count | followers | level, as is |
| following_count | following | level, as is |
| listed_count | lists | level, as is |
| posts | posts | rate per day x window |
| mentions_received | received.mention | rate per day x window |
| retweets_received | received.retweet | rate per day x window |
| mentions_sent | sent.mention | rate per day x window |
| retweets_sent | sent.retweet | rate per day x window |
| network_feature_1..3 | - | ignored (undocumented graph features of the old provider) |

Everything else (likes, replies, unique engagers, account age, ...) is unknown and left out: the
snapshot contract scores partial snapshots, and nothing is imputed. `user_id` is `peerindex-<row>`
(the export has no ids), `as_of` is left empty.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from features.snapshot import SignalSnapshot

WINDOW_DAYS = 30
LEVELS: dict[str, str] = {
    "follower_count": "followers",
    "following_count": "following",
    "listed_count": "lists",
}
RATES: dict[str, tuple[str, ...]] = {
    "posts": ("posts",),
    "mentions_received": ("received", "mention"),
    "retweets_received": ("received", "retweet"),
    "mentions_sent": ("sent", "mention"),
    "retweets_sent": ("sent", "retweet"),
}
IGNORED = ("network_feature_1", "network_feature_2", "network_feature_3")


def twitter_signals(row: Mapping[str, Any], window_days: int = WINDOW_DAYS) -> dict[str, Any]:
    """The `networks.twitter` object of one CSV row, by the rule of the module docstring."""
    signals: dict[str, Any] = {"window_days": window_days, "received": {}, "sent": {}}
    for column, field in LEVELS.items():
        signals[field] = float(row[column])
    for column, target in RATES.items():
        value = float(row[column]) * window_days
        if len(target) == 1:
            signals[target[0]] = value
        else:
            signals[target[0]][target[1]] = value
    return signals


def row_to_snapshot(row: Mapping[str, Any], user_id: str) -> SignalSnapshot:
    return SignalSnapshot.model_validate(
        {"user_id": user_id, "networks": {"twitter": twitter_signals(row)}}
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))


def snapshots(rows: Iterable[Mapping[str, Any]]) -> list[SignalSnapshot]:
    return [row_to_snapshot(row, f"peerindex-{i}") for i, row in enumerate(rows)]


def load_snapshots(path: Path) -> list[SignalSnapshot]:
    """Every account of the CSV as a Twitter-only snapshot."""
    return snapshots(read_rows(path))
