"""Bounded loopback load on the session's real server: 16 concurrent clients for 60 s of /score.
Zero errors, the p99 reported, the worker's RSS flat (sampled every 5 s; after a 15 s warm-up it
may not grow by more than 5 MB). Slow: a minute of load on a shared machine."""

from __future__ import annotations

import psutil
import pytest

from benchmarks.serving_bench import drive, score_bodies

pytestmark = pytest.mark.slow
CLIENTS, SECONDS, WARM_UP_S, MAX_GROWTH_MB = 16, 60.0, 15.0, 5.0


def test_sixteen_clients_for_a_minute(real_server):
    children = psutil.Process(real_server.pid).children(recursive=True)
    worker = max(children, key=lambda c: c.memory_info().rss)

    def rss() -> dict[str, float]:
        return {"worker_mb": round(worker.memory_info().rss / 2**20, 1)}

    result = drive(real_server.url, CLIENTS, SECONDS, score_bodies(), every=5.0, sample=rss)
    samples = result.pop("samples")
    print(f"{CLIENTS} clients, {SECONDS:.0f} s: {result}")
    print("worker RSS (MB) by second: " + ", ".join(f"{s['second']:.0f}: {s['worker_mb']}"
                                                  for s in samples))
    assert result["errors"] == {} and result["requests"] > CLIENTS * 10
    settled = [s["worker_mb"] for s in samples if s["second"] >= WARM_UP_S]
    assert max(settled) - settled[0] <= MAX_GROWTH_MB, samples
