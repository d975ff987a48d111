"""What is checked before the service serves, in process: the bundle's content hash
(`ModelBundle.load`), the MLflow store (`training.registry.check_store`), the API key
(`ServingSettings`). The same faults on a real launcher are in test_startup_faults.py."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from serving.settings import ServingSettings
from training.bundle import BundleIntegrityError, ModelBundle
from training.registry import StoreError, check_store


@pytest.fixture
def copy_of(bundle_dir: Path, tmp_path: Path):
    def copy() -> Path:
        return Path(shutil.copytree(bundle_dir, tmp_path / "bundle"))

    return copy


def test_a_genuine_bundle_loads(bundle_dir: Path):
    assert ModelBundle.load(bundle_dir).version.startswith("is-")


def test_a_truncated_model_is_refused_naming_the_file_before_lightgbm_reads_it(copy_of):
    folder = copy_of()
    model = folder / "model.txt"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with pytest.raises(BundleIntegrityError, match=re.escape(str(model))):
        ModelBundle.load(folder)


def test_edited_leaf_values_are_refused(copy_of):
    """The probe's attack: leaf values edited to lift every score, same `model_version`."""
    folder = copy_of()
    model = folder / "model.txt"
    text = model.read_text()
    edited = re.sub(r"^leaf_value=(\S+)", lambda m: f"leaf_value={float(m.group(1)) + 5}",
                    text, count=1, flags=re.MULTILINE)
    assert edited != text
    model.write_text(edited)
    with pytest.raises(BundleIntegrityError, match="refusing to load"):
        ModelBundle.load(folder)


def test_an_edited_calibrator_is_refused(copy_of):
    folder = copy_of()
    calibrator = folder / "calibrator.json"
    calibrator.write_text(re.sub(r'"a": ([-0-9.e]+)', '"a": 3.0', calibrator.read_text(), count=1))
    with pytest.raises(BundleIntegrityError):
        ModelBundle.load(folder)


def test_a_missing_model_file_is_named(copy_of):
    folder = copy_of()
    (folder / "model.txt").unlink()
    with pytest.raises(FileNotFoundError, match="model.txt"):
        ModelBundle.load(folder)


# --- the MLflow store ---------------------------------------------------------------------------


def _uri(path: Path) -> str:
    return f"sqlite:///{path}"


def _mlflow_like(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE registered_models (name TEXT)")
    db.commit()
    db.close()
    return path


def test_a_missing_store_is_named_and_not_created(tmp_path: Path):
    store = tmp_path / "gone" / "mlflow.db"
    with pytest.raises(StoreError, match=f"no MLflow store at {store}"):
        check_store(_uri(store))
    assert not store.parent.exists()


@pytest.mark.parametrize("content", [b"", b"not a database at all\n" * 50])
def test_a_corrupt_store_is_named(tmp_path: Path, content: bytes):
    store = tmp_path / "mlflow.db"
    store.write_bytes(content)
    with pytest.raises(StoreError, match=f"{store} is not an SQLite database"):
        check_store(_uri(store))
    assert store.read_bytes() == content


def test_a_store_with_garbage_after_its_header_is_named(tmp_path: Path):
    store = _mlflow_like(tmp_path / "mlflow.db")
    data = bytearray(store.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)
    store.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=f"{store} cannot be read"):
        check_store(_uri(store))


def test_an_sqlite_file_that_is_not_an_mlflow_store_is_named(tmp_path: Path):
    store = tmp_path / "other.db"
    db = sqlite3.connect(store)
    db.execute("CREATE TABLE x (a)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not an MLflow store"):
        check_store(_uri(store))


def test_a_locked_store_is_named_within_the_timeout(tmp_path: Path):
    store = _mlflow_like(tmp_path / "mlflow.db")
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sqlite3, sys, time\n"
                                f"db = sqlite3.connect({str(store)!r}, isolation_level=None)\n"
                                "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); "
                                "time.sleep(60)")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked"):
            check_store(_uri(store), timeout=0.5)
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_a_readable_store_and_other_kinds_of_store_pass(tmp_path: Path):
    check_store(_uri(_mlflow_like(tmp_path / "mlflow.db")))
    check_store("http://127.0.0.1:5000")
    check_store(str(tmp_path / "mlruns"))


# --- the API key --------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "words"), [
    ("", "set but empty"),
    ("   ", "set but empty"),
    ("short", "at least 16"),
    ("a key with spaces in it", "no spaces"),
    ("clé-non-ascii-0123456789", "printable ASCII"),
])
def test_empty_or_unusable_keys_are_refused(monkeypatch, key: str, words: str):
    monkeypatch.setenv("INFLUENCE_API_KEY", key)
    with pytest.raises(ValidationError, match=words):
        ServingSettings()


def test_a_usable_key_and_no_key_are_accepted(monkeypatch):
    monkeypatch.setenv("INFLUENCE_API_KEY", "0123456789abcdef-key")
    assert ServingSettings().api_key == "0123456789abcdef-key"
    monkeypatch.delenv("INFLUENCE_API_KEY")
    assert ServingSettings().api_key is None
