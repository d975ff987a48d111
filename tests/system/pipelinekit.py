"""A scratch project that runs the real stage commands (`influence <stage>`, as `dvc repro` runs
them) on a small world, with MLflow, BentoML and the compiled-trees cache inside it, and checks of
what each stage leaves behind: its outputs, their digests, whether they are whole, and stray
temporaries."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-02"  # the day after the small world's last day: score-daily's default

STAGES: dict[str, tuple[str, ...]] = {
    "simulate": ("simulate",),
    "validate": ("validate", "--now", "2026-11-02T00:00:00"),
    "features": ("features", "--training"),
    "train": ("train", "--no-evaluate"),
    "evaluate": ("evaluate",),
    "register": ("register",),
    "score-daily": ("score-daily", "--as-of", AS_OF, "--no-points"),
}
"""The pipeline's stages in order, with the arguments dvc.yaml gives them (validate and
score-daily pinned to a date, so reruns can be compared byte for byte)."""

OUTPUTS: dict[str, tuple[str, ...]] = {
    "simulate": ("data/raw", "data/truth"),
    "validate": ("data/clean", "data/rejects", "reports/validate.json"),
    "features": (
        "data/features/snapshots.parquet", "data/features/labels.parquet",
        "data/features/train.parquet", "data/features/catalog.csv", "data/features/catalog.json",
    ),
    "train": ("models/influence-score", "models/reference/snapshots.parquet"),
    "evaluate": ("reports/metrics.json",),
    "register": ("reports/registry.json", "reports/plots"),
    "score-daily": ("data/history/scores.duckdb",),
}

SMALL_WORLD = {
    "simulate": {"users": 200, "days": 100, "corrupt_share": 0.0005},
    "features": {"n_as_of": 4},
    "train": {"n_estimators": 40, "early_stopping_rounds": 0, "monotone_probes": 60, "min_data_in_leaf": 20},
    "evaluate": {"pairs": 20_000},
    "register": {"shap_sample": 100},
}


def make_project(root: Path, **overrides: dict) -> Path:
    """params.yaml of the repository with the small world's overrides (and `overrides`, by
    section), in an empty folder."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in [*SMALL_WORLD.items(), *overrides.items()]:
        params[section].update(values)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def environment(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "BENTOML_HOME": str(root / ".bentoml"),
        "INFLUENCE_COMPILED_DIR": str(root / ".compiled"),
        "BENTOML_DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
    }


def command(stage: str) -> list[str]:
    return [str(Path(sys.executable).parent / "influence"), *STAGES[stage]]


FAILURES: dict[str, str] = {
    "simulate": "import simulation.truth as m; m.corruption_rows = boom",
    "validate": "import features.validate_stage as m; m.over_threshold = boom",
    "features": "import features.stage as m; m.write_catalog = boom",
    "train": (
        "import training.bundle as m; save = m.ModelBundle.save\n"
        "def failing(self, folder):\n    save(self, folder)\n    boom()\n"
        "m.ModelBundle.save = failing"
    ),
    "evaluate": "import training.evaluate as m; m.evaluate_model = boom",
    "register": "import training.register_stage as m; m.log_training_run = boom",
    "score-daily": "import serving.daily as m; m.history_rows = boom",
}
"""Where each stage is made to fail: its last step before publishing (the model already saved
to its temporary folder, every table validated, ...), or the MLflow call of register."""

_FAILING = """
import sys
def boom(*args, **kwargs):
    raise RuntimeError("injected failure")
{patch}
from influence.cli import app
sys.argv = ["influence", *{args!r}]
app()
"""


def run_failing(root: Path, stage: str, timeout: float = 900) -> Run:
    """The stage with `FAILURES[stage]` patched in."""
    script = _FAILING.format(patch=FAILURES[stage], args=list(STAGES[stage]))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=environment(root), capture_output=True,
        text=True, timeout=timeout, check=False,
    )
    return Run(done.returncode, time.perf_counter() - started, done.stdout + done.stderr)


def start(root: Path, stage: str) -> subprocess.Popen:
    return subprocess.Popen(
        command(stage), cwd=root, env=environment(root), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


@dataclass(frozen=True)
class Run:
    returncode: int
    seconds: float
    output: str


def run(root: Path, stage: str, timeout: float = 900) -> Run:
    started = time.perf_counter()
    done = subprocess.run(
        command(stage), cwd=root, env=environment(root), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    return Run(done.returncode, time.perf_counter() - started, done.stdout + done.stderr)


def row_counts(root: Path, stage: str) -> dict[str, int]:
    """Rows of every Parquet file of the stage's outputs (by its footer)."""
    import pyarrow.parquet as pq

    counts = {}
    for out in OUTPUTS[stage]:
        path = root / out
        files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
        for file in files:
            if file.suffix == ".parquet" and file.exists():
                counts[str(file.relative_to(root))] = pq.read_metadata(file).num_rows
    return counts


def digest(root: Path, stage: str) -> dict[str, str]:
    """Every file of the stage's outputs with the hash of its bytes."""
    found = {}
    for out in OUTPUTS[stage]:
        path = root / out
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.exists():
                found[str(file.relative_to(root))] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def stray_temporaries(root: Path) -> list[str]:
    """Temporaries of `influence.publish` (and of the history's compaction and the compiled
    trees' build) anywhere in the project's data, models, reports and compiled-trees cache."""
    found = []
    for top in ("data", "models", "reports", ".compiled"):
        folder = root / top
        if folder.is_dir():
            found += [
                str(p.relative_to(root)) for p in folder.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name
            ]
    return sorted(found)


def whole(root: Path, stage: str) -> None:
    """Raise AssertionError unless every output of the stage is there and readable whole."""
    from features.parquet_check import check_file

    for out in OUTPUTS[stage]:
        path = root / out
        assert path.exists(), f"{out} missing"
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.suffix == ".parquet":
                check_file(file)
            elif file.suffix == ".json":
                json.loads(file.read_text())
    if stage == "train":
        from training.bundle import ModelBundle

        ModelBundle.load(root / "models/influence-score")
    if stage == "register":
        report = json.loads((root / "reports/registry.json").read_text())
        assert report["version"], report
        plots = {p.name for p in (root / "reports/plots").iterdir()}
        assert {"calibration_curve.png", "score_histogram.csv"} <= plots, plots
    if stage == "score-daily":
        import duckdb

        with duckdb.connect(str(root / "data/history/scores.duckdb"), read_only=True) as con:
            users = con.execute(
                "SELECT count(*) FROM scores WHERE date = ?", [AS_OF]
            ).fetchone()[0]
        assert users > 0
