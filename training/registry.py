"""The model registry: `influence-score` versions, the champion gate, promote and rollback, and
the loader the HTTP service and daily scoring use.

Aliases: `champion` is the model that scores users; `challenger` is the latest model that was
registered but did not pass the gate. A new version becomes champion only when it is at least as
good as the current champion on every gate metric (within a tolerance) and moves the scores of
the same snapshots by little enough (median and 99th percentile of |Δ score|); the first version
becomes champion by itself. `promote` and `rollback` move the alias on purpose.

History lives in model-version tags: a version that becomes champion records `previous_champion`
(the version it replaced), `champion_since` and `crowned_by` (gate, promote or rollback);
the version it replaced gets `dethroned_at`. `rollback` follows `previous_champion` of the
current champion and tags the version it leaves with `rolled_back_at`.

    from training.registry import load_champion
    bundle = load_champion()          # the ModelBundle behind models:/influence-score@champion
    scores = bundle.score(features)
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training import tracking_store
from training.model_logging import EXTRA_FILES_DIR, LGB_FLAVOR_FILE
from training.run_report import METRIC_NAMES
from training.tracking_store import TrackingSettings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from training.bundle import ModelBundle

MODEL_NAME = "influence-score"
CHAMPION = "champion"
CHALLENGER = "challenger"


REGISTERED_MODEL_DESCRIPTION = (
    "Influence score 1-100: a LightGBM booster and its calibration (`training.bundle`). "
    "`@champion` scores users (the HTTP service and daily scoring load it); `@challenger` is "
    "the latest version that did not pass the gate, or a DVC experiment's model held back. "
    "Each version's description says why. `influence promote --version N` and "
    "`influence rollback` move `champion` on purpose."
)


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (no champion, no previous champion, ...)."""


# --- the gate (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GateRules:
    metric_names: tuple[str, ...] = METRIC_NAMES
    metric_tolerance: float = 0.002
    stability_median_max: float = 1.0
    stability_p99_max: float = 5.0
    hold_experiments: bool = True


@dataclass(frozen=True)
class Stability:
    """|Δ score| between two models on the same snapshots."""

    median_abs_delta: float
    p99_abs_delta: float
    n: int


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: tuple[str, ...]
    metric_deltas: dict[str, float] = field(default_factory=dict)
    stability: Stability | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_stability(before: Sequence[float], after: Sequence[float]) -> Stability:
    before_a, after_a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before_a.shape != after_a.shape or before_a.size == 0:
        raise ValueError(
            f"stability needs the same non-empty snapshots scored twice, got "
            f"{before_a.shape} and {after_a.shape}"
        )
    delta = np.abs(after_a - before_a)
    return Stability(float(np.median(delta)), float(np.quantile(delta, 0.99)), int(delta.size))


def gate(
    challenger_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    stability: Stability | None,
    rules: GateRules = GateRules(),
) -> GateDecision:
    """Whether the challenger may replace the champion. No champion: it passes. Every gate metric
    must be at least the champion's minus the tolerance, and the stability within bounds."""
    if champion_metrics is None:
        return GateDecision(True, ("no champion yet: the first model becomes champion",))
    reasons: list[str] = []
    deltas: dict[str, float] = {}
    for name in rules.metric_names:
        if name not in challenger_metrics:
            reasons.append(f"{name}: missing from the challenger's metrics")
            continue
        if name not in champion_metrics:
            continue  # an older champion without this metric cannot veto on it
        deltas[name] = float(challenger_metrics[name]) - float(champion_metrics[name])
        if deltas[name] < -rules.metric_tolerance:
            reasons.append(
                f"{name}: {challenger_metrics[name]:.4f} is worse than the champion's "
                f"{champion_metrics[name]:.4f} by more than {rules.metric_tolerance}"
            )
    if stability is None:
        reasons.append("stability: not measured")
    else:
        if stability.median_abs_delta > rules.stability_median_max:
            reasons.append(
                f"stability: median |Δ score| {stability.median_abs_delta:.2f} > "
                f"{rules.stability_median_max}"
            )
        if stability.p99_abs_delta > rules.stability_p99_max:
            reasons.append(
                f"stability: p99 |Δ score| {stability.p99_abs_delta:.2f} > "
                f"{rules.stability_p99_max}"
            )
    passed = not reasons
    if passed:
        reasons = ["at least as good as the champion on every gate metric, and stable"]
    return GateDecision(passed, tuple(reasons), deltas, stability)


# --- registry operations -------------------------------------------------------------------------


def _client(settings: TrackingSettings | None = None) -> MlflowClient:
    return tracking_store.client(settings)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def version_by_alias(client: MlflowClient, alias: str, name: str = MODEL_NAME) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def register_version(
    client: MlflowClient,
    model_uri: str,
    run_id: str | None,
    tags: Mapping[str, str] | None = None,
    name: str = MODEL_NAME,
) -> ModelVersion:
    """A new version of `name` (created if needed) from a logged model (`models:/m-...`)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=REGISTERED_MODEL_DESCRIPTION)
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    return client.create_model_version(
        name, source=model_uri, run_id=run_id, tags=dict(tags or {}), model_id=model_id
    )


def crown(
    client: MlflowClient, version: str, crowned_by: str, name: str = MODEL_NAME
) -> str | None:
    """Give `version` the champion alias; record the previous champion in its tags. Returns the
    previous champion's version (None if there was none or it is the same version)."""
    version = str(version)
    previous = version_by_alias(client, CHAMPION, name)
    previous_version = None if previous is None else str(previous.version)
    if previous_version == version:
        return None
    now = _now()
    if crowned_by != "rollback":
        # a rollback restores an earlier champion: its own history pointer stays as it was
        client.set_model_version_tag(name, version, "previous_champion", previous_version or "")
    client.set_model_version_tag(name, version, "champion_since", now)
    client.set_model_version_tag(name, version, "crowned_by", crowned_by)
    client.set_registered_model_alias(name, CHAMPION, version)
    if previous_version is not None:
        client.set_model_version_tag(name, previous_version, "dethroned_at", now)
    if crowned_by != "gate":  # the gate's verdict is in the description already
        replaced = f", replacing version {previous_version}" if previous_version else ""
        note_on_version(
            client, version, f"Made champion on purpose by `influence {crowned_by}` at {now}"
            f"{replaced}.", name,
        )
    challenger = version_by_alias(client, CHALLENGER, name)
    if challenger is not None and str(challenger.version) == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    return previous_version


def note_on_version(client: MlflowClient, version: str, text: str, name: str = MODEL_NAME) -> None:
    """Add a paragraph to a version's description (its history in plain words)."""
    current = client.get_model_version(name, str(version)).description or ""
    described = f"{current}\n\n{text}" if current else text
    client.update_model_version(name, str(version), description=described)


def record_gate(
    client: MlflowClient, version: str, decision: GateDecision, name: str = MODEL_NAME
) -> None:
    """`gate`: passed or failed. The reasons, in words, are the version's description
    (`training.run_notes`); the whole decision is in the register stage's report."""
    client.set_model_version_tag(name, str(version), "gate", "passed" if decision.passed else "failed")


def hold_experiment(decision: GateDecision, experiment: str | None) -> GateDecision:
    """A model made by a DVC experiment (`dvc exp run`) stays challenger even when it passes the
    gate: its params are not committed, so the champion would not be reproducible from git.
    `influence promote <version>` crowns it on purpose once the experiment is applied. The first
    model of an empty registry is still crowned: something must serve."""
    if not experiment or not decision.passed or decision.stability is None:
        return decision
    return GateDecision(
        False,
        (
            *decision.reasons,
            (
                f"held as challenger: made by DVC experiment {experiment!r} (params not "
                "committed); `influence promote <version>` makes it champion on purpose"
            ),
        ),
        decision.metric_deltas,
        decision.stability,
    )


def apply_gate(
    client: MlflowClient, version: str, decision: GateDecision, name: str = MODEL_NAME
) -> str:
    """Champion when the gate passed, challenger otherwise. Returns the alias given."""
    record_gate(client, version, decision, name)
    if decision.passed:
        crown(client, version, "gate", name)
        return CHAMPION
    client.set_registered_model_alias(name, CHALLENGER, str(version))
    return CHALLENGER


def promote(
    version: int | str, settings: TrackingSettings | None = None, name: str = MODEL_NAME
) -> str | None:
    """Make `version` the champion on purpose (no gate). Returns the replaced champion."""
    client = _client(settings)
    client.get_model_version(name, str(version))  # fails clearly on an unknown version
    return crown(client, str(version), "promote", name)


def rollback(settings: TrackingSettings | None = None, name: str = MODEL_NAME) -> str:
    """Give the champion alias back to the version the current champion replaced.
    Returns the version that is champion now."""
    client = _client(settings)
    current = version_by_alias(client, CHAMPION, name)
    if current is None:
        raise RegistryError(f"{name} has no champion to roll back from")
    previous = current.tags.get("previous_champion", "")
    if not previous:
        raise RegistryError(
            f"{name} version {current.version} has no previous champion to roll back to"
        )
    crown(client, previous, "rollback", name)
    client.set_model_version_tag(name, str(current.version), "rolled_back_at", _now())
    client.set_model_version_tag(name, str(current.version), "rolled_back_to", previous)
    return previous


def champion_history(settings: TrackingSettings | None = None, name: str = MODEL_NAME) -> list[dict]:
    """Every version with its aliases and history tags, newest first (for `influence registry`
    style listings and the notebook)."""
    client = _client(settings)
    keys = ("gate", "crowned_by", "champion_since", "previous_champion", "dethroned_at",
            "rolled_back_at", "rolled_back_to")
    # search results carry no aliases in every store: read them from the registered model
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{name}'", order_by=["version_number DESC"])
    return [
        {"version": str(v.version), "aliases": sorted(aliases.get(str(v.version), [])),
         **{k: v.tags.get(k, "") for k in keys}}
        for v in versions
    ]


# --- loading -------------------------------------------------------------------------------------


def model_uri(alias: str = CHAMPION, name: str = MODEL_NAME) -> str:
    return f"models:/{name}@{alias}"


def bundle_dir_from_model(model_dir: Path, target: Path) -> Path:
    """Lay a downloaded logged model (`model.lgb` + `extra_files/`) out as a bundle folder."""
    import shutil

    from training.bundle import MODEL_FILE

    extra = model_dir / EXTRA_FILES_DIR
    if not (model_dir / LGB_FLAVOR_FILE).is_file() or not extra.is_dir():
        raise RegistryError(f"{model_dir} is not an influence model (no model.lgb/extra_files)")
    target.mkdir(parents=True, exist_ok=True)
    for file in extra.iterdir():
        shutil.copyfile(file, target / file.name)
    shutil.copyfile(model_dir / LGB_FLAVOR_FILE, target / MODEL_FILE)
    return target


def load_bundle(uri: str, settings: TrackingSettings | None = None) -> ModelBundle:
    """Download the logged model at `uri` (`models:/name@alias`, `models:/name/3`, `models:/m-..`)
    and rebuild its ModelBundle (see `training.model_logging` for the layout)."""
    import mlflow

    from training.bundle import ModelBundle

    settings = settings or TrackingSettings()
    with tempfile.TemporaryDirectory(prefix="influence-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri,
            dst_path=str(Path(tmp) / "model"),
            tracking_uri=settings.tracking_uri,
            registry_uri=settings.tracking_uri,
        )
        # ModelBundle.load reads every file eagerly: the temp folder may go afterwards
        return ModelBundle.load(bundle_dir_from_model(Path(local), Path(tmp) / "bundle"))


class StoreError(RegistryError):
    """The tracking store cannot be read: missing, not an MLflow SQLite store, or locked."""


SQLITE_HEADER = b"SQLite format 3\x00"


def check_store(tracking_uri: str, timeout: float = 5.0) -> None:
    """Before MLflow opens a `sqlite:///` store: the file exists, is an MLflow SQLite store and
    can be read within `timeout` seconds. MLflow itself would create an empty store where none
    is (and hand out no champion), and retry a corrupt or locked one for minutes; this names the
    file and the problem at once. Other stores (a server, a folder) are MLflow's to check."""
    import sqlite3
    from urllib.parse import unquote, urlparse

    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite" or unquote(parsed.path)[1:] in ("", ":memory:"):
        return
    path = Path(unquote(parsed.path)[1:])
    if not path.is_file():
        raise StoreError(f"no MLflow store at {path} (MLFLOW_TRACKING_URI={tracking_uri}): "
                         "run `make pipeline` first, or point MLFLOW_TRACKING_URI at the store")
    with path.open("rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise StoreError(f"MLflow store {path} is not an SQLite database (corrupt or "
                             "overwritten)")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        finally:
            db.close()
    except sqlite3.DatabaseError as error:  # locked, malformed, unreadable
        raise StoreError(f"MLflow store {path} cannot be read: {error}") from None
    if "registered_models" not in tables:
        raise StoreError(f"{path} is an SQLite database but not an MLflow store (no registry "
                         "tables)")


def load_champion(settings: TrackingSettings | None = None, name: str = MODEL_NAME) -> ModelBundle:
    """The ModelBundle that currently holds the `champion` alias of `influence-score`.

    This is the one entry point for the HTTP service and daily scoring: it downloads the
    artifacts of `models:/influence-score@champion` (tracking store from `MLFLOW_TRACKING_URI`,
    default the project's `sqlite:///mlflow.db`) and rebuilds the bundle (booster, calibrator,
    feature names, catalog, reference fingerprint, version) exactly as it was evaluated, so
    `load_champion().score(frame)` equals the registered model's scores bit for bit.
    Raises RegistryError when no version holds the alias yet (run `dvc repro` or
    `influence register` first).
    """
    check_store((settings or TrackingSettings()).tracking_uri)
    client = _client(settings)
    if version_by_alias(client, CHAMPION, name) is None:
        raise RegistryError(
            f"no '{CHAMPION}' alias on registered model '{name}' in "
            f"{(settings or TrackingSettings()).tracking_uri}; run `dvc repro` (or "
            "`influence register`) first"
        )
    return load_bundle(model_uri(CHAMPION, name), settings)
