"""influence.publish: outputs appear whole or not at all, a failed block publishes nothing, and
temporaries of killed processes are cleaned while those of live ones are left alone. The kill
test publishes in a real child process and SIGKILLs it at random moments."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from influence import publish


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "out"
    for version in (1, 2):
        with publish.publishing_dir(target) as tmp:
            (tmp / "a.txt").write_text(f"a{version}")
            (tmp / "sub").mkdir()
            (tmp / "sub" / "b.txt").write_text(f"b{version}")
        assert _tree(target) == {"a.txt": f"a{version}".encode(), "sub/b.txt": f"b{version}".encode()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_failing_block_publishes_nothing(tmp_path: Path, monkeypatch, exchange: bool) -> None:
    if not exchange:
        monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    target = tmp_path / "out"
    with publish.publishing_dir(target) as tmp:
        (tmp / "a.txt").write_text("good")
    with pytest.raises(RuntimeError), publish.publishing_dir(target) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("the stage failed")
    assert _tree(target) == {"a.txt": b"good"}
    with pytest.raises(RuntimeError), publish.publishing_file(tmp_path / "f.json") as tmp:
        tmp.write_text("{")
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with publish.publishing_dir(target) as tmp:
        (tmp / "a.txt").write_text("new")
    assert _tree(target) == {"a.txt": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_files_json_and_parquet(tmp_path: Path) -> None:
    publish.write_json(tmp_path / "r" / "x.json", {"a": 1})
    assert json.loads((tmp_path / "r" / "x.json").read_text()) == {"a": 1}
    frame = pl.DataFrame({"id": [1, 2, 3], "network": ["a", "b", "a"]})
    publish.write_parquet(frame, tmp_path / "t.parquet")
    assert pl.read_parquet(tmp_path / "t.parquet").equals(frame)
    from features.parquet_check import check_file

    assert check_file(tmp_path / "t.parquet").checksummed
    assert pq.read_metadata(tmp_path / "t.parquet").row_group(0).column(0).statistics.has_min_max


def test_stale_temporaries_are_cleaned_and_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    dead, live = _dead_pid(), os.getppid()
    stale_dir = tmp_path / f".out.tmp-{dead}-abcd1234"
    stale_file = tmp_path / f".other.parquet.tmp-{dead}-0123abcd"
    legacy = tmp_path / f".out.tmp-{dead}"  # the pid-only names of earlier writers
    running = tmp_path / f".out.tmp-{live}-deadbeef"
    for folder in (stale_dir, legacy, running):
        folder.mkdir()
        (folder / "part-0.parquet").write_bytes(b"half")
    stale_file.write_bytes(b"half")
    with publish.publishing_dir(target) as tmp:
        (tmp / "x").write_text("x")
    assert not stale_dir.exists() and not legacy.exists() and running.exists()
    assert stale_file.exists()  # another target's: swept by clean_stale_under
    nested = tmp_path / "deeper" / f".t.json.tmp-{dead}-00000000"
    nested.parent.mkdir()
    nested.write_text("{")
    removed = publish.clean_stale_under(tmp_path)
    assert set(removed) == {stale_file, nested}
    assert running.exists()


def test_an_output_moved_aside_by_a_killed_swap_is_put_back(tmp_path: Path) -> None:
    """Without renameat2 a swap is two renames; a kill between them leaves only `.old-`."""
    aside = tmp_path / f".out.old-{_dead_pid()}-1234abcd"
    aside.mkdir()
    (aside / "a.txt").write_text("previous")
    publish.clean_stale(tmp_path / "out")
    assert _tree(tmp_path / "out") == {"a.txt": b"previous"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


_WRITER = """
import sys
from pathlib import Path
from influence import publish
if sys.argv[2] == "two-renames":
    publish._exchange = lambda a, b: False
target, version = Path(sys.argv[1]), 0
while True:
    version += 1
    with publish.publishing_dir(target) as tmp:
        for i in range(20):
            (tmp / f"part-{i}.txt").write_text(f"{version}\\n" * 2000)
        (tmp / "_SUCCESS").write_text(str(version))
    publish.write_text(target.with_name("single.txt"), f"{version}\\n" * 5000)
"""


def _whole(folder: Path) -> bool:
    version = (folder / "_SUCCESS").read_text()
    parts = [folder / f"part-{i}.txt" for i in range(20)]
    return all(p.read_text() == f"{version}\n" * 2000 for p in parts)


@pytest.mark.parametrize("mode", ["renameat2", "two-renames"])
def test_sigkill_at_random_moments_never_leaves_half_an_output(tmp_path: Path, mode: str) -> None:
    rng = random.Random(7)
    target = tmp_path / "out"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    kills = 0
    for _ in range(12):
        child = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), mode], env=env)
        time.sleep(rng.uniform(0.3, 0.9))
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
        publish.clean_stale_under(tmp_path)  # what the next run does first
        if target.exists():
            assert _whole(target)
        single = tmp_path / "single.txt"
        if single.exists():
            lines = single.read_text().splitlines()
            assert len(lines) == 5000 and len(set(lines)) == 1
        assert {p.name for p in tmp_path.iterdir()} <= {"out", "single.txt"}
    assert kills == 12 and target.exists()
