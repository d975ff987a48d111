"""Feature-pipeline speed and memory for one as-of date, against a floor measured in the same run.

- pipeline: Parquet -> snapshots (validated `Snapshots`) -> features (validated `Features`) ->
  written, for the latest as-of date of the world (`features.stage`), Polars engine;
- floor (the issue's, the headline `ratio_to_floor`): one streaming Polars pass over the same
  interaction files, counting interactions per target user (the least any per-user feature
  pipeline must do);
- read floor: the same pass reading the six interaction columns the pipeline reads (date,
  network, actor_id, target_id, action, post_id), counting per target and the non-null values of
  each column (so none is pruned): what reading the events alone costs, `ratio_to_read_floor`;
- pairs pass: the same files grouped by (network, target_id, actor_id), nothing else: what
  counting distinct engagers alone costs (`pairs_pass_to_floor`), whatever else a pipeline does;
  and its best case, the three packed into one Int64 key (network code, and ids offset by
  their minimum, known beforehand for free: `packed_pairs_pass_to_floor`): the least any
  implementation that counts distinct engagers pays; the same for (network, actor, day), which
  selectivity and active days need (`packed_actor_days_pass_to_floor`);
- parts: one more run with every piece of the snapshot build computed on its own
  (`features.stage.Profile`), wall and CPU seconds per piece; the pipeline pins the same pieces
  (the profile only splits the read from the selectivity and pins PageRank's three outputs),
  so the parts add up to about `pipeline_seconds`;
- growth: the same on a world with a quarter of the users (about a quarter of the interactions),
  so `time_ratio` / `interactions_ratio` shows how time grows with the data;
- featurize alone on 1 and 1,000 snapshots (the serving path's share).

Why the issue's 8x is out of reach (make bench, 2026-11-26, default world, 11.0M interactions
read): the floor takes 0.072 s wall; reading the six columns 0.204 s (2.8x); one pass grouping
them by (network, target, actor), which distinct engagers, reciprocity and the engagement graph
need, 0.79 s (11x) on its own, 0.48 s (6.6x) even with the three packed into one Int64 key; one
by (network, actor, day), which selectivity and active days need, 0.33 s (4.6x) packed. The two
packed passes alone are 11.2x; the pipeline also runs PageRank (10 passes over 3.8M edges),
featurize (20,000 x 910) and the writes.

Each measurement runs in a fresh subprocess (its own peak RSS) and takes the best of `repeats`
runs: the machine is shared, and the best run is the least disturbed one. CPU seconds are
reported beside wall seconds for the same reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from features.build import INTERACTION_COLUMNS

REPO = Path(__file__).resolve().parents[1]


def measure(raw: str, repeats: int = 2) -> dict:
    """Inside the subprocess: time the pipeline and the floor on one world."""
    import resource
    import tempfile
    import time
    from datetime import timedelta

    import polars as pl

    from features import stage
    from features.build import days_between
    from features.engine import PolarsEngine, data_end, partition_days
    from influence.params import load_params

    root = Path(raw)
    params = load_params(REPO / "params.yaml")
    as_of = data_end(root)
    longest = max(params.features.windows)
    days = partition_days(root, "interactions")
    read = [days[d] for d in days_between(as_of - timedelta(days=longest), as_of) if d in days]
    files = [f for folder in read for f in sorted(folder.glob("*.parquet"))]
    everything = [f for folder in days.values() for f in sorted(folder.glob("*.parquet"))]

    def count(paths) -> int:
        return pl.scan_parquet(paths).select(pl.len()).collect().item()

    def floor() -> pl.DataFrame:
        return pl.scan_parquet(files).group_by("target_id").len().collect(engine="streaming")

    others = [c for c in INTERACTION_COLUMNS if c != "target_id"]

    def read_floor() -> pl.DataFrame:
        frame = scan_interactions(read)
        return (
            frame.group_by("target_id")
            .agg(pl.len(), *(pl.col(c).count() for c in others))
            .collect(engine="streaming")
        )

    def pairs_pass() -> pl.DataFrame:
        frame = scan_interactions(read)
        return frame.group_by("network", "target_id", "actor_id").len().collect(engine="streaming")

    ids = pl.scan_parquet(files).select(
        pl.min_horizontal(pl.col("actor_id").min(), pl.col("target_id").min()).alias("low"),
        pl.max_horizontal(pl.col("actor_id").max(), pl.col("target_id").max()).alias("high"),
    ).collect()
    low, span = ids["low"].item(), ids["high"].item() - ids["low"].item() + 1
    bits = max(1, int(span - 1).bit_length())
    networks = pl.Enum(sorted(pl.scan_parquet(files).select(pl.col("network").unique()).collect()["network"]))

    def packed_pairs_pass() -> pl.DataFrame:
        code = pl.col("network").cast(networks).to_physical().cast(pl.Int64)
        key = (code * 2 ** (2 * bits) + (pl.col("target_id") - low) * 2**bits
               + (pl.col("actor_id") - low))
        return scan_interactions(read).select(key.alias("key")).group_by("key").len().collect(
            engine="streaming")

    def packed_actor_days_pass() -> pl.DataFrame:
        """(network, actor, day) in one key: what selectivity and active days need, best case."""
        code = pl.col("network").cast(networks).to_physical().cast(pl.Int64)
        day = (pl.col("date") - pl.lit(as_of)).dt.total_days() + 512
        key = (code * 2 ** (bits + 10) + (pl.col("actor_id") - low) * 2**10 + day)
        return scan_interactions(read).select(key.alias("key")).group_by("key").len().collect(
            engine="streaming")

    def pipeline(out: Path) -> int:
        tables = stage.features_for_date(PolarsEngine(), root, as_of, params)
        stage.write_date(tables, out)
        return tables.features.height

    def best(job, *args) -> tuple[float, float, object]:
        runs = []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            result = job(*args)
            runs.append((time.perf_counter() - wall, time.process_time() - cpu, result))
        return min(runs, key=lambda r: r[0])

    floor_s, floor_cpu, _ = best(floor)
    read_s, read_cpu, _ = best(read_floor)
    with tempfile.TemporaryDirectory() as tmp:
        pipe_s, pipe_cpu, users = best(pipeline, Path(tmp))
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the floors after the pipeline too: the machine may drift
    floor_again, floor_cpu_again, _ = best(floor)
    floor_s, floor_cpu = min(floor_s, floor_again), min(floor_cpu, floor_cpu_again)
    read_again, read_cpu_again, _ = best(read_floor)
    read_s, read_cpu = min(read_s, read_again), min(read_cpu, read_cpu_again)
    pairs_s, pairs_cpu, _ = best(pairs_pass)
    packed_s, _, _ = best(packed_pairs_pass) if 2 * bits + 4 < 63 else (None, None, None)
    actor_days_s, _, _ = best(packed_actor_days_pass) if bits + 14 < 63 else (None, None, None)
    profile = Parts(PolarsEngine())
    with tempfile.TemporaryDirectory() as tmp:
        tables = stage.features_for_date(profile.engine, root, as_of, params, profile=profile)
        with profile.step("write"):
            stage.write_date(tables, Path(tmp))
    n_read, n_world = count(files), count(everything)
    return {
        "as_of": as_of.isoformat(),
        "users": users,
        "interactions_read": n_read,
        "interactions_in_world": n_world,
        "pipeline_seconds": round(pipe_s, 2),
        "pipeline_cpu_seconds": round(pipe_cpu, 2),
        "interactions_per_s": round(n_read / pipe_s),
        "world_interactions_per_s": round(n_world / pipe_s),
        "floor_seconds": round(floor_s, 3),
        "floor_cpu_seconds": round(floor_cpu, 3),
        "ratio_to_floor": round(pipe_s / floor_s, 1),
        "read_floor_seconds": round(read_s, 3),
        "read_floor_cpu_seconds": round(read_cpu, 3),
        "ratio_to_read_floor": round(pipe_s / read_s, 1),
        "read_floor_to_floor": round(read_s / floor_s, 1),
        "pairs_pass_seconds": round(pairs_s, 3),
        "pairs_pass_cpu_seconds": round(pairs_cpu, 3),
        "pairs_pass_to_floor": round(pairs_s / floor_s, 1),
        "packed_pairs_pass_seconds": round(packed_s, 3) if packed_s else None,
        "packed_pairs_pass_to_floor": round(packed_s / floor_s, 1) if packed_s else None,
        "packed_actor_days_pass_seconds": round(actor_days_s, 3) if actor_days_s else None,
        "packed_actor_days_pass_to_floor": (
            round(actor_days_s / floor_s, 1) if actor_days_s else None),
        "peak_rss_mb": round(peak_rss),
        "parts_seconds": profile.report(),
        "_parts_note": "[wall, cpu] seconds per piece, one run with every piece computed on its "
        "own (read = the six event columns as codes; selectivity adds the weight and the window "
        "bucket; collect = sorting the long table)",
    }


def scan_interactions(folders):
    """The six columns the pipeline reads, `date` from the partition folder, as stored."""
    import polars as pl

    files = [f for folder in folders for f in sorted(folder.glob("*.parquet"))]
    if "date" in pl.read_parquet_schema(files[0]):
        return pl.scan_parquet(files, hive_partitioning=False).select(INTERACTION_COLUMNS)
    hive = {"hive_partitioning": True, "hive_schema": {"date": pl.Date}}
    return pl.scan_parquet(files, **hive).select(INTERACTION_COLUMNS)


class Parts:
    """`features.stage.Profile`: each piece computed on its own, its seconds added up by name."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.seconds: dict[str, list[float]] = {}

    @contextmanager
    def step(self, name: str):
        import time

        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            spent = self.seconds.setdefault(name, [0.0, 0.0])
            spent[0] += time.perf_counter() - wall
            spent[1] += time.process_time() - cpu

    def part(self, name: str, frame):
        with self.step(name):
            return self.engine.materialize(frame)

    def report(self) -> dict:
        parts = {k: [round(w, 3), round(c, 3)] for k, (w, c) in self.seconds.items()}
        parts["total"] = [
            round(sum(w for w, _ in self.seconds.values()), 2),
            round(sum(c for _, c in self.seconds.values()), 2),
        ]
        return parts


def measure_featurize() -> dict:
    """featurize alone: one snapshot (the HTTP path) and a batch of 1,000."""
    import time

    from features.featurize import featurize_matrix
    from features.snapshot import SignalSnapshot, snapshots_to_arrays

    example = {
        "user_id": "alice",
        "as_of": "2026-11-25",
        "networks": {
            "twitter": {
                "window_days": 30,
                "followers": 1200,
                "following": 300,
                "lists": 12,
                "account_age_days": 400,
                "posts": 90,
                "posts_with_media": 20,
                "received": {"like": 800, "retweet": 120, "reply": 40, "mention": 60},
                "sent": {"retweet": 10, "reply": 30, "mention": 20},
                "unique_engagers": 350,
                "engager_influence": 42.5,
            },
            "linkedin": {"window_days": 30, "followers": 500, "received": {"recommendation": 3}},
        },
    }
    one = [SignalSnapshot.model_validate(example)]
    many = [SignalSnapshot.model_validate({**example, "user_id": str(i)}) for i in range(1000)]

    def per_call(snapshots, n: int) -> float:
        featurize_matrix(snapshots_to_arrays(snapshots))
        times = []
        for _ in range(n):
            started = time.perf_counter()
            featurize_matrix(snapshots_to_arrays(snapshots))
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]  # median

    return {
        "featurize_1_snapshot_ms": round(per_call(one, 200) * 1e3, 3),
        "featurize_1000_snapshots_ms": round(per_call(many, 7) * 1e3, 1),
        "_note": "snapshots_to_arrays + featurize_matrix (window rule and features), median",
    }


def _in_subprocess(function: str, *args) -> dict:
    code = (
        "import json; from benchmarks.features_bench import " + function + "; "
        f"print(json.dumps({function}(*{args!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _simulate(out: Path, users: int | None = None) -> Path:
    """A world under `out` (kept for the next run): the params world, or fewer users."""
    raw = out / "raw"
    if not (raw / "interactions").is_dir():
        code = (
            "from pathlib import Path; from influence.params import load_params; "
            "from simulation.config import WorldConfig; from simulation.world import write_world; "
            f"cfg = WorldConfig.from_params(load_params(), users={users!r}, corrupt_share=0.0); "
            f"write_world(cfg, Path({str(raw)!r}), Path({str(out / 'truth')!r}))"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return raw


def _default_world(work_dir: Path) -> Path:
    """The pipeline's validated world if there is one, else a clean default world of our own
    (simulate_bench's world keeps its corrupt rows, which only `influence validate` may read)."""
    clean = REPO / "data" / "clean"
    if (clean / "interactions").is_dir():
        return clean
    return _simulate(work_dir / "features_default")


def run(raw_dir: Path | None = None, work_dir: Path = Path("data/bench"), repeats: int = 2) -> dict:
    """Throughput, peak memory, ratio to the floor and growth for one as-of date."""
    work_dir = Path(work_dir)
    raw = Path(raw_dir) if raw_dir else _default_world(work_dir)
    main = _in_subprocess("measure", str(raw), repeats)
    result: dict = {"world": str(raw), **main}
    if "error" not in main:
        quarter_users = max(100, _world_users(raw) // 4)
        quarter = _in_subprocess(
            "measure", str(_simulate(work_dir / "features_quarter", quarter_users)), repeats
        )
        if "error" in quarter:
            result["growth"] = quarter
        else:
            n_ratio = main["interactions_read"] / quarter["interactions_read"]
            t_ratio = main["pipeline_seconds"] / quarter["pipeline_seconds"]
            result["growth"] = {
                "quarter_world_users": quarter_users,
                "quarter_interactions_read": quarter["interactions_read"],
                "quarter_pipeline_seconds": quarter["pipeline_seconds"],
                "interactions_ratio": round(n_ratio, 2),
                "time_ratio": round(t_ratio, 2),
                "time_per_interaction_ratio": round(t_ratio / n_ratio, 2),
                "_note": "target: 4x the interactions in at most 4.6x the time "
                "(time_per_interaction_ratio <= 1.15)",
            }
    result["featurize"] = _in_subprocess("measure_featurize")
    result["targets"] = {
        "interactions_per_s_at_least": 1_000_000,
        "ratio_to_floor_at_most": 8,
        "_ratio_note": "ratio_to_floor is the issue's (target_id only); ratio_to_read_floor and "
        "read_floor_to_floor say how much of it reading the six event columns alone explains",
        "growth_time_ratio_for_4x_at_most": 4.6,
    }
    return result


def _world_users(raw: Path) -> int:
    import polars as pl

    return (
        pl.scan_parquet(raw / "accounts" / "part-0.parquet")
        .select(pl.col("user_id").n_unique())
        .collect()
        .item()
    )


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2))
