"""The offline dependency audit (`make audit`, security/audit.py): OSV range semantics, a lock
file with known-vulnerable versions is caught, the project's own lock is read whole, and a
missing database says that nothing was checked instead of reporting a clean result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.version import Version

from security.audit import BUNDLED_DB, affects, in_range, load, locked_packages, main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.9", False), ("1.0", True), ("1.4.2", True), ("1.5", False), ("2.0", True),
     ("2.1", True), ("2.1.1", False)],
)
def test_osv_ranges(version: str, expected: bool):
    events = [["introduced", "1.0"], ["fixed", "1.5"], ["introduced", "2.0"], ["last_affected", "2.1"]]
    assert in_range(Version(version), events) is expected


def test_an_explicit_version_list_counts_when_there_is_no_range():
    entry = {"versions": ["1.2.3"], "ranges": []}
    assert affects(entry, "1.2.3") and not affects(entry, "1.2.4")


def _lock(tmp_path: Path, pins: dict[str, str]) -> Path:
    text = "version = 1\n" + "".join(
        f'[[package]]\nname = "{name}"\nversion = "{version}"\n' for name, version in pins.items()
    ) + '[[package]]\nname = "influence"\nversion = "0.1.0"\nsource = { editable = "." }\n'
    (tmp_path / "uv.lock").write_text(text)
    return tmp_path / "uv.lock"


def test_a_known_vulnerable_version_is_reported(tmp_path: Path, capsys):
    lock = _lock(tmp_path, {"MLflow": "2.9.0", "polars": "1.0.0"})
    report = tmp_path / "audit.json"
    assert main(["--lock", str(lock), "--report", str(report)]) == 1
    found = json.loads(report.read_text())
    assert found["packages_checked"] == 2 and found["affected_packages"] == ["mlflow"]
    assert "PYSEC-2024-51" in {f["advisory"] for f in found["findings"]}
    out = capsys.readouterr().out
    assert "as of 2024-10-10" in out and "NOT checked" in out  # the snapshot's age is said


def test_the_projects_lock_is_read_whole():
    packages = locked_packages(REPO / "uv.lock")
    assert len(packages) > 200 and "influence" not in packages
    assert {"mlflow", "lightgbm", "duckdb", "bentoml"} <= set(packages)
    assert load(BUNDLED_DB).as_of.isoformat() == "2024-10-10"


def test_without_a_database_nothing_is_reported_clean(tmp_path: Path, capsys):
    code = main(["--db", str(tmp_path / "missing.json.gz"), "--lock", str(REPO / "uv.lock"),
                 "--report", str(tmp_path / "audit.json")])
    assert code == 2
    assert "NOTHING was checked" in capsys.readouterr().err
    assert not (tmp_path / "audit.json").exists()
