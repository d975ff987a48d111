"""Serving speed and memory, measured in one run against a floor.

The floor is a bare BentoML endpoint on the same machine that echoes its JSON input
(`benchmarks/echo_service.py`). Both it and the influence service run as real `bentoml serve`
processes on loopback ports; one client sends sequential requests (keep-alive), the same
payloads to both. Targets (issue 5, section 6):

- `/score` without explanation: p50 at most 1.5x the floor's p50, p99 under 15 ms;
- `/score` with explanation and tips: p50 under 15 ms;
- `/score_batch` of 1,000 snapshots without explanations: under 150 ms;
- the service's RSS after 10,000 requests: no growth past warm-up. Measured first, on 10,000
  requests of steady mixed traffic (/score, 1 in 20 explained, a 1,000-snapshot batch per 1,000),
  RSS every 1,000; warm-up is the first half, growth is judged on the second. (BentoML's own
  request timeout kept each request's context alive until its timer fired, 10 s later: RSS then
  followed the peak request rate and crept up by 4-7 MB over the second half; the service
  replaces it with `serving.guard.RequestTimeout`, which holds nothing, and RSS is flat within
  ~0.5 MB after the first thousand requests.)

Throughput (issue 15): /score without explanation from 1, 8 and 16 concurrent clients (one
keep-alive connection each, `THROUGHPUT_SECONDS` each) against the service with 1 and then 2
workers: requests per second, p50, p99, errors. The clients run in this process (asyncio), on the
same 2 cores as the server: at 16 clients they take a share of the CPU the workers would use.

Recorded: p50, p99, throughput (sequential requests per second) for each, every latency also as
a ratio to the floor's p50 (for the batch: the floor echoing the same 1,000-snapshot body), the
service's RSS every 1,000 requests, and an in-process breakdown of one request (validation,
snapshot arrays, featurize, model, explanation) and of one batch of 1,000 (JSON, validation,
snapshot arrays, featurize, model, answer) that says where the time above the floor goes.

Payloads: random multi-network snapshots (`serving.samples`) and, when `../shared` is there, the
real Twitter accounts of the PeerIndex sample. The model: $INFLUENCE_BUNDLE_DIR, else
`models/influence-score` (the pipeline's), else the registry's champion, else a stand-in of the
trained model's size (every catalog column, `train.n_estimators` trees of `train.num_leaves`
leaves) trained here on random snapshots.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
SERVICE = "serving.service:InfluenceService"
ECHO = "benchmarks.echo_service:Echo"
TARGETS = {
    "score_p50_vs_floor_max": 1.5,
    "score_p99_ms_max": 15.0,
    "score_explain_p50_ms_max": 15.0,
    "batch_1000_ms_max": 150.0,
}
WARMUP = 300
N_SCORE = 2_000
N_EXPLAIN = 500
N_BATCH = 15
TOTAL_REQUESTS = 10_000
RSS_EVERY = 1_000
THROUGHPUT_CLIENTS = (1, 8, 16)
THROUGHPUT_WORKERS = (1, 2)
THROUGHPUT_SECONDS = 10.0


def _log(message: str) -> None:
    print(f"serving_bench: {message}", file=sys.stderr, flush=True)


# --- the model and the payloads --------------------------------------------------------------


def _bundle_dir(work_dir: Path) -> tuple[Path, str]:
    """(folder of the bundle to serve, where it came from)."""
    if os.environ.get("INFLUENCE_BUNDLE_DIR"):
        return Path(os.environ["INFLUENCE_BUNDLE_DIR"]), "INFLUENCE_BUNDLE_DIR"
    pipeline = REPO / "models" / "influence-score"
    if (pipeline / "bundle.json").exists():
        return pipeline, "models/influence-score"
    target = work_dir / "serving_bundle"
    try:
        from training.registry import load_champion

        load_champion().save(target)
        return target, "registry champion"
    except Exception as error:  # noqa: BLE001 - no registry or no champion: the stand-in below
        _log(f"no champion in the registry ({type(error).__name__}: {error})")
    from influence.params import load_params
    from serving.samples import stand_in_bundle

    train = load_params(REPO / "params.yaml").train
    _log(f"no trained model found: training a stand-in ({train.n_estimators} trees)")
    bundle = stand_in_bundle(n=5000, trees=train.n_estimators, num_leaves=train.num_leaves,
                             compact=False)
    bundle.save(target)
    return target, "stand-in of the trained model's size (no trained model found)"


def payloads(n: int = 500) -> list[dict[str, Any]]:
    """Snapshot dicts: real Twitter accounts when the shared sample is there, random
    multi-network users otherwise (and to fill up)."""
    from serving.samples import random_snapshot_dicts

    real: list[dict[str, Any]] = []
    csv = REPO.parent / "shared" / "data" / "twitter_profiles_peerindex.csv"
    if csv.exists():
        from serving.peerindex import load_snapshots

        real = [s.model_dump(mode="json", exclude_none=True) for s in load_snapshots(csv)]
    half = real[: n // 2]
    return half + random_snapshot_dicts(n - len(half), seed=7)


# --- measuring ---------------------------------------------------------------------------------


def _summary(seconds: Sequence[float], floor_p50: float | None = None) -> dict[str, Any]:
    ms = np.asarray(seconds) * 1e3
    out = {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "throughput_per_s": round(1e3 / float(ms.mean()), 1),
    }
    if floor_p50:
        out["p50_vs_floor"] = round(out["p50_ms"] / floor_p50, 3)
        out["p99_vs_floor_p50"] = round(out["p99_ms"] / floor_p50, 3)
    return out


def _timed(send: Callable[[int], httpx.Response], n: int) -> list[float]:
    seconds = []
    for i in range(n):
        started = time.perf_counter()
        response = send(i)
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return seconds


def rss_mb(pid: int) -> dict[str, float]:
    """RSS of a server process and of its largest child (the worker that serves)."""
    process = psutil.Process(pid)
    children = process.children(recursive=True)
    worker = max((c.memory_info().rss for c in children), default=0)
    total = process.memory_info().rss + sum(c.memory_info().rss for c in children)
    return {"worker_mb": round(worker / 2**20, 1), "total_mb": round(total / 2**20, 1)}


def in_process_breakdown(bundle_dir: Path, snapshot: dict[str, Any], batch: list[dict[str, Any]],
                         n: int = 300) -> dict:
    """Median milliseconds of each step of one /score request and of one /score_batch of
    `batch`, in this process, with the scorer the service loads (compiled trees when they can be
    built)."""
    from pydantic_core import to_json

    from features.featurize import featurize_matrix
    from features.snapshot import SignalSnapshot, snapshots_to_arrays
    from serving.contracts import BatchRequest, ScoreRequest
    from serving.scorer import load_scorer
    from serving.answers import batch_payload, parse_items
    from serving.settings import ServingSettings

    scorer = load_scorer(ServingSettings(INFLUENCE_BUNDLE_DIR=str(bundle_dir)))
    bundle = scorer.bundle
    body = to_json({"snapshot": snapshot, "explain": False})
    parsed = [SignalSnapshot.model_validate(snapshot)]
    arrays = snapshots_to_arrays(parsed, scorer.windows)
    matrix = featurize_matrix(arrays, scorer.windows)
    batch_body = to_json({"snapshots": batch, "explain": False})
    items = BatchRequest.model_validate_json(batch_body).snapshots
    valid = parse_items(items)
    batch_arrays = snapshots_to_arrays(valid, scorer.windows)
    batch_matrix = featurize_matrix(batch_arrays, scorer.windows)
    rows = scorer.score_rows(valid)
    steps: dict[str, Callable[[], Any]] = {
        "validate_request": lambda: ScoreRequest.model_validate_json(body),
        "snapshot_arrays": lambda: snapshots_to_arrays(parsed, scorer.windows),
        "featurize_matrix": lambda: featurize_matrix(arrays, scorer.windows),
        "model_score": lambda: bundle.score_columns(matrix),
        "scorer_total_no_explain": lambda: scorer.score_rows(parsed),
        "model_explain_treeshap": lambda: bundle.explain(matrix),
        "scorer_total_explain_tips": lambda: scorer.score(parsed, explain=True),
        "batch_parse_json": lambda: BatchRequest.model_validate_json(batch_body),
        "batch_validate_snapshots": lambda: parse_items(items),
        "batch_snapshot_arrays": lambda: snapshots_to_arrays(valid, scorer.windows),
        "batch_featurize_matrix": lambda: featurize_matrix(batch_arrays, scorer.windows),
        "batch_model_score": lambda: bundle.score_columns(batch_matrix, len(os.sched_getaffinity(0))),
        "batch_scorer_total": lambda: scorer.score_rows(valid),
        "batch_answer_json": lambda: to_json(batch_payload(valid, rows, scorer.model_version)),
    }
    out = {}
    for name, step in steps.items():
        times = []
        repeats = n // 5 if "explain" in name else n // 20 if name.startswith("batch") else n
        for _ in range(repeats):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        out[f"{name}_ms"] = round(statistics.median(times) * 1e3, 3)
    out["features"] = len(bundle.feature_names)
    out["trees"] = bundle.booster.num_trees()
    out["compiled_trees"] = bundle.compiled_trees is not None
    out["batch_size"] = len(batch)
    return out


async def _drive(url: str, clients: int, seconds: float, bodies: Sequence[bytes],
                 every: float | None, sample: Callable[[], Any] | None) -> dict[str, Any]:
    import asyncio
    from collections import Counter

    latencies: list[float] = []
    errors: Counter = Counter()
    samples: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(k: int) -> None:
            i = k
            while loop.time() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.post("/score", content=bodies[i % len(bodies)],
                                                 headers={"content-type": "application/json"})
                except httpx.HTTPError as error:
                    errors[type(error).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors[str(response.status_code)] += 1
                i += clients

        async def sampler() -> None:
            while every and sample and loop.time() < deadline:
                samples.append({"second": round(seconds - (deadline - loop.time()), 1), **sample()})
                await asyncio.sleep(every)

        started = loop.time()
        await asyncio.gather(sampler(), *(one(k) for k in range(clients)))
        elapsed = loop.time() - started
    ms = np.asarray(latencies) * 1e3
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "errors": dict(errors),
        "throughput_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        **({"samples": samples} if samples else {}),
    }


def drive(url: str, clients: int, seconds: float, bodies: Sequence[bytes],
          every: float | None = None, sample: Callable[[], Any] | None = None) -> dict[str, Any]:
    """`clients` concurrent keep-alive connections sending /score (explain=false) for `seconds`:
    requests, errors (by status or exception), throughput, p50/p99; `sample()` every `every`
    seconds when given (the load test's RSS)."""
    import asyncio

    return asyncio.run(_drive(url, clients, seconds, bodies, every, sample))


def score_bodies(n: int = 200) -> list[bytes]:
    """/score request bodies (explain=false) of `payloads`."""
    from pydantic_core import to_json

    return [to_json({"snapshot": body, "explain": False}) for body in payloads(n)]


def throughput(bundle_dir: Path, logs: Path) -> dict[str, Any]:
    """Requests per second at 1, 8 and 16 clients, for 1 and 2 workers."""
    from serving.launch import running_server

    bodies = score_bodies()
    env = {"INFLUENCE_BUNDLE_DIR": str(bundle_dir), "BENTOML_HOME": str(logs / "bentoml"),
           "INFLUENCE_API_KEY": None}
    out: dict[str, Any] = {}
    for workers in THROUGHPUT_WORKERS:
        with running_server(SERVICE, logs / f"throughput-{workers}.log", env=env, cwd=REPO,
                            workers=workers) as service:
            drive(service.url, 4, 2.0, bodies)  # warm-up
            runs = {}
            for clients in THROUGHPUT_CLIENTS:
                _log(f"throughput: {workers} worker(s), {clients} client(s)")
                runs[str(clients)] = drive(service.url, clients, THROUGHPUT_SECONDS, bodies)
            out[f"workers_{workers}"] = runs
    one, two = out["workers_1"], out["workers_2"]
    out["two_workers_vs_one"] = {c: round(two[c]["throughput_per_s"] / one[c]["throughput_per_s"], 2)
                                 for c in one if one[c]["throughput_per_s"]}
    return out


def measure(bundle_dir: Path, logs: Path) -> dict[str, Any]:
    from serving.launch import running_server

    bodies = payloads()
    env = {"INFLUENCE_BUNDLE_DIR": str(bundle_dir), "BENTOML_HOME": str(logs / "bentoml"),
           "INFLUENCE_API_KEY": None}  # measured without auth
    result: dict[str, Any] = {}
    with (
        running_server(ECHO, logs / "echo.log", env=env, cwd=REPO) as echo,
        running_server(SERVICE, logs / "service.log", env=env, cwd=REPO) as service,
        httpx.Client(base_url=echo.url, timeout=60) as floor_client,
        httpx.Client(base_url=service.url, timeout=60) as client,
    ):

        def body(i: int, explain: bool) -> dict[str, Any]:
            return {"snapshot": bodies[i % len(bodies)], "explain": explain}

        def echo_send(i: int) -> httpx.Response:
            return floor_client.post("/echo", json=body(i, False))

        def score(i: int) -> httpx.Response:
            return client.post("/score", json=body(i, False))

        def explained(i: int) -> httpx.Response:
            return client.post("/score", json=body(i, True))

        batch = {"snapshots": (bodies * 3)[:1000], "explain": False}

        def batch_send(i: int) -> httpx.Response:
            return client.post("/score_batch", json=batch)

        def echo_batch(i: int) -> httpx.Response:
            return floor_client.post("/echo", json={"snapshot": batch, "explain": False})

        def mixed(i: int) -> httpx.Response:
            """Steady traffic of every kind: /score, 1 in 20 explained, a batch per 1,000."""
            if i % 1000 == 999:
                return batch_send(i)
            return explained(i) if i % 20 == 19 else score(i)

        _log("warming up")
        _timed(echo_send, WARMUP)
        _timed(score, WARMUP)
        _timed(explained, 30)
        _timed(batch_send, 2)
        _timed(echo_batch, 2)

        _log(f"memory: {TOTAL_REQUESTS:,} requests of steady mixed traffic, RSS every {RSS_EVERY:,}")
        rss = [{"requests": 0, **rss_mb(service.pid)}]
        for sent in range(RSS_EVERY, TOTAL_REQUESTS + 1, RSS_EVERY):
            _timed(lambda i, s=sent: mixed(s - RSS_EVERY + i), RSS_EVERY)
            rss.append({"requests": sent, **rss_mb(service.pid)})
        half = next(r for r in rss if r["requests"] >= TOTAL_REQUESTS // 2)
        result["memory"] = {
            "samples": rss,
            "worker_mb_before": rss[0]["worker_mb"],
            "worker_mb_at_half": half["worker_mb"],
            "worker_mb_after_10000": rss[-1]["worker_mb"],
            "worker_growth_second_half_mb": round(rss[-1]["worker_mb"] - half["worker_mb"], 1),
        }

        _log("floor and /score, interleaved in blocks")
        floor_s, score_s = [], []
        for block in range(N_SCORE // 200):
            floor_s += _timed(echo_send, 200)
            score_s += _timed(lambda i, b=block: score(b * 200 + i), 200)
        floor = _summary(floor_s)
        result["floor_echo"] = floor
        result["score"] = _summary(score_s, floor["p50_ms"])

        _log("/score with explanation and tips")
        result["score_explain"] = _summary(_timed(explained, N_EXPLAIN), floor["p50_ms"])
        _log("/score_batch of 1,000 (and the floor echoing the same body)")
        batch_floor = _summary(_timed(echo_batch, N_BATCH))
        result["floor_echo_batch_1000"] = batch_floor
        batches = _summary(_timed(batch_send, N_BATCH), batch_floor["p50_ms"])
        batches["snapshots_per_s"] = round(1000 * batches.pop("throughput_per_s"), 1)
        result["batch_1000"] = batches
    return result


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    return {
        "score_p50_within_1.5x_floor": result["score"]["p50_vs_floor"] <= TARGETS["score_p50_vs_floor_max"],
        "score_p99_under_15ms": result["score"]["p99_ms"] < TARGETS["score_p99_ms_max"],
        "score_explain_p50_under_15ms": result["score_explain"]["p50_ms"] < TARGETS["score_explain_p50_ms_max"],
        "batch_1000_under_150ms": result["batch_1000"]["p50_ms"] < TARGETS["batch_1000_ms_max"],
        # allocator noise aside (a few MB as arenas settle), the second half must be flat
        "no_memory_growth_past_warmup": result["memory"]["worker_growth_second_half_mb"] <= 2.0,
    }


def run(work_dir: Path = Path("data/bench")) -> dict:
    """Serve the model and the echo floor on loopback; measure; stop both."""
    work_dir = Path(work_dir).resolve()
    logs = work_dir / "serving_bench"
    logs.mkdir(parents=True, exist_ok=True)
    bundle_dir, source = _bundle_dir(work_dir)
    _log(f"model: {source} ({bundle_dir})")
    bodies = payloads()
    result: dict[str, Any] = {"model": source, "targets": TARGETS, "cpus": os.cpu_count(),
                              "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    result["in_process"] = in_process_breakdown(bundle_dir, bodies[len(bodies) // 2],
                                                (bodies * 3)[:1000])
    result.update(measure(bundle_dir, logs))
    result["throughput"] = throughput(bundle_dir, logs)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["verdicts"] = verdicts(result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
