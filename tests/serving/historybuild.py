"""Hand-built score-history rows and snapshots for the history and daily-job tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import polars as pl

from serving.history import HISTORY_SCHEMA, POINTS_DTYPE

WRITTEN_AT = datetime(2026, 11, 2, 6, 0)


def history_rows(day: date, scores: Mapping[str, float], model_version: str = "1") -> pl.DataFrame:
    """One history row per user of `scores` on `day` (raw = published, twitter points only)."""
    users = sorted(scores)
    n = len(users)
    return pl.DataFrame(
        {
            "user_id": users,
            "date": [day] * n,
            "score": [float(scores[u]) for u in users],
            "raw_score": [float(scores[u]) for u in users],
            "percentile": [min(99.0, float(scores[u])) for u in users],
            "provisional": [False] * n,
            "points": [{"twitter": float(scores[u]) - 40.0} for u in users],
            "signal_hash": [sum(map(ord, u)) for u in users],
            "model_version": [model_version] * n,
            "written_at": [WRITTEN_AT] * n,
        },
        schema_overrides={"points": POINTS_DTYPE},
    ).cast(dict(HISTORY_SCHEMA))


def snapshot_rows(user_id: str, as_of: date, **signals: float | None) -> pl.DataFrame:
    """A Twitter snapshot of one user: windows 7/30/90, the given signals in each, others null."""
    from features.snapshot import SNAPSHOT_DTYPES  # pandera: slow to import, not for the writer

    rows = [
        {"user_id": user_id, "as_of": as_of, "network": "twitter", "window_days": w, **signals}
        for w in (7, 30, 90)
    ]
    return pl.DataFrame(rows, schema=SNAPSHOT_DTYPES)
