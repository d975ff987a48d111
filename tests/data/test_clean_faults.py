"""Stages that read the clean tables (`influence features`, `score-daily`) on a corrupt, truncated
or garbled clean file: an error naming the file (polars' own errors name none: "File out of
specification: Dictionary Index is out-of-bounds"), and nothing written: the feature tables and
the score history stay as they were, with no temporary left behind."""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from features.validate_stage import run_validation
from influence.cli import app
from serving.history import HistoryStore
from serving.samples import stand_in_bundle
from simulation.config import WorldConfig
from simulation.world import write_world

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-02"
VICTIM = Path("interactions") / "date=2026-10-25" / "part-0.parquet"


@pytest.fixture(scope="module")
def clean_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small world validated once (clean tables as `influence validate` writes them) and a
    stand-in model bundle."""
    root = tmp_path_factory.mktemp("clean-world")
    write_world(WorldConfig(users=80, days=60, seed=5, corrupt_share=0.0), root / "raw", root / "truth")
    run_validation(root / "raw", root / "clean", root / "rejects", datetime(2026, 11, 2))
    stand_in_bundle(n=600, seed=0, trees=10).save(root / "bundle")
    return root


@pytest.fixture
def project(clean_world: Path, tmp_path: Path) -> Path:
    shutil.copytree(clean_world / "clean", tmp_path / "clean")
    (tmp_path / "bundle").symlink_to(clean_world / "bundle")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["base"].update(clean_dir=str(tmp_path / "clean"), features_dir=str(tmp_path / "features"))
    params["score_daily"]["store"] = str(tmp_path / "history" / "scores.duckdb")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def _invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _garbled(path: Path) -> None:
    """16 bytes inside the actor ids' data pages changed (the file's footer still parses)."""
    metadata = pq.read_metadata(path)
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    chunk = metadata.row_group(0).column(names.index("actor_id"))
    start = chunk.data_page_offset + chunk.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    data[start : start + 16] = bytes(b ^ 0x5A for b in data[start : start + 16])
    path.write_bytes(bytes(data))


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt(path: Path) -> None:
    path.write_bytes(b"PAR1 but nothing else of a parquet file" * 20)


@pytest.mark.parametrize(
    "spoil", [_garbled, _truncated, _corrupt], ids=["garbled", "truncated", "corrupt"]
)
def test_features_names_the_corrupt_clean_file_and_writes_nothing(project: Path, spoil):
    features = ("features", "--as-of", AS_OF, "--params", project / "params.yaml")
    code, output = _invoke(*features)
    assert code == 0, output
    before = _tree(project / "features")
    spoil(project / "clean" / VICTIM)
    code, output = _invoke(*features)
    assert code == 1
    assert f"{project / 'clean' / VICTIM} is corrupt" in output and "nothing was written" in output
    assert "Traceback" not in output
    assert _tree(project / "features") == before
    assert [p.name for p in (project / "features").iterdir()] == [f"as_of={AS_OF}"]


def test_score_daily_names_the_corrupt_clean_file_and_keeps_the_history(project: Path):
    daily = ("score-daily", "--as-of", AS_OF, "--no-points", "--bundle", project / "bundle",
             "--params", project / "params.yaml")
    day = datetime.fromisoformat(AS_OF).date()
    store = HistoryStore(project / "history" / "scores.duckdb")
    code, output = _invoke(*daily)
    assert code == 0, output
    rows = store.day(day)
    assert rows.height > 0
    _garbled(project / "clean" / VICTIM)
    code, output = _invoke(*daily)
    assert code == 1
    assert f"{project / 'clean' / VICTIM} is corrupt" in output
    assert f"day {AS_OF} was not written" in output
    assert store.day(day).equals(rows)


def test_features_removes_what_killed_runs_left(project: Path):
    """A run killed while writing `as_of=T` leaves `.as_of=T.tmp-<pid>-<token>`; the next run
    removes it whatever date it builds (before: only a rerun of the same date did, if any)."""
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = project / "features" / f".as_of=2026-10-01.tmp-{dead.pid}-0badc0de"
    (left / "snapshots.parquet").parent.mkdir(parents=True)
    (left / "snapshots.parquet").write_bytes(b"half a file")
    code, output = _invoke("features", "--as-of", AS_OF, "--params", project / "params.yaml")
    assert code == 0, output
    assert [p.name for p in (project / "features").iterdir()] == [f"as_of={AS_OF}"]
