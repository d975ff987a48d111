"""Only the simulator writes the hidden truth, and only evaluation (training/evaluate*.py and the
report notebooks) reads it.

"Reads" means opening a truth table or importing its schemas. Code elsewhere may hand the
truth folder setting to evaluation (e.g. `evaluate_model(..., truth_dir=...)`); the reading
itself has to happen in simulation/ or training/evaluate*.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ("simulation/", "tests/", "notebooks/")  # notebooks are evaluation reports
ALLOWED_FILES = re.compile(r"^training/evaluate[^/]*\.py$")
DECLARES_ONLY = {"influence/params.py"}
"""Declares the truth folder setting (base.truth_dir = data/truth) without reading it."""
TRUTH_READ = re.compile(
    r"simulation\.truth|from simulation import[^\n]*\btruth\b"
    r"|\b(UserTruth|AccountTruth|InfluenceTruth|CorruptionTruth|TRUTH_MODELS)\b"
    r"|data/truth"
    r"|truth\w*\s*/\s*[\"'][\w.]+\.parquet"
    r"|(read|scan)_parquet\([^)\n]*truth"
)
SKIP_DIRS = {".venv", ".git", "data", "mlruns", "mlartifacts", ".pytest_cache", "__pycache__"}


def _sources() -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(".tmp"))
        rel = Path(folder).relative_to(ROOT)
        files += [rel / n for n in sorted(names) if n.endswith((".py", ".ipynb"))]
    return files


def test_nothing_outside_evaluation_reads_the_truth():
    offenders = []
    for rel in _sources():
        name = rel.as_posix()
        if name.startswith(ALLOWED) or ALLOWED_FILES.match(name) or name in DECLARES_ONLY:
            continue
        if TRUTH_READ.search((ROOT / rel).read_text(errors="ignore")):
            offenders.append(name)
    assert offenders == [], (
        f"only simulation/ and training/evaluate*.py may touch the truth: {offenders}"
    )


def test_the_scan_would_catch_a_reader():
    assert TRUTH_READ.search("pl.read_parquet(params.base.truth_dir / 'users.parquet')")
    assert TRUTH_READ.search("from simulation import truth")
    assert TRUTH_READ.search('pl.scan_parquet(cfg.truth_dir / "influence.parquet")')
    assert not TRUTH_READ.search("ground = labels.parquet")
    assert not TRUTH_READ.search("evaluate_model(bundle, data, truth_dir=params.base.truth_dir)")
