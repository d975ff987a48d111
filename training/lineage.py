"""What a training run came from: its params, the data it learned from, the code.

Pure helpers (flattened params, a data fingerprint, git state, DVC experiment tags) and
`log_dataset`, which records the training table as the run's input without reading it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"train": {"num_leaves": 31}}` -> `{"train.num_leaves": "31"}`; lists stay one value."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(list(value), default=str)
        else:
            flat[name] = str(value)
    return flat


def _files_under(paths: Iterable[Path | str]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"cannot fingerprint {path}: no such file or folder")
    return sorted(set(files))


def data_fingerprint(paths: Sequence[Path | str]) -> str:
    """sha256 over the relative path and content of every file under `paths` (sorted), so the
    same tables give the same fingerprint wherever the project lives."""
    digest = hashlib.sha256()
    roots = [Path(p) for p in paths]
    for file in _files_under(roots):
        root = next(r for r in roots if file == r or r in file.parents)
        relative = file.relative_to(root.parent)
        digest.update(relative.as_posix().encode())
        digest.update(b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool


def git_state(cwd: Path | str = ".") -> GitState:
    """HEAD and whether the work tree has changes; 'unknown' outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return GitState("unknown", dirty=False)
    return GitState(commit, dirty=bool(status.strip()))


def run_tags(git: GitState, data_digest: str, extra: Mapping[str, str] | None = None) -> dict:
    return {
        # the standard tag, shown by the MLflow UI next to the run
        "mlflow.source.git.commit": git.commit,
        "git_commit": git.commit,
        "git_dirty": str(git.dirty).lower(),
        "data_fingerprint": data_digest,
        **(extra or {}),
    }


def dvc_tags(environ: Mapping[str, str]) -> dict[str, str]:
    """Which DVC experiment (and baseline commit) produced the run, when run by `dvc exp run`:
    DVC sets these variables for the stage commands of an experiment."""
    names = {"DVC_EXP_NAME": "dvc_experiment", "DVC_EXP_BASELINE_REV": "dvc_baseline_rev",
             "DVC_STAGE": "dvc_stage"}
    return {tag: environ[var] for var, tag in names.items() if environ.get(var)}


def log_dataset(
    table: pl.DataFrame | pl.LazyFrame,
    source: Path | str,
    name: str,
    digest: str,
    context: str = "training",
) -> int:
    """Training-data lineage: the table's source path, our fingerprint, its schema and row count
    (returned). Only the schema is materialised (a `MetaDataset`), so a lazily scanned table of
    any size costs nothing to log."""
    import mlflow
    import polars as pl
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.types.utils import _infer_schema

    lazy = table.lazy()
    rows = lazy.select(pl.len()).collect().item()
    empty = pl.DataFrame(schema=lazy.collect_schema()).to_pandas()
    dataset = MetaDataset(
        source=LocalArtifactDatasetSource(str(Path(source).resolve())),
        name=name,
        digest=digest[:36],  # the store keeps 36 characters
        schema=_infer_schema(empty),
    )
    mlflow.log_input(dataset, context=context, tags={"rows": str(rows)})
    return int(rows)
