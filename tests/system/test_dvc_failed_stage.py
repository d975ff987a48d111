"""Under `dvc repro`, a failing stage keeps its last good outputs: dvc deletes a stage's outputs
before running it unless they are `persist: true`, so this runs the project's own validate stage
(taken from dvc.yaml) in a scratch dvc project, once on a good export and once on a garbled one."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simulation.config import WorldConfig
from simulation.world import write_world

REPO = Path(__file__).resolve().parents[2]


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=project, env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for package in ("features", "influence"):
        (tmp_path / package).symlink_to(REPO / package)
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"validate": stages["validate"]}}))
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    assert _dvc(tmp_path, "init", "--no-scm", "-q").returncode == 0
    write_world(
        WorldConfig(users=60, days=10, seed=2, corrupt_share=0.0),
        tmp_path / "data" / "raw", tmp_path / "data" / "truth",
    )
    return tmp_path


def test_a_failed_validate_under_dvc_repro_keeps_the_clean_tables(project: Path):
    first = _dvc(project, "repro", "validate")
    assert first.returncode == 0, first.stdout + first.stderr
    clean, rejects, report = (project / p for p in ("data/clean", "data/rejects", "reports"))
    before = {p.name: _digest(p) for p in (clean, rejects, report)}
    assert before["clean"]

    victim = max((project / "data" / "raw" / "posts").rglob("*.parquet"))
    data = bytearray(victim.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xA5 for b in data[middle : middle + 16])
    victim.write_bytes(bytes(data))

    failed = _dvc(project, "repro", "validate")
    assert failed.returncode != 0
    assert str(victim.relative_to(project)) in failed.stdout + failed.stderr
    assert {p.name: _digest(p) for p in (clean, rejects, report)} == before


def test_every_stage_output_survives_a_failed_run():
    """dvc deletes an output before running its stage unless it is `persist: true`: then a
    failed or killed run would lose the last good output whatever the stage does."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    outputs = {
        (name, next(iter(out)) if isinstance(out, dict) else out): out
        for name, stage in stages.items()
        for kind in ("outs", "metrics", "plots")
        for out in stage.get(kind, [])
    }
    assert len(outputs) >= 15
    not_persisted = [
        key for key, out in outputs.items()
        if not (isinstance(out, dict) and next(iter(out.values())).get("persist") is True)
    ]
    assert not_persisted == []
