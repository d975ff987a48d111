"""Start-up faults on the real launcher (`python -m serving.launch`, what `make serve` runs): a
truncated, tampered or missing model, a missing, corrupt or locked MLflow store, an empty or
unusable API key. Each ends the launcher with status 2 and one line naming the file or store and
the problem, never binds the port, never creates a store; a worker that cannot start (the model
broken after the check passed) stops the whole server instead of restarting behind a port whose
connections hang; two servers with the same BENTOML_HOME keep their own metrics.

Slow: each launch imports the model stack (~5 s on a quiet machine), the last two start BentoML.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from serving.launch import (
    HOST,
    QUIET_ENV,
    SERVICE,
    free_port,
    running_server,
    serve_command,
    stop,
)
from serving.samples import EXAMPLE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
FAIL_WITHIN_S = 90  # "seconds" on a quiet machine (~5-10 s); the bound allows a busy shared one


def _broken_bundles(bundle_dir: Path, root: Path) -> dict[str, Path]:
    truncated = Path(shutil.copytree(bundle_dir, root / "truncated"))
    model = truncated / "model.txt"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 3])
    tampered = Path(shutil.copytree(bundle_dir, root / "tampered"))
    model = tampered / "model.txt"
    model.write_text(re.sub(r"^leaf_value=(\S+)", lambda m: f"leaf_value={float(m.group(1)) + 9}",
                            model.read_text(), count=3, flags=re.MULTILINE))
    return {"truncated": truncated, "tampered": tampered, "missing": root / "no-such-bundle"}


def _stores(root: Path) -> dict[str, Path]:
    corrupt = root / "corrupt.db"
    corrupt.write_bytes(b"\x00garbage, not SQLite\n" * 100)
    locked = root / "locked.db"
    db = sqlite3.connect(locked)
    db.execute("CREATE TABLE registered_models (name TEXT)")
    db.commit()
    db.close()
    return {"missing": root / "none" / "mlflow.db", "corrupt": corrupt, "locked": locked}


def _launch(env: dict[str, str], port: int) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("INFLUENCE_BUNDLE_DIR", "INFLUENCE_API_KEY")}
    return subprocess.Popen(serve_command(SERVICE, port), env={**clean, **QUIET_ENV, **env},
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def test_every_start_up_fault_ends_the_launcher_naming_the_problem(bundle_dir, tmp_path):
    bundles, stores = _broken_bundles(bundle_dir, tmp_path), _stores(tmp_path)
    cases = {  # name: (environment, words the one line must hold)
        "truncated model": ({"INFLUENCE_BUNDLE_DIR": str(bundles["truncated"])},
                            [str(bundles["truncated"] / "model.txt"), "refusing"]),
        "tampered model": ({"INFLUENCE_BUNDLE_DIR": str(bundles["tampered"])},
                           [str(bundles["tampered"] / "model.txt"), "refusing"]),
        "missing model": ({"INFLUENCE_BUNDLE_DIR": str(bundles["missing"])},
                          [str(bundles["missing"]), "missing bundle.json"]),
        "missing store": ({"MLFLOW_TRACKING_URI": f"sqlite:///{stores['missing']}"},
                          [f"no MLflow store at {stores['missing']}"]),
        "corrupt store": ({"MLFLOW_TRACKING_URI": f"sqlite:///{stores['corrupt']}"},
                          [str(stores["corrupt"]), "not an SQLite database"]),
        "locked store": ({"MLFLOW_TRACKING_URI": f"sqlite:///{stores['locked']}"},
                         [str(stores["locked"]), "locked"]),
        "empty key": ({"INFLUENCE_API_KEY": "", "INFLUENCE_BUNDLE_DIR": str(bundle_dir)},
                      ["INFLUENCE_API_KEY is set but empty"]),
        "short key": ({"INFLUENCE_API_KEY": "abc", "INFLUENCE_BUNDLE_DIR": str(bundle_dir)},
                      ["INFLUENCE_API_KEY is unusable"]),
    }
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sqlite3, time\n"
                                f"db = sqlite3.connect({str(stores['locked'])!r}, "
                                "isolation_level=None)\n"
                                "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); "
                                "time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    running: dict[str, subprocess.Popen] = {}
    try:
        ports = {name: free_port() for name in cases}
        started = time.monotonic()
        running = {name: _launch(env, ports[name]) for name, (env, _) in cases.items()}
        for name, process in running.items():
            try:
                left = FAIL_WITHIN_S - (time.monotonic() - started)
                out, _ = process.communicate(timeout=max(1.0, left))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name}: still running after {FAIL_WITHIN_S} s "
                            f"(port {'open' if _listening(ports[name]) else 'closed'})")
            took = time.monotonic() - started
            print(f"{name}: exit {process.returncode} after {took:.1f} s: {out.strip()[-300:]}")
            assert process.returncode == 2, (name, out)
            (line,) = [x for x in out.splitlines() if x.startswith("influence serve: cannot start")]
            for words in cases[name][1]:
                assert words in line, (name, line)
            assert "Traceback" not in out and not _listening(ports[name]), name
    finally:
        holder.kill()
        holder.wait()
        for process in running.values():
            stop(process, grace=5)
    assert not stores["missing"].parent.exists()


def test_a_worker_that_cannot_start_stops_the_server(bundle_dir, tmp_path):
    """The check passed, then the model broke: BentoML would restart the worker forever while
    the supervisor holds the port, whose connections hang; instead the server ends, status 2."""
    broken = _broken_bundles(bundle_dir, tmp_path)["truncated"]
    port = free_port()
    command = [*serve_command(SERVICE, port), "--no-preflight"]
    env = {**os.environ, **QUIET_ENV, "INFLUENCE_BUNDLE_DIR": str(broken),
           "BENTOML_HOME": str(tmp_path / "bentoml")}
    env.pop("INFLUENCE_API_KEY", None)
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=240)
    finally:
        stop(process, grace=5)
    assert process.returncode == 2, out[-2000:]
    assert "influence serve: stopped: cannot start: BundleIntegrityError" in out
    assert str(broken / "model.txt") in out
    assert not _listening(port)


def test_two_servers_with_one_bentoml_home_keep_their_own_metrics(bundle_dir, tmp_path):
    """BentoML wipes `$BENTOML_HOME/prometheus_multiproc_dir` when a server starts: a second
    service used to delete the first one's counters."""
    env = {"INFLUENCE_BUNDLE_DIR": str(bundle_dir), "BENTOML_HOME": str(tmp_path / "shared"),
           "INFLUENCE_COMPILED_DIR": str(tmp_path / "compiled")}
    with (running_server(SERVICE, tmp_path / "first.log", env=env, cwd=ROOT, timeout=240) as first,
          httpx.Client(base_url=first.url, timeout=30) as client):
        for _ in range(7):
            assert client.post("/score", json={"snapshot": EXAMPLE}).status_code == 200
        with running_server(SERVICE, tmp_path / "second.log", env=env, cwd=ROOT, timeout=240):
            metrics = client.get("/metrics").text
    (count,) = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                if line.startswith("bentoml_service_request_total{")
                and 'endpoint="/score"' in line and 'http_response_code="200"' in line]
    assert count == 7


def test_two_workers_serve(bundle_dir, tmp_path):
    env = {"INFLUENCE_BUNDLE_DIR": str(bundle_dir), "BENTOML_HOME": str(tmp_path / "bentoml"),
           "INFLUENCE_COMPILED_DIR": str(tmp_path / "compiled")}
    with running_server(SERVICE, tmp_path / "serve.log", env=env, cwd=ROOT, timeout=240,
                        workers=2) as server:
        import psutil

        workers = [p for p in psutil.Process(server.pid).children(recursive=True)
                   if "_bentoml_impl.worker.service" in " ".join(p.cmdline())]
        assert len(workers) == 2
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert all(client.post("/score", json={"snapshot": EXAMPLE}).status_code == 200
                       for _ in range(10))
