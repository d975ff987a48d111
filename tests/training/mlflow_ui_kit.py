"""A real MLflow UI on loopback and a headless Chromium to look at it (the browser tests).

The server is `mlflow server` over a test store, started in its own session on a free port of
127.0.0.1 (as `make mlflow-ui` starts it over the project's store) and stopped by the id of the
process group we started. The browser is the system's Chromium (Debian package `chromium`),
driven by Playwright with a fresh profile and nothing that reaches the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from serving.launch import HOST, QUIET_ENV, free_port, stop

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
VIEWPORT = {"width": 1600, "height": 1000}


def chromium_path() -> str | None:
    """`INFLUENCE_CHROMIUM`, else `chromium` on PATH (Debian's package), else None."""
    found = os.environ.get("INFLUENCE_CHROMIUM") or shutil.which("chromium")
    return found if found and Path(found).exists() else None


def server_command(store: Path, port: int) -> list[str]:
    mlflow = Path(sys.executable).parent / "mlflow"
    return [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination", str(store / "mlartifacts"),
            "--host", HOST, "--port", str(port), "--workers", "1"]


@contextmanager
def mlflow_server(store: Path, timeout: float = 180.0) -> Iterator[str]:
    """The MLflow UI over `store` (its `mlflow.db` and `mlartifacts/`); yields its URL."""
    port = free_port()
    log = store / "mlflow-server.log"
    env = {**os.environ, **QUIET_ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        process = subprocess.Popen(server_command(store, port), cwd=store, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        _wait_healthy(url, process, timeout, log)
        yield url
    finally:
        stop(process)


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n"
                               + log.read_text(errors="replace")[-3000:])
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {url} not healthy after {timeout:.0f} s:\n"
                       + log.read_text(errors="replace")[-3000:])


@contextmanager
def chromium_page(executable: str) -> Iterator[object]:
    """A Playwright page in a headless Chromium with a fresh profile (closed afterwards)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, \
            sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS),
            viewport=VIEWPORT,
        )
        context.set_default_timeout(60_000)
        try:
            yield context.new_page()
        finally:
            context.close()
