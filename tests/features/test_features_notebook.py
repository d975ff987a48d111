"""notebooks/signals.ipynb runs top to bottom on a small simulated world."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "signals.ipynb"


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    from simulation.config import WorldConfig
    from simulation.world import write_world

    root = tmp_path_factory.mktemp("world")
    cfg = WorldConfig(users=300, days=100, seed=3, corrupt_share=0.0)
    write_world(cfg, root / "raw", root / "truth")
    return root


def test_signals_notebook_runs_on_a_small_world(small_world, monkeypatch, tmp_path):
    import yaml

    # only the sections the notebook reads: other stages' keys may be mid-edit
    full = yaml.safe_load((REPO / "params.yaml").read_text())
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({k: full[k] for k in ("features", "labels") if k in full}))
    monkeypatch.setenv("INFLUENCE_PARAMS", str(params))
    monkeypatch.setenv("INFLUENCE_PROJECT_ROOT", str(REPO))
    monkeypatch.setenv("INFLUENCE_RAW", str(small_world / "raw"))
    monkeypatch.setenv("INFLUENCE_TRUTH", str(small_world / "truth"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    ).execute()
    outputs = "\n".join(
        o.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )
    assert "signals" in outputs
    assert not any(
        o.get("output_type") == "error" for c in notebook.cells for o in c.get("outputs", [])
    )
