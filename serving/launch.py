"""Starting the service: the launcher behind `make serve` / `influence serve`, and a real server
on loopback for tests and benchmarks.

    python -m serving.launch serving.service:InfluenceService --port 3000 [--workers 2]

What the launcher adds to `bentoml serve`:

1. **Checks before anything listens** (`preflight`): the settings (an empty or unusable
   `INFLUENCE_API_KEY` is refused) and the model, loaded exactly as a worker will load it (the
   bundle's content hash, the MLflow store, the champion alias). A failure prints one line naming
   the file or store and the problem and exits with status 2 within seconds; no port was bound,
   no store created. The launcher then re-executes itself without the check, so the supervisor
   does not keep a copy of the model.
2. **A private supervisor**: BentoML's process supervisor (circus) listens for commands on two
   loopback TCP ports without authentication (anyone on the machine could stop the service or
   start processes through it). Here its endpoints are Unix sockets in a fresh folder only this
   user can enter, which also holds the server's own Prometheus folder: two services never share
   (and wipe) each other's metrics, whatever their `BENTOML_HOME`.
3. **Workers and timeouts from params.yaml** (`serve:`; `--workers` overrides): worker count,
   idle keep-alive timeout, and the time a client has to send a request's head
   (`serving.runtime`).
4. **A worker that cannot start stops the whole server** (`stop_supervisor`): it writes why into
   the private folder and ends the supervisor, which exits with status 2 and that message instead
   of restarting the worker forever behind a port whose connections hang.

The server runs in its own session, so `running_server` stops it and the workers it forks
together, by the process-group id of the process it started, and nothing else.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

HOST = "127.0.0.1"
SERVICE = "serving.service:InfluenceService"
QUIET_ENV = {
    "BENTOML_DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
}
RUN_DIR_ENV = "INFLUENCE_RUN_DIR"
SUPERVISOR_ENV = "INFLUENCE_SUPERVISOR_PID"
HEADER_TIMEOUT_ENV = "INFLUENCE_HEADER_TIMEOUT_S"
FAILURE_FILE = "startup-failure.txt"
EXIT_CANNOT_START = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def serve_command(target: str, port: int, workers: int | None = None,
                  params: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "serving.launch", target, "--host", HOST, "--port", str(port)]
    return (command + (["--workers", str(workers)] if workers else [])
            + (["--params", str(params)] if params else []))


# --- the launcher --------------------------------------------------------------------------------


def preflight() -> str | None:
    """Why the service cannot start (one line naming the file or store), or None. The quick
    checks first (settings, the store, the bundle's files), then the model loaded as a worker
    loads it (imports included, ~5 s on a quiet machine)."""
    from pydantic import ValidationError

    from serving.settings import ServingSettings

    try:
        settings = ServingSettings()
    except ValidationError as error:
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
    if settings.bundle_dir is None:
        from training.registry import RegistryError, check_store
        from training.tracking import TrackingSettings

        source = "registry champion"
        try:
            check_store(TrackingSettings().tracking_uri)
        except RegistryError as error:
            return f"model ({source}): {error}"
    else:
        source = f"bundle folder {settings.bundle_dir}"
        # training.bundle's file names (importing it costs seconds: the model check below does)
        missing = [f for f in ("bundle.json", "model.txt", "calibrator.json")
                   if not (settings.bundle_dir / f).is_file()]
        if missing:
            return f"model ({source}): missing {', '.join(missing)}"
    from serving.scorer import load_scorer

    try:
        load_scorer(settings.model_copy(update={"compiled_trees": False}))
    except Exception as error:  # noqa: BLE001 - reported, then the launcher exits
        return f"model ({source}): {type(error).__name__}: {error}"
    return None


def _fail(message: str) -> None:
    print(f"influence serve: cannot start: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_CANNOT_START)


def _private_supervisor(run_dir: Path) -> None:
    """Make BentoML's circus arbiter listen on Unix sockets in `run_dir` (mode 0700) instead of
    two loopback TCP ports. BentoML looks the factory up at each start; if it ever moves, this
    fails here rather than silently serving with an open supervisor."""
    from bentoml._internal.utils import circus

    if not callable(getattr(circus, "create_standalone_arbiter", None)):
        raise RuntimeError("bentoml's create_standalone_arbiter moved: review serving.launch")  # noqa: TRY004

    def create_standalone_arbiter(watchers, *, threaded: bool = False, **kwargs):
        arbiter = circus.ThreadedArbiter if threaded else circus.Arbiter
        return arbiter(
            watchers,
            endpoint=f"ipc://{run_dir / 'control'}",
            pubsub_endpoint=f"ipc://{run_dir / 'events'}",
            check_delay=kwargs.pop("check_delay", 10),
            **kwargs,
        )

    circus.create_standalone_arbiter = create_standalone_arbiter


def serve(target: str, host: str, port: int, workers: int, keep_alive: int) -> int:
    """Run the server in this process until it stops; the exit status."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    run_dir = Path(tempfile.mkdtemp(prefix="influence-serve-"))  # mode 0700
    try:
        os.environ[RUN_DIR_ENV] = str(run_dir)
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
        _private_supervisor(run_dir)
        BentoMLContainer.prometheus_multiproc_dir.set(str(run_dir / "prometheus"))
        from _bentoml_impl.loader import load
        from _bentoml_impl.server import serving

        working_dir = os.getcwd()
        if sys.path[0] != working_dir:
            sys.path.insert(0, working_dir)
        service = load(target, working_dir)
        service.config["workers"] = workers
        service.inject_config()
        serving.serve_http(target, working_dir=working_dir, host=host, port=port,
                           timeout_keep_alive=keep_alive)
        failure = run_dir / FAILURE_FILE
        if failure.exists():
            print(f"influence serve: stopped: {failure.read_text().strip()}", file=sys.stderr,
                  flush=True)
            return EXIT_CANNOT_START
        return 0
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def stop_supervisor(message: str) -> None:
    """Called by a worker that cannot start: record why and stop the supervisor that launched
    it (only when that supervisor is this launcher and is the worker's parent: a service built
    in a test process has none)."""
    run_dir, supervisor = os.environ.get(RUN_DIR_ENV), os.environ.get(SUPERVISOR_ENV)
    if not run_dir or not supervisor or not supervisor.isdigit():
        return
    if os.getppid() != int(supervisor):
        return
    try:
        (Path(run_dir) / FAILURE_FILE).write_text(message + "\n")
    except OSError:
        pass
    os.kill(int(supervisor), signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> None:
    from serving.settings import serve_params

    parser = argparse.ArgumentParser(prog="python -m serving.launch", description=__doc__.split("\n")[0])
    parser.add_argument("target", nargs="?", default=SERVICE)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=None, help="default: params.yaml serve.workers")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--no-preflight", dest="preflight", action="store_false",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    params = serve_params(args.params)
    workers = args.workers or params.workers
    if workers < 1:
        _fail(f"--workers must be at least 1, got {workers}")
    if args.preflight and args.target == SERVICE:
        problem = preflight()
        if problem:
            _fail(problem)
        # start afresh: the supervisor should not hold the model this check loaded
        os.execv(sys.executable, [sys.executable, "-m", "serving.launch",
                                  *(argv if argv is not None else sys.argv[1:]), "--no-preflight"])
    os.environ[HEADER_TIMEOUT_ENV] = str(params.header_timeout_seconds)
    raise SystemExit(serve(args.target, args.host, args.port, workers, params.keep_alive_seconds))


# --- a real server for tests and benchmarks ------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def wait_ready(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}; log:\n{_tail(log)}")
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"server at {url} not ready after {timeout:.0f} s; log:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to the server's process group (the supervisor stops its workers), SIGKILL after
    `grace` s; then SIGKILL, by PID, to any of its workers still alive (circus puts each worker in
    a process group of its own, so a killed supervisor would leave them behind)."""
    if process.poll() is not None:
        return
    try:
        workers = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
    except ProcessLookupError:
        pass
    _, alive = psutil.wait_procs(workers, timeout=grace)
    for worker in alive:
        try:
            worker.kill()
        except psutil.NoSuchProcess:
            pass


def start_server(target: str, log: Path, env: Mapping[str, str | None] | None = None,
                 port: int | None = None, cwd: Path | None = None, workers: int | None = None,
                 params: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`python -m serving.launch <target>` on a free loopback port, in its own session; not
    waited for (see `running_server`). `env` adds to this process's environment; a None value
    removes the variable."""
    port = port or free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    merged = {**os.environ, **QUIET_ENV, **(env or {})}
    with log.open("w") as out:
        process = subprocess.Popen(
            serve_command(target, port, workers, params),
            env={k: v for k, v in merged.items() if v is not None},
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://{HOST}:{port}"


@contextmanager
def running_server(
    target: str,
    log: Path,
    env: Mapping[str, str | None] | None = None,
    port: int | None = None,
    timeout: float = 120.0,
    cwd: Path | None = None,
    workers: int | None = None,
    params: Path | None = None,
) -> Iterator[Server]:
    """A real server (`start_server`), ready when entered, stopped on exit."""
    process, url = start_server(target, log, env, port, cwd, workers, params)
    try:
        wait_ready(url, process, timeout, log)
        yield Server(url, process, log)
    finally:
        stop(process)


if __name__ == "__main__":
    main()
