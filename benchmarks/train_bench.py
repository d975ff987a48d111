"""Training speed on the default world.

- training: `train_model` on the default world's training set (every as-of date, with the
  partial-snapshot augmentation), wall and CPU seconds, and rows per second of the LightGBM fit;
- `ModelBundle.score` of the fresh model (LightGBM, the frame path, one thread) on the reference
  population, from features and from snapshots, for reference. The batch path that daily scoring
  runs, and its 50,000 users/s target, are `daily_bench`'s.

The training set is the pipeline's (`data/features`) when present, else one built here under
`work_dir` from a clean default world (simulated when missing). Training runs in a subprocess
so its peak RSS is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _training_set(work_dir: Path) -> Path:
    from features import stage
    from features.engine import make_engine
    from influence.params import load_params
    from simulation.config import WorldConfig
    from simulation.world import write_world

    params = load_params(REPO / "params.yaml")
    pipeline = REPO / params.base.features_dir
    if (pipeline / "train.parquet").exists() and (pipeline / "snapshots.parquet").exists():
        return pipeline
    out = work_dir / "train_world"
    features = out / "features"
    if not (features / "train.parquet").exists():
        if not (out / "raw").exists():
            write_world(
                WorldConfig.from_params(params, corrupt_share=0.0), out / "raw", out / "truth"
            )
        stage.training_set(make_engine("polars"), out / "raw", features, params)
    return features


def measure(features_dir: str, repeats: int = 3) -> dict:
    """Inside the subprocess: train once, then time batch scoring."""
    import resource
    import time

    from features.featurize import featurize
    from influence.params import load_params
    from training.dataset import latest_population, read_snapshots, read_training_rows
    from training.train import TrainingData, train_model

    params = load_params(REPO / "params.yaml")
    snapshots = read_snapshots(Path(features_dir))
    data = TrainingData(
        rows=read_training_rows(Path(features_dir)),
        snapshots=snapshots,
        reference=latest_population(snapshots),
    )
    started, cpu = time.perf_counter(), time.process_time()
    bundle = train_model(data, params)
    train_seconds, train_cpu = time.perf_counter() - started, time.process_time() - cpu
    meta = bundle.metadata

    def best(job) -> float:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            job()
            times.append(time.perf_counter() - t)
        return min(times)

    features = featurize(data.reference)
    users = features.height
    score_seconds = best(lambda: bundle.score(features))
    path_seconds = best(lambda: bundle.score(featurize(data.reference)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "training_rows": meta["train_rows"],
        "augmented_rows": meta["augmented_rows"],
        "features": meta["n_features"],
        "trees": meta["trees"],
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu, 1),
        "fit_seconds": meta["fit_seconds"],
        "fit_rows_per_s": meta["rows_per_second"],
        "train_rows_per_s": round(meta["train_rows"] / train_seconds, 1),
        "scored_users": users,
        "bundle_score_users_per_s": round(users / score_seconds),
        "bundle_featurize_and_score_users_per_s": round(users / path_seconds),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "_note": "wall seconds on a shared machine; cpu seconds show the cost under load",
    }


def _in_subprocess(features_dir: Path) -> dict:
    code = (
        "import json; from benchmarks.train_bench import measure; "
        f"print(json.dumps(measure({str(features_dir)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-3:] or ["failed"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(work_dir: Path = Path("data/bench")) -> dict:
    """Training time and rows/s on the default world; batch scoring users/s."""
    features_dir = _training_set(Path(work_dir))
    return {"training_set": str(features_dir), **_in_subprocess(features_dir)}
