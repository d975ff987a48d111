"""The map from the model's raw output to the 1-100 score, fitted on a reference population.

Form (monotone, continuous, with a continuous slope)::

    u(r)     = a + b * r                                    the "linear score"
    h(u)     = low - expm1(gamma * (low - u)) / gamma       for u <  low   (gamma >= 0)
             = u                                            for low <= u <= knee
             = knee + log1p(alpha * (u - knee)) / alpha     for u >  knee  (alpha > 0)
    score(r) = clip(h(u(r)), 1, 100)

The raw output needed for +1 point grows with the score everywhere: it is exp(-gamma*(low - s))/b
below `low`, 1/b in the middle and exp(alpha*(s - knee))/b above the knee, so each point is harder
to earn than the one before; above the knee the map is strictly concave (and since the model's
raw output is log(1 + outcome), the outcome needed for a point grows faster still). The convex
part below `low` only stretches the bottom of the scale so that the least active users land near
the floor target instead of bunching a long way above 1.

Fit, on the raw outputs of the reference population: `a` and `b` give the target mean and, exactly,
the target 95th percentile; `alpha` maps the reference's (1 - elite_share) quantile to
elite_score - elite_margin (so at most elite_share of the reference reaches the elite score; never
below `min_alpha`: with a light tail the elite is rarer still); `gamma` maps the reference's
`floor_share` quantile to `floor_score` (0 when the straight line already reaches it; at most
`max_gamma`, because stretching the many users with almost no engagement apart amplifies retrain
noise: the floor target is a wish, the stability bound is a promise). The three
conditions are solved by alternating one-dimensional root finds. A retrain refits them on the
same reference population, so the scale keeps its shape and users move only when their standing
among the reference moves.

The percentile is the reference population's empirical CDF at r (mid-rank for ties), kept as a
grid of at most `GRID_SIZE` knots and interpolated linearly.

Everything is plain numbers and serialises to JSON (`to_dict` / `from_dict`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
from scipy.optimize import brentq

SCORE_MIN = 1.0
SCORE_MAX = 100.0
GRID_SIZE = 2001
_ALPHA_MAX = 0.5
_ROUNDS = 12
FORM = (
    "clip(h(a + b*raw), 1, 100); h(u) = low - expm1(gamma*(low-u))/gamma below low, u between, "
    "knee + log1p(alpha*(u-knee))/alpha above knee"
)


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
    """Least curvature above the knee: at score 85 a point costs at least exp(0.02 * 35) = 2x
    the raw output it costs at the knee, even when the tail is light."""
    low: float = 30.0
    floor_score: float = 10.0
    floor_share: float = 0.01
    max_gamma: float = 0.1

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
            low=params.low_knee_score,
            floor_score=params.floor_score,
            floor_share=params.floor_share,
            max_gamma=params.max_gamma,
        )


# --- the shape ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """h(u) of the module docstring."""

    low: float
    knee: float
    gamma: float
    alpha: float

    def h(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        out = u.copy()
        if self.alpha > 0:
            above = u > self.knee
            out[above] = self.knee + np.log1p(self.alpha * (u[above] - self.knee)) / self.alpha
        if self.gamma > 0:
            below = u < self.low
            # the argument is capped: far below the floor the score is clipped to 1 anyway
            depth = np.minimum(self.gamma * (self.low - u[below]), 50.0)
            out[below] = self.low - np.expm1(depth) / self.gamma
        return out

    def slope(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        out = np.ones_like(u)
        if self.alpha > 0:
            above = u > self.knee
            out[above] = 1.0 / (1.0 + self.alpha * (u[above] - self.knee))
        if self.gamma > 0:
            below = u < self.low
            out[below] = np.exp(np.minimum(self.gamma * (self.low - u[below]), 50.0))
        return out

    def inverse(self, h: float) -> float:
        if h > self.knee and self.alpha > 0:
            return self.knee + math.expm1(self.alpha * (h - self.knee)) / self.alpha
        if h < self.low and self.gamma > 0:
            return self.low - math.log1p(self.gamma * (self.low - h)) / self.gamma
        return h


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
    gamma: float = 0.0
    low: float = 30.0

    @property
    def shape(self) -> Shape:
        return Shape(self.low, self.knee, self.gamma, self.alpha)

    def score(self, raw: np.ndarray) -> np.ndarray:
        u = self.a + self.b * np.asarray(raw, dtype=np.float64)
        return np.clip(self.shape.h(u), SCORE_MIN, SCORE_MAX)

    def slope(self, raw: np.ndarray) -> np.ndarray:
        """d score / d raw (0 where the score is clipped)."""
        u = self.a + self.b * np.asarray(raw, dtype=np.float64)
        h = self.shape.h(u)
        inside = (h > SCORE_MIN) & (h < SCORE_MAX)
        return np.where(inside, self.b * self.shape.slope(u), 0.0)

    def raw_for_score(self, score: float) -> float:
        """The raw output that maps to `score` (inside (1, 100))."""
        return (self.shape.inverse(score) - self.a) / self.b

    def percentile(self, raw: np.ndarray) -> np.ndarray:
        xs, ps = self._grid
        return np.interp(np.asarray(raw, dtype=np.float64), xs, ps, left=0.0, right=100.0)

    def percentile_of_score(self, score: np.ndarray) -> np.ndarray:
        """The reference percentile of a score (for scores that are not the map of a raw)."""
        return np.interp(np.asarray(score, dtype=np.float64), self._score_grid, self._grid[1])

    # The grids as arrays, made once (a request scores one row: converting 2,001 knots on every
    # call cost more than the model). Not fields: `to_dict` and equality ignore them.
    @cached_property
    def _grid(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.grid_raw, dtype=np.float64), np.asarray(self.grid_percentile)

    @cached_property
    def _score_grid(self) -> np.ndarray:
        return self.score(self._grid[0])

    def to_dict(self) -> dict:
        out = asdict(self)
        out["form"] = FORM
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


@dataclass(frozen=True)
class _Problem:
    raw: np.ndarray
    q95: float
    q_elite: float
    q_floor: float
    t: CalibrationTargets

    def linear(self, shape: Shape) -> tuple[float, float]:
        """(a, b) giving the target p95 exactly and the target mean, for a given shape."""
        u95 = shape.inverse(self.t.p95)
        centred = self.raw - self.q95

        def mean_gap(b: float) -> float:
            scores = np.clip(shape.h(u95 + b * centred), SCORE_MIN, SCORE_MAX)
            return float(scores.mean()) - self.t.mean

        spread = float(np.std(self.raw)) or 1.0
        low, high = 1e-6 / spread, 1e6 / spread
        if mean_gap(low) < 0 or mean_gap(high) > 0:
            raise CalibrationError(
                "no linear scale reaches the target mean with the target p95: the reference "
                "population's raw outputs are too concentrated"
            )
        b = brentq(mean_gap, low, high, xtol=1e-12 / spread, rtol=1e-12, maxiter=500)
        return u95 - b * self.q95, b

    def score_at(self, shape: Shape, raw: float) -> float:
        a, b = self.linear(shape)
        return float(shape.h(np.array([a + b * raw]))[0])

    def solve_alpha(self, gamma: float) -> float:
        t = self.t
        target = t.elite_score - t.elite_margin

        def gap(alpha: float) -> float:
            return self.score_at(Shape(t.low, t.knee, gamma, alpha), self.q_elite) - target

        if gap(t.min_alpha) <= 0:
            return t.min_alpha
        if gap(_ALPHA_MAX) > 0:
            raise CalibrationError("the reference tail is too heavy to keep the elite share")
        return brentq(gap, t.min_alpha, _ALPHA_MAX, xtol=1e-10, maxiter=200)

    def solve_gamma(self, alpha: float) -> float:
        t = self.t

        def gap(gamma: float) -> float:
            return self.score_at(Shape(t.low, t.knee, gamma, alpha), self.q_floor) - t.floor_score

        if gap(0.0) <= 0 or t.max_gamma <= 0:
            return 0.0
        if gap(t.max_gamma) > 0:
            return t.max_gamma
        return brentq(gap, 0.0, t.max_gamma, xtol=1e-10, maxiter=200)


def fit_calibrator(raw: np.ndarray, targets: CalibrationTargets = CalibrationTargets()) -> Calibrator:
    """Fit the map on the reference population's raw outputs (see the module docstring)."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size < 100 or not np.isfinite(raw).all():
        raise CalibrationError(f"need at least 100 finite raw outputs, got {raw.size}")
    if np.ptp(raw) == 0:
        raise CalibrationError("all reference raw outputs are equal")
    q95, q_elite, q_floor = np.quantile(
        raw, [0.95, 1.0 - targets.elite_share, targets.floor_share]
    )
    problem = _Problem(raw, float(q95), float(q_elite), float(q_floor), targets)
    alpha, gamma = targets.min_alpha, 0.0
    for _ in range(_ROUNDS):
        new_alpha = problem.solve_alpha(gamma)
        new_gamma = problem.solve_gamma(new_alpha)
        done = abs(new_alpha - alpha) < 1e-9 and abs(new_gamma - gamma) < 1e-9
        alpha, gamma = new_alpha, new_gamma
        if done:
            break
    shape = Shape(targets.low, targets.knee, gamma, alpha)
    a, b = problem.linear(shape)
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
        gamma=float(gamma),
        low=float(targets.low),
    )


def calibration_report(calibrator: Calibrator, raw: np.ndarray) -> dict[str, float]:
    """How the fitted map meets its targets on a population (normally the reference)."""
    scores = calibrator.score(raw)
    return {
        "score_mean": float(scores.mean()),
        "score_p95": float(np.quantile(scores, 0.95)),
        "score_p01": float(np.quantile(scores, 0.01)),
        "score_min": float(scores.min()),
        "score_max": float(scores.max()),
        "score_share_90_plus": float((scores >= 90.0).mean()),
        "calibration_a": calibrator.a,
        "calibration_b": calibrator.b,
        "calibration_alpha": calibrator.alpha,
        "calibration_gamma": calibrator.gamma,
    }
