"""The same seed gives the same world, byte for byte; another seed another world."""

from __future__ import annotations

import pytest

from simulation.world import write_world


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_same_seed_same_bytes(small_world, small_cfg, write_at, tmp_path):
    again = write_at(small_cfg, tmp_path)
    for folder in ("raw", "truth"):
        first, second = _files(getattr(small_world, folder)), _files(getattr(again, folder))
        assert first.keys() == second.keys()
        assert [k for k in first if first[k] != second[k]] == []


def test_other_seed_other_world(small_world, small_cfg, write_at, tmp_path):
    other = write_at(small_cfg.model_copy(update={"seed": small_cfg.seed + 1}), tmp_path)
    assert not other.read("interactions").equals(small_world.read("interactions"))


def test_a_crash_leaves_no_half_world(small_cfg, tmp_path):
    out, truth = tmp_path / "raw", tmp_path / "truth"
    write_world(small_cfg.model_copy(update={"days": 3}), out, truth)
    before = _files(out)

    def crash(day: int) -> None:
        if day == 1:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_world(small_cfg.model_copy(update={"days": 5}), out, truth, on_day=crash)
    assert _files(out) == before, "the previous world is untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw", "truth"], "no temp folders left"


def test_truth_inside_raw_is_refused(small_cfg, tmp_path):
    with pytest.raises(ValueError, match="must not be inside"):
        write_world(small_cfg, tmp_path / "raw", tmp_path / "raw" / "truth")
