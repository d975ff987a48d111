"""`make bench`: every speed and memory target, measured in one run, written to reports/bench.json.

Each benchmark module exposes `run(...) -> dict`; this runner only orders them, shares the worlds
they need, and prints the results. Benchmarks that need a piece not built yet are reported as
skipped, with the reason.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

REPORT = Path("reports/bench.json")
BENCHES = ("simulate_bench", "features_bench", "train_bench", "serving_bench", "daily_bench")


def _run_one(name: str, context: dict) -> dict:
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as exc:
        return {"skipped": f"not built yet ({exc.name})"}
    started = time.perf_counter()
    result = module.run(**{k: v for k, v in context.items() if k in module.run.__code__.co_varnames})
    result["bench_seconds"] = round(time.perf_counter() - started, 2)
    return result


def main(
    only: Annotated[list[str] | None, typer.Option(help="run only these benchmarks")] = None,
) -> None:
    context: dict = {"work_dir": Path("data/bench")}
    results: dict = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
    }
    for name in BENCHES:
        if only and name not in only:
            continue
        print(f"== {name}", flush=True)
        results[name] = _run_one(name, context)
        print(json.dumps(results[name], indent=2), flush=True)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    typer.run(main)
