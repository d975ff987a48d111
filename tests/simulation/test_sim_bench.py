"""The simulator benchmark reports what `make bench` records (smoke test on a tiny world)."""

from __future__ import annotations

from benchmarks.simulate_bench import measure


def test_measure_reports_speed_and_memory(tmp_path):
    result = measure(users=200, days=5, out=str(tmp_path))
    assert result["users"] == 200 and result["days"] == 5
    assert result["events"] == sum(result["rows"].values()) > 0
    assert result["events_per_s"] > 0
    assert result["peak_rss_mb"] > 0
    assert (tmp_path / "raw" / "interactions").is_dir()
