"""The model bundle: everything needed to turn a features frame into scores, as plain files.

API (small and stable: serving, daily scoring and the MLflow registry build on it)::

    bundle = ModelBundle.load("models/influence-score")
    bundle.score(features)    # -> user_id, as_of, raw, score, percentile, provisional
    bundle.explain(features)  # -> list[Explanation] (points per network/family, top factors)
    bundle.save(directory)

`features` is the wide frame of `features.featurize` (one row per user_id and as_of, one column
per model feature); extra columns are ignored, a missing model feature is an error. `score` is
vectorised and never computes explanations; `explain` runs TreeSHAP and costs ~1 ms a row.

Files written by `save` (no pickles):

- `model.txt`        the LightGBM Booster, text format (`lgb.Booster(model_file=...)`)
- `calibrator.json`  the raw -> 1..100 map and the reference percentile grid (`training.calibrate`)
- `bundle.json`      version, feature names, signal catalog of the model's features, reference
                     fingerprint, provisional rule, label transform, training metadata

Score: a float in [1, 100] (display rounding is the caller's). Percentile: 0-100 within the
reference population. Provisional (see `ProvisionalRule`): the newest linked network was linked
less than 30 days ago, or the user's oldest account is younger than 30 days: the signals do not
yet cover a full month, so the score will still move as history arrives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from features.featurize import FeatureMatrix
from influence.vocabulary import NETWORKS
from training.calibrate import Calibrator
from training.compiled import CompiledTrees
from training.explain import (
    CROSS_NETWORK,
    NEW_ACCOUNT,
    Explanation,
    build_explanations,
    contributions_to_points,
    network_points,
    network_shares,
)

FORMAT_VERSION = 1
MODEL_FILE = "model.txt"
CALIBRATOR_FILE = "calibrator.json"
BUNDLE_FILE = "bundle.json"
KEYS = ("user_id", "as_of")
SCORE_SCHEMA = {
    "user_id": pl.String,
    "as_of": pl.Date,
    "raw": pl.Float64,
    "score": pl.Float64,
    "percentile": pl.Float64,
    "provisional": pl.Boolean,
}


@dataclass(frozen=True)
class FeatureInfo:
    """What one model feature is, for explanations and constraints."""

    name: str
    network: str
    """A network name, or `CROSS_NETWORK` for features over several networks."""
    family: str
    meaning: str
    window: int | None = None
    monotone: int = 0
    """The constraint the model was trained with: +1 never lowers the score when the feature
    rises, -1 never raises it, 0 free."""
    signal: str | None = None
    """The snapshot signal the feature derives from, when there is one."""


@dataclass(frozen=True)
class ProvisionalRule:
    """provisional = some linked network has days_linked < days, or the user's oldest account
    is younger than `days`. Unknown ages (null) never make a score provisional.

    Hold-back: a user whose oldest account is younger than `days` has not had the time to show
    their influence (their windows hold days, not months). Their score above `hold_back_score`
    counts in proportion to the history they have: score' = h + (score - h) * age / days, so a
    9-day-old account keeps 30% of what the model sees above h, and the full score arrives at
    30 days. Scores at or below h are never changed (the rule only holds back, it never lifts),
    and the map is increasing, so every monotone promise of the model still holds.
    `hold_back_score` None: no hold-back."""

    days: int = 30
    days_linked: tuple[str, ...] = ()
    """Feature columns holding days since a network was linked (one per network)."""
    account_age: tuple[str, ...] = ()
    """Feature columns holding account age in days (per network, or the oldest account)."""
    log1p_days: bool = False
    """The columns hold log(1 + days) rather than days."""
    hold_back_score: float | None = None

    def history_weight(self, features: Features, oldest: np.ndarray | None = None) -> np.ndarray:
        """min(1, oldest account age / days); 1 when the age is unknown. `oldest`: the user's
        `oldest_account` when the caller has it already."""
        n = _height(features)
        if not self.account_age or self.hold_back_score is None:
            return np.ones(n)
        oldest = self.oldest_account(features) if oldest is None else oldest
        return np.clip(oldest / self.days, 0.0, 1.0)

    def oldest_account(self, features: Features) -> np.ndarray:
        """Days since the user's oldest account was created; inf when unknown."""
        if not self.account_age:
            return np.full(_height(features), np.inf)
        age = self._days(features, self.account_age)
        known = ~np.isnan(age).all(axis=1)
        return np.where(known, np.nan_to_num(age, nan=-np.inf).max(axis=1), np.inf)

    def hold_back(self, score: np.ndarray, weight: np.ndarray) -> np.ndarray:
        if self.hold_back_score is None:
            return score
        h = self.hold_back_score
        return np.where(score > h, h + (score - h) * weight, score)

    def apply(self, features: Features, oldest: np.ndarray | None = None) -> np.ndarray:
        """Whether each score is provisional (see the class docstring)."""
        n = _height(features)
        flag = np.zeros(n, dtype=bool)
        if self.days_linked:
            linked = self._days(features, self.days_linked)
            with np.errstate(invalid="ignore"):
                flag |= np.nan_to_num(linked, nan=np.inf).min(axis=1) < self.days - 1e-6
        if self.account_age:
            oldest = self.oldest_account(features) if oldest is None else oldest
            flag |= oldest < self.days - 1e-6
        return flag

    def _days(self, features: Features, columns: tuple[str, ...]) -> np.ndarray:
        values = _matrix(features, columns)
        return np.expm1(values) if self.log1p_days else values


Features = pl.DataFrame | FeatureMatrix
"""What `score`/`explain` take: featurize's frame (batch) or its matrix (serving: no frame is
built for one request, which would cost more than the model)."""


def _matrix(features: Features, columns: tuple[str, ...] | list[str]) -> np.ndarray:
    if isinstance(features, FeatureMatrix):
        return _matrix_columns(features, tuple(columns))
    missing = [c for c in columns if c not in features.columns]
    if missing:
        raise KeyError(
            f"features frame lacks {len(missing)} model column(s), e.g. {missing[:5]}; "
            "build it with features.featurize"
        )
    return features.select(pl.col(c).cast(pl.Float64) for c in columns).to_numpy()


def _matrix_columns(features: FeatureMatrix, columns: tuple[str, ...]) -> np.ndarray:
    if columns is features.names:
        return features.values
    return features.values[:, _positions(features.names, columns)]


_POSITIONS: dict[tuple[int, int], tuple[tuple[str, ...], tuple[str, ...], np.ndarray]] = {}


def _positions(names: tuple[str, ...], columns: tuple[str, ...]) -> np.ndarray:
    """Where each of `columns` is in `names`. Cached by identity: a request asks for the same few
    tuples (featurize's names, the bundle's columns), and hashing ~900 names on every call cost
    more than the model's predict; the entry keeps both tuples alive, so their ids stay theirs."""
    hit = _POSITIONS.get((id(names), id(columns)))
    if hit is not None and hit[0] is names and hit[1] is columns:
        return hit[2]
    positions = _positions_of(names, columns)
    if len(_POSITIONS) > 64:
        _POSITIONS.clear()
    _POSITIONS[(id(names), id(columns))] = (names, columns, positions)
    return positions


@lru_cache(maxsize=16)
def _positions_of(names: tuple[str, ...], columns: tuple[str, ...]) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    missing = [c for c in columns if c not in index]
    if missing:
        raise KeyError(f"feature matrix lacks {len(missing)} model column(s), e.g. {missing[:5]}")
    return np.array([index[c] for c in columns], dtype=np.intp)


def _height(features: Features) -> int:
    return len(features.values) if isinstance(features, FeatureMatrix) else features.height


@dataclass(frozen=True)
class ModelBundle:
    booster: lgb.Booster
    calibrator: Calibrator
    feature_names: tuple[str, ...]
    catalog: tuple[FeatureInfo, ...]
    """One entry per feature name, same order."""
    reference_fingerprint: str
    version: str
    provisional: ProvisionalRule = ProvisionalRule()
    label_transform: str = "log1p"
    metadata: dict[str, Any] = field(default_factory=dict)
    """Training facts (params, rows, best iteration, LightGBM version); informative only."""
    compiled_trees: CompiledTrees | None = field(default=None, compare=False, repr=False)
    """The booster's trees compiled to C (`with_compiled_trees`): `raw` predicts with them."""

    def __post_init__(self) -> None:
        if tuple(self.booster.feature_name()) != tuple(self.feature_names):
            raise ValueError("booster features differ from the bundle's feature_names")
        if tuple(c.name for c in self.catalog) != tuple(self.feature_names):
            raise ValueError("catalog entries must follow feature_names one to one")

    # --- scoring ----------------------------------------------------------------------------

    def matrix(self, features: Features) -> np.ndarray:
        """The model's input matrix [n, p] (float64, NaN = unknown) from a features frame or
        matrix."""
        return _matrix(features, self.feature_names)

    def raw(self, features: Features, num_threads: int | None = None) -> np.ndarray:
        """The booster's output; `num_threads` None: the bundle's (1 unless trained otherwise:
        a request is scored on one thread). Bulk callers may pass more. With compiled trees:
        theirs, on the calling thread (the same numbers)."""
        if self.compiled_trees is not None:
            if isinstance(features, FeatureMatrix):  # the model's columns read in place
                return self.compiled_trees.predict(
                    features.values, _positions(features.names, self.feature_names)
                )
            return self.compiled_trees.predict(self.matrix(features))
        threads = _threads(self) if num_threads is None else num_threads
        return self.booster.predict(self.matrix(features), num_threads=threads)

    def with_compiled_trees(self, directory: Path | None = None) -> ModelBundle:
        """This bundle predicting with its trees compiled to C (`training.compiled`): for bulk
        scoring. Itself, unchanged, when they can't be used (logged)."""
        from training.compiled import compile_trees

        trees = compile_trees(self.booster, directory)
        return self if trees is None else replace(self, compiled_trees=trees)

    def score(self, features: Features, num_threads: int | None = None) -> pl.DataFrame:
        """user_id, as_of, raw, score (1..100), percentile (0..100), provisional; row order kept."""
        return pl.DataFrame(
            {
                "user_id": _keys(features, "user_id", pl.String),
                "as_of": _keys(features, "as_of", pl.Date),
                **self.score_columns(features, num_threads),
            },
            schema=SCORE_SCHEMA,
        )

    def score_columns(
        self, features: Features, num_threads: int | None = None
    ) -> dict[str, np.ndarray]:
        """`score` without the frame: raw, score, percentile, provisional as arrays, row order
        kept (the HTTP service scores one request this way: the frame would cost more than the
        model)."""
        raw = self.raw(features, num_threads)
        model_score = self.calibrator.score(raw)
        oldest = self.provisional.oldest_account(features)
        weight = self.provisional.history_weight(features, oldest)
        score = self.provisional.hold_back(model_score, weight)
        percentile = self.calibrator.percentile(raw)
        held = score != model_score
        if held.any():
            percentile[held] = self.calibrator.percentile_of_score(score[held])
        return {
            "raw": raw,
            "score": score,
            "percentile": percentile,
            "provisional": self.provisional.apply(features, oldest),
        }

    def explain(self, features: Features, top_k: int = 5) -> list[Explanation]:
        """Per row: points per network and family adding up to score - baseline, top factors."""
        x = self.matrix(features)
        contrib = self.booster.predict(x, pred_contrib=True, num_threads=_threads(self))
        points, score, baseline = contributions_to_points(contrib, self.calibrator)
        held = self.provisional.hold_back(score, self.provisional.history_weight(features))
        linked = self._linked(features, x)
        return build_explanations(
            user_ids=_keys(features, "user_id", pl.String).to_list(),
            as_ofs=_keys(features, "as_of", pl.Date).to_list(),
            points=points,
            score=score,
            baseline=baseline,
            values=x,
            feature_names=self.feature_names,
            networks=[c.network for c in self.catalog],
            families=[c.family for c in self.catalog],
            meanings=[c.meaning for c in self.catalog],
            network_order=NETWORKS,
            linked=linked,
            shares=network_shares(_engagement(features), linked),
            adjustment=held - score,
            top_k=top_k,
        )

    def network_points(
        self, features: Features, num_threads: int | None = None
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(bucket labels, points [n, buckets], baseline [n]): the per-network split of
        `explain` without the rest (networks, then `cross_network`, `not_linked`, and
        `new_account`, the hold-back of a young account: see `ProvisionalRule`)."""
        x = self.matrix(features)
        threads = _threads(self) if num_threads is None else num_threads
        contrib = self.booster.predict(x, pred_contrib=True, num_threads=threads)
        points, score, baseline = contributions_to_points(contrib, self.calibrator)
        held = self.provisional.hold_back(score, self.provisional.history_weight(features))
        linked = self._linked(features, x)
        labels, sums = network_points(
            points,
            x,
            [c.network for c in self.catalog],
            linked=linked,
            shares=network_shares(_engagement(features), linked),
        )
        return [*labels, NEW_ACCOUNT], np.column_stack([sums, held - score]), baseline

    def _linked(self, features: Features, x: np.ndarray) -> np.ndarray:
        """[n, networks]: featurize's `<network>__linked` flag, else any known model feature."""
        flags = _optional_columns(features, [f"{n}__linked" for n in NETWORKS])
        networks = np.array([c.network for c in self.catalog])
        known = np.column_stack(
            [(~np.isnan(x[:, networks == n])).any(axis=1) for n in NETWORKS]
        )
        return np.where(np.isnan(flags), known, flags > 0.5)

    # --- files ------------------------------------------------------------------------------

    def save(self, directory: Path | str) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_text(self.booster.model_to_string())
        (directory / CALIBRATOR_FILE).write_text(json.dumps(self.calibrator.to_dict(), indent=1))
        (directory / BUNDLE_FILE).write_text(json.dumps(self._manifest(), indent=1, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> ModelBundle:
        """The bundle saved in `directory`, after checking that its files are the ones its
        version was made from (`verify_content`: raises BundleIntegrityError otherwise)."""
        directory = Path(directory)
        manifest = json.loads((directory / BUNDLE_FILE).read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{directory}: unsupported bundle format {manifest.get('format_version')}")
        calibration = verify_content(directory, manifest["version"])
        booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
        calibrator = Calibrator.from_dict(calibration)
        rule = manifest["provisional"]
        return cls(
            booster=booster,
            calibrator=calibrator,
            feature_names=tuple(manifest["feature_names"]),
            catalog=tuple(FeatureInfo(**entry) for entry in manifest["catalog"]),
            reference_fingerprint=manifest["reference_fingerprint"],
            version=manifest["version"],
            provisional=ProvisionalRule(
                days=rule["days"],
                days_linked=tuple(rule["days_linked"]),
                account_age=tuple(rule["account_age"]),
                log1p_days=bool(rule.get("log1p_days", False)),
                hold_back_score=rule.get("hold_back_score"),
            ),
            label_transform=manifest["label_transform"],
            metadata=manifest.get("metadata", {}),
        )

    def _manifest(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "feature_names": list(self.feature_names),
            "catalog": [asdict(c) for c in self.catalog],
            "reference_fingerprint": self.reference_fingerprint,
            "provisional": asdict(self.provisional),
            "label_transform": self.label_transform,
            "metadata": self.metadata,
        }

    def with_version(self, version: str) -> ModelBundle:
        return replace(self, version=version)


def content_version(booster: lgb.Booster, calibrator: Calibrator) -> str:
    """A version string that changes whenever the model or its scale changes."""
    return _content_hash(booster.model_to_string().encode(), calibrator.to_dict())


def _content_hash(model_text: bytes, calibration: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(model_text)
    digest.update(json.dumps(calibration, sort_keys=True).encode())
    return f"is-{digest.hexdigest()[:12]}"


class BundleIntegrityError(ValueError):
    """A bundle folder whose model or calibrator is not the one its version was made from."""


def verify_content(directory: Path, version: str) -> dict[str, Any]:
    """Check a saved bundle's files against its version before anything parses them, and
    return the calibrator's dict. The version is the content hash of `model.txt` (saved as
    `model_to_string()`, byte for byte) and of the calibration (`content_version`): recomputed
    from the files, a truncated or edited model is refused, named, before LightGBM reads it
    (a tampered model would otherwise answer under the genuine version)."""
    model = directory / MODEL_FILE
    calibration = json.loads((directory / CALIBRATOR_FILE).read_text())
    found = _content_hash(model.read_bytes(), calibration)
    if found != version:
        raise BundleIntegrityError(
            f"{model} (with {CALIBRATOR_FILE}) hashes to {found}, not to the bundle's version "
            f"{version}: the model files changed after they were saved (truncated, edited or "
            "swapped); refusing to load them"
        )
    return calibration


ENGAGEMENT_COLUMNS = ("log_unique_engagers__30d", "log_received__30d")
"""Per-network log(1 + x) columns whose x shares cross-network points among networks, in order
of preference (see `training.explain`)."""


def _engagement(features: Features) -> np.ndarray:
    out = np.full((_height(features), len(NETWORKS)), np.nan)
    for suffix in reversed(ENGAGEMENT_COLUMNS):
        values = np.expm1(_optional_columns(features, [f"{n}__{suffix}" for n in NETWORKS]))
        out = np.where(np.isnan(values), out, values)
    return out


def _optional_columns(features: Features, columns: list[str]) -> np.ndarray:
    """The columns that exist (NaN columns for the others)."""
    names = features.names if isinstance(features, FeatureMatrix) else features.columns
    present = [c for c in columns if c in names]
    out = np.full((_height(features), len(columns)), np.nan)
    if present:
        values = _matrix(features, present)
        for j, c in enumerate(columns):
            if c in present:
                out[:, j] = values[:, present.index(c)]
    return out


def _threads(bundle: ModelBundle) -> int:
    return int(bundle.metadata.get("num_threads", 1))


def _keys(features: Features, name: str, dtype: pl.DataType) -> pl.Series:
    if isinstance(features, FeatureMatrix):
        return pl.Series(name, getattr(features, name), dtype=dtype)
    if name in features.columns:
        return features.get_column(name).cast(dtype)
    return pl.Series(name, [None] * features.height, dtype=dtype)


__all__ = [
    "CROSS_NETWORK",
    "BundleIntegrityError",
    "Explanation",
    "FeatureInfo",
    "ModelBundle",
    "ProvisionalRule",
    "content_version",
]
