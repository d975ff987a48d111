"""The map from the model's raw output to the 1-100 score, fitted on a reference population.

Form (monotone, continuous, with a continuous slope)::

    u(r)     = a + b * r                                  the "linear score"
    h(u)     = u                                          for u <= k   (the knee)
             = k + log(1 + alpha * (u - k)) / alpha       for u >  k   (alpha >= 0)
    score(r) = clip(h(u(r)), 1, 100)

Above the knee `k` the map is concave: the raw output needed for +1 point at score s is
exp(alpha * (s - k)) / b, which grows with s, so each point is harder to earn than the last (and
since the model's raw output is log(1 + outcome), the outcome needed grows faster still).

Fit, on the raw outputs of the reference population: `a`, `b` and `alpha` are the solution of
three conditions, mean score = target_mean, 95th percentile = target_p95, and the reference's
(1 - elite_share) quantile = elite_score - elite_margin, so at most elite_share of the reference
reaches the elite score. When a light tail keeps the elite below that even with the least
curvature, alpha is `min_alpha` (the curvature never drops below it). A retrain refits a, b and alpha on the same reference population, so the scale keeps
its shape and users move only when their standing among the reference moves.

The percentile is the reference population's empirical CDF at r (mid-rank for ties), kept as a
grid of at most `GRID_SIZE` knots and interpolated linearly.

Everything is plain numbers and serialises to JSON (`to_dict` / `from_dict`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq

SCORE_MIN = 1.0
SCORE_MAX = 100.0
GRID_SIZE = 2001
_ALPHA_MAX = 0.5


class CalibrationError(ValueError):
    """The reference population cannot satisfy the calibration targets."""


@dataclass(frozen=True)
class CalibrationTargets:
    mean: float = 40.0
    p95: float = 63.0
    elite_score: float = 90.0
    elite_share: float = 0.001
    elite_margin: float = 1.0
    knee: float = 50.0
    min_alpha: float = 0.02
    """Least curvature above the knee: at knee + 35 (score 85) a point costs at least
    exp(0.02 * 35) = 2x the raw output it costs at the knee, even when the tail is light."""

    @classmethod
    def from_params(cls, params) -> CalibrationTargets:
        """From a `CalibrateParams` section."""
        return cls(
            mean=params.target_mean,
            p95=params.target_p95,
            elite_score=params.elite_score,
            elite_share=params.elite_share,
            elite_margin=params.elite_margin,
            knee=params.knee_score,
            min_alpha=params.min_alpha,
        )


# --- the shape ------------------------------------------------------------------------------


def _bend(u: np.ndarray, knee: float, alpha: float) -> np.ndarray:
    """h(u): identity below the knee, logarithmic above it."""
    u = np.asarray(u, dtype=np.float64)
    if alpha <= 0:
        return u.copy()
    above = np.maximum(u - knee, 0.0)
    return np.where(u > knee, knee + np.log1p(alpha * above) / alpha, u)


def _unbend(h: float, knee: float, alpha: float) -> float:
    """The inverse of h for a scalar."""
    if alpha <= 0 or h <= knee:
        return h
    return knee + math.expm1(alpha * (h - knee)) / alpha


def _bend_slope(u: np.ndarray, knee: float, alpha: float) -> np.ndarray:
    u = np.asarray(u, dtype=np.float64)
    if alpha <= 0:
        return np.ones_like(u)
    return np.where(u > knee, 1.0 / (1.0 + alpha * np.maximum(u - knee, 0.0)), 1.0)


@dataclass(frozen=True)
class Calibrator:
    """raw -> score and raw -> percentile, fitted by `fit_calibrator`."""

    a: float
    b: float
    alpha: float
    knee: float
    grid_raw: tuple[float, ...]
    """Reference raw values (sorted, distinct) ..."""
    grid_percentile: tuple[float, ...]
    """... and their percentile (0-100) in the reference population."""
    reference_size: int
    reference_mean_raw: float

    def score(self, raw: np.ndarray) -> np.ndarray:
        u = self.a + self.b * np.asarray(raw, dtype=np.float64)
        return np.clip(_bend(u, self.knee, self.alpha), SCORE_MIN, SCORE_MAX)

    def slope(self, raw: np.ndarray) -> np.ndarray:
        """d score / d raw (0 where the score is clipped)."""
        raw = np.asarray(raw, dtype=np.float64)
        u = self.a + self.b * raw
        h = _bend(u, self.knee, self.alpha)
        inside = (h > SCORE_MIN) & (h < SCORE_MAX)
        return np.where(inside, self.b * _bend_slope(u, self.knee, self.alpha), 0.0)

    def raw_for_score(self, score: float) -> float:
        """The raw output that maps to `score` (inside (1, 100))."""
        return (_unbend(score, self.knee, self.alpha) - self.a) / self.b

    def percentile(self, raw: np.ndarray) -> np.ndarray:
        xs = np.asarray(self.grid_raw)
        ps = np.asarray(self.grid_percentile)
        return np.interp(np.asarray(raw, dtype=np.float64), xs, ps, left=0.0, right=100.0)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["form"] = "clip(h(a + b*raw), 1, 100); h(u) = u below knee, knee + log1p(alpha*(u-knee))/alpha above"
        out["grid_raw"] = list(self.grid_raw)
        out["grid_percentile"] = list(self.grid_percentile)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        fields = {k: v for k, v in data.items() if k != "form"}
        fields["grid_raw"] = tuple(float(x) for x in fields["grid_raw"])
        fields["grid_percentile"] = tuple(float(x) for x in fields["grid_percentile"])
        return cls(**fields)


# --- the fit --------------------------------------------------------------------------------


def percentile_grid(raw: np.ndarray, size: int = GRID_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Distinct sorted raw values with their mid-rank percentile, thinned to at most `size`
    knots (always keeping the smallest and largest)."""
    values, counts = np.unique(np.asarray(raw, dtype=np.float64), return_counts=True)
    below = np.cumsum(counts) - counts
    pct = 100.0 * (below + 0.5 * counts) / counts.sum()
    if len(values) > size:
        keep = np.unique(np.round(np.linspace(0, len(values) - 1, size)).astype(int))
        values, pct = values[keep], pct[keep]
    return values, pct


def _solve_linear(raw: np.ndarray, q95: float, alpha: float, t: CalibrationTargets):
    """(a, b) giving the target p95 exactly and the target mean, for a given alpha."""
    u95 = _unbend(t.p95, t.knee, alpha)
    centred = raw - q95

    def mean_gap(b: float) -> float:
        scores = np.clip(_bend(u95 + b * centred, t.knee, alpha), SCORE_MIN, SCORE_MAX)
        return float(scores.mean()) - t.mean

    spread = float(np.std(raw)) or 1.0
    low, high = 1e-6 / spread, 1e6 / spread
    if mean_gap(low) < 0 or mean_gap(high) > 0:
        raise CalibrationError(
            "no linear scale reaches the target mean with the target p95: the reference "
            "population's raw outputs are too concentrated"
        )
    b = brentq(mean_gap, low, high, xtol=1e-12 / spread, rtol=1e-12, maxiter=500)
    return u95 - b * q95, b


def fit_calibrator(raw: np.ndarray, targets: CalibrationTargets = CalibrationTargets()) -> Calibrator:
    """Fit the map on the reference population's raw outputs (see the module docstring)."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size < 100 or not np.isfinite(raw).all():
        raise CalibrationError(f"need at least 100 finite raw outputs, got {raw.size}")
    if np.ptp(raw) == 0:
        raise CalibrationError("all reference raw outputs are equal")
    q95 = float(np.quantile(raw, 0.95))
    q_elite = float(np.quantile(raw, 1.0 - targets.elite_share))
    elite_at = targets.elite_score - targets.elite_margin

    def elite_gap(alpha: float) -> float:
        a, b = _solve_linear(raw, q95, alpha, targets)
        return float(_bend(np.array([a + b * q_elite]), targets.knee, alpha)[0]) - elite_at

    alpha = targets.min_alpha
    if elite_gap(alpha) > 0:
        if elite_gap(_ALPHA_MAX) > 0:
            raise CalibrationError("the reference tail is too heavy to keep the elite share")
        alpha = brentq(elite_gap, targets.min_alpha, _ALPHA_MAX, xtol=1e-10, maxiter=200)
    a, b = _solve_linear(raw, q95, alpha, targets)
    xs, ps = percentile_grid(raw)
    return Calibrator(
        a=float(a),
        b=float(b),
        alpha=float(alpha),
        knee=float(targets.knee),
        grid_raw=tuple(float(x) for x in xs),
        grid_percentile=tuple(float(p) for p in ps),
        reference_size=int(raw.size),
        reference_mean_raw=float(raw.mean()),
    )


def calibration_report(calibrator: Calibrator, raw: np.ndarray) -> dict[str, float]:
    """How the fitted map meets its targets on a population (normally the reference)."""
    scores = calibrator.score(raw)
    return {
        "score_mean": float(scores.mean()),
        "score_p95": float(np.quantile(scores, 0.95)),
        "score_min": float(scores.min()),
        "score_max": float(scores.max()),
        "score_share_90_plus": float((scores >= 90.0).mean()),
        "calibration_a": calibrator.a,
        "calibration_b": calibrator.b,
        "calibration_alpha": calibrator.alpha,
    }
