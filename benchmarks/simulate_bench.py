"""Simulator speed and memory: events written per second and peak RSS, per world size.

Each world is simulated in a fresh subprocess so its peak RSS is its own (ru_maxrss of that
process). The default world is always measured; the 200,000-user world (streamed day by day)
only with `large=True` or SIMULATE_BENCH_LARGE=1, since it takes minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DEFAULT_WORLD = {"users": None, "days": None}
"""None: the params.yaml defaults (20,000 users, 150 days)."""
LARGE_WORLD = {"users": 200_000, "days": 30}
"""Thirty days are enough to show memory does not grow with the interactions written."""


def measure(users: int | None, days: int | None, out: str) -> dict:
    """Run inside the subprocess: simulate, write, report rows, seconds and peak RSS."""
    import resource

    from influence.params import load_params
    from simulation.config import WorldConfig
    from simulation.world import write_world

    cfg = WorldConfig.from_params(load_params(), users=users, days=days)
    summary = write_world(cfg, Path(out) / "raw", Path(out) / "truth")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "users": cfg.users,
        "days": cfg.days,
        "seconds": round(summary.seconds, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "_note": "seconds is wall time of the write; cpu_seconds (whole process) shows the cost "
        "when other jobs share the machine",
        "rows": summary.rows,
        "events": summary.events,
        "events_per_s": round(summary.events / summary.seconds),
        "interactions_per_s": round(summary.rows["interactions"] / summary.seconds),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "raw_dir": str(Path(out) / "raw"),
    }


def _in_subprocess(users: int | None, days: int | None, out: Path) -> dict:
    code = (
        "import json, sys; from benchmarks.simulate_bench import measure; "
        f"print(json.dumps(measure({users!r}, {days!r}, {str(out)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(work_dir: Path = Path("data/bench"), large: bool | None = None) -> dict:
    """Events written per second and peak memory of the default world (and the large one)."""
    if large is None:
        large = os.environ.get("SIMULATE_BENCH_LARGE") == "1"
    results = {"default_world": _in_subprocess(**DEFAULT_WORLD, out=Path(work_dir))}
    if large:
        results["world_200k"] = _in_subprocess(**LARGE_WORLD, out=Path(work_dir) / "large")
    else:
        results["world_200k"] = {"skipped": "long (minutes); set SIMULATE_BENCH_LARGE=1"}
    return results


if __name__ == "__main__":
    print(json.dumps(run(large="--large" in sys.argv), indent=2))
