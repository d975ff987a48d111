"""Every stage, on a small world, made to fail at its last step before publishing: it exits
non-zero and its outputs stay byte for byte those of the last good run, with no temporary left.
SIGKILL of every stage at random moments (a few per stage, on a small world), as an OOM killer
or a pulled plug would end it: the stage's outputs stay whole (the previous ones, or the new ones
complete), and a rerun completes, leaves whole outputs and removes every temporary the killed
runs left. The stages run as `dvc repro` runs them: the `influence` command in the project
folder, each in its own process group (killed whole, compilers included)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pipelinekit import (
    STAGES,
    digest,
    make_project,
    row_counts,
    run,
    run_failing,
    start,
    stray_temporaries,
    whole,
)

KILLS = 2
DETERMINISTIC = {"simulate", "validate"}
"""Stages whose outputs are the same bytes on every run (the others differ in float noise,
timings and run ids): after a kill, theirs must equal the last good ones exactly."""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """The small world's pipeline run once, uninterrupted: the last good outputs, and how long
    each stage takes here (kill moments are drawn within it)."""
    root = make_project(tmp_path_factory.mktemp("killed-stages"))
    seconds = {}
    for stage in STAGES:
        done = run(root, stage)
        assert done.returncode == 0, done.output[-4000:]
        whole(root, stage)
        seconds[stage] = done.seconds
    return root, seconds


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_stage_that_fails_publishes_nothing(project: tuple[Path, dict[str, float]], stage: str):
    root, _ = project
    before = digest(root, stage)
    failed = run_failing(root, stage)
    assert failed.returncode != 0
    assert "injected failure" in failed.output
    assert digest(root, stage) == before
    assert stray_temporaries(root) == []


def _kill_at(root: Path, stage: str, after: float) -> float | None:
    """Start the stage, SIGKILL its process group `after` seconds later; None if it finished
    first, else the moment of the kill."""
    process = start(root, stage)
    try:
        process.communicate(timeout=after)
        return None
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return after


def _kill_while_writing(root: Path, stage: str) -> float | None:
    """Start the stage and SIGKILL its process group as soon as one of its temporaries exists
    (it is writing or swapping in an output); None if it finished without one showing."""
    started = time.monotonic()
    process = start(root, stage)
    while process.poll() is None:
        if stray_temporaries(root):
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return time.monotonic() - started
        time.sleep(0.01)
    process.communicate()
    return None


def _kill_moments(root: Path, stage: str, seconds: float, rng: random.Random) -> list[float]:
    """KILLS kills: one while the stage writes its outputs, the others at random moments of its
    run (drawn again, earlier, when the stage finished first: the box's load varies)."""
    moments = [_kill_while_writing(root, stage)]
    for _ in range(KILLS - 1):
        fraction = rng.uniform(0.3, 0.95)
        for _attempt in range(4):
            moment = _kill_at(root, stage, fraction * seconds)
            if moment is not None:
                break
            fraction /= 2
        moments.append(moment)
    return [m for m in moments if m is not None]


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_stage_killed_at_random_moments_keeps_whole_outputs_and_a_rerun_completes(
    project: tuple[Path, dict[str, float]], stage: str
):
    root, seconds = project
    before, rows = digest(root, stage), row_counts(root, stage)
    moments = _kill_moments(root, stage, seconds[stage], random.Random(stage))
    print(f"{stage}: killed at {[round(m, 1) for m in moments]} s of ~{seconds[stage]:.0f} s")
    assert moments, f"{stage} always finished before its kill moments"
    whole(root, stage)
    assert row_counts(root, stage) == rows
    if stage in DETERMINISTIC:
        assert digest(root, stage) == before

    again = run(root, stage)
    assert again.returncode == 0, again.output[-4000:]
    whole(root, stage)
    assert row_counts(root, stage) == rows
    if stage in DETERMINISTIC:
        assert digest(root, stage) == before
    assert stray_temporaries(root) == []


def test_validate_killed_mid_run_keeps_the_clean_tables_and_a_rerun_completes(tmp_path: Path):
    """The default suite's kill: one validate on a tiny world, killed while it writes."""
    from simulation.config import WorldConfig
    from simulation.world import write_world

    root = make_project(tmp_path / "tiny")
    write_world(WorldConfig(users=60, days=30, seed=1), root / "data/raw", root / "data/truth")
    done = run(root, "validate")
    assert done.returncode == 0, done.output[-4000:]
    before = digest(root, "validate")
    assert _kill_while_writing(root, "validate") is not None
    assert digest(root, "validate") == before
    assert stray_temporaries(root)  # what the killed run left
    again = run(root, "validate")
    assert again.returncode == 0, again.output[-4000:]
    assert digest(root, "validate") == before
    assert stray_temporaries(root) == []
