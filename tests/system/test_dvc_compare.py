"""`dvc metrics diff` and `dvc plots diff` on the project's own dvc.yaml, in a scratch git repo
holding a committed evaluation and a new one (as after `make pipeline`, a commit, and
`dvc exp run`): the metrics diff names the metric that moved, and the plots page is plain HTML
with images, no script from the network (it opens offline)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DVC = str(Path(sys.executable).parent / "dvc")
PNG = bytes.fromhex(  # a valid 1x1 PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a3b5d3f60000000049454e44ae426082"
)


def _run(cwd: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _write_outputs(repo: Path, spearman: float) -> None:
    plots = yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
    for plot in plots:
        path = repo / (plot if isinstance(plot, str) else next(iter(plot)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PNG)
    (repo / "reports" / "metrics.json").write_text(
        json.dumps({"spearman_outcome": spearman, "ndcg_100": 0.98}))
    (repo / "reports" / "validate.json").write_text(json.dumps({"passed": True}))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    _run(repo, "git", "init", "-q")
    _run(repo, DVC, "init", "-q")
    _write_outputs(repo, 0.90)
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "baseline model")
    _write_outputs(repo, 0.93)  # the experiment's results, in the workspace
    return repo


def test_metrics_diff_names_the_metric_that_moved(repo):
    diff = json.loads(_run(repo, DVC, "metrics", "diff", "--json"))
    moved = diff["reports/metrics.json"]
    assert moved["spearman_outcome"]["old"] == 0.90 and moved["spearman_outcome"]["new"] == 0.93
    assert "ndcg_100" not in moved  # unchanged metrics are left out


def test_plots_diff_is_offline_html_with_the_images(repo):
    _run(repo, DVC, "plots", "diff", "-o", "dvc_plots")
    page = (repo / "dvc_plots" / "index.html").read_text()
    assert "<img" in page and "baselines.png" in page and "network_contributions.png" in page
    assert not re.search(r"<script[^>]+src=\"https?://", page), "a script from the network"
    assert "cdn." not in page
