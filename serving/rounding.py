"""How answers are rounded: scores, percentiles and points to 2 decimals, and points per network
or family so that they still add up exactly to score - baseline (in cents).

The model's numbers carry 15 decimals nobody can read; rounded one by one, parts that added up
to a total no longer would (five parts of x.xx4 lose two cents). `parts_to_total` rounds by the
largest-remainder rule: every part is floored to the cent, then the cents still missing go to
the parts that lost most.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

DECIMALS = 2
VALUE_DIGITS = 4


def parts_to_total(parts: Mapping[str, float], total: float, decimals: int = DECIMALS) -> dict[str, float]:
    """`parts` rounded to `decimals` so that they add up to `total` rounded the same way (when
    they added up to it before rounding; otherwise each is simply rounded)."""
    scale = 10**decimals
    exact = {k: v * scale for k, v in parts.items()}
    floors = {k: math.floor(v) for k, v in exact.items()}
    missing = round(total * scale) - sum(floors.values())
    if not 0 <= missing <= len(parts):
        return {k: round(v, decimals) + 0.0 for k, v in parts.items()}
    lost_most = sorted(exact, key=lambda k: exact[k] - floors[k], reverse=True)[:missing]
    return {k: (floors[k] + (k in lost_most)) / scale + 0.0 for k in parts}


def feature_value(value: float | None, digits: int = VALUE_DIGITS) -> float | None:
    """A factor's feature value: 4 decimals, or 4 significant digits when smaller."""
    if value is None or not math.isfinite(value) or value == 0:
        return value
    return round(value, max(digits, digits - 1 - math.floor(math.log10(abs(value))))) + 0.0


def rounded_score(row: Mapping[str, Any], decimals: int = DECIMALS) -> dict[str, Any]:
    """A result's fields with score, percentile and baseline rounded, points per network and
    family adding up to the rounded score minus the rounded baseline, and factors rounded."""
    out = dict(row)
    for key in ("score", "percentile", "baseline"):
        if out.get(key) is not None:
            out[key] = round(out[key], decimals) + 0.0
    if out.get("baseline") is not None:
        gap = out["score"] - out["baseline"]
        for key in ("networks", "families"):
            if out.get(key) is not None:
                out[key] = parts_to_total(out[key], gap, decimals)
    if out.get("factors") is not None:
        out["factors"] = [
            {**f, "points": round(f["points"], decimals) + 0.0, "value": feature_value(f.get("value"))}
            for f in out["factors"]
        ]
    return out
