"""No request can stall or bloat the service: the session's real server (`real_server`, loopback),
bounded in requests and time.

- stall: hostile bodies (100,000 unknown keys, deep nesting, a huge array, a body over the limit)
  do not delay a concurrent client's requests by more than 100 ms;
- cardinality: 5,000 unique user ids leave `/metrics` under 200 KB, listing no id, and the
  worker's RSS within 20 MB;
- a client error is one log line, at INFO, without a traceback;
- BentoML's supervisor listens on no TCP port (only the service's port is open);
- a connection that sends no request head, or one a byte at a time, is closed after the header
  timeout; an idle keep-alive connection after the keep-alive timeout.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from typing import Self

import httpx
import psutil
import pytest
from servingkit import HEADER_TIMEOUT_S

from serving.samples import EXAMPLE

JSON = {"content-type": "application/json"}
HOSTILE = {
    "100,000 unknown keys": json.dumps({"snapshot": {"networks": {"twitter": {
        "window_days": 30, "received": {f"k{i}": 1 for i in range(100_000)}}}}}).encode(),
    "nested 5,000 deep": b'{"snapshot": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "an array of 500,000 items": json.dumps({"snapshots": [0] * 500_000}).encode(),
    "3,000 keys in one snapshot": json.dumps({"snapshots": [{"networks": {
        "twitter": [{f"k{i}": 1 for i in range(30)} for _ in range(100)]}}]}).encode(),
}


def _worker(server) -> psutil.Process:
    children = psutil.Process(server.pid).children(recursive=True)
    return max(children, key=lambda c: c.memory_info().rss)


class Prober:
    """Sends /score every 10 ms on its own connection and records each latency."""

    def __init__(self, url: str) -> None:
        self.url, self.latencies, self.stop = url, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                assert client.post("/score", json={"snapshot": EXAMPLE, "explain": False}).status_code == 200
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.01)

    def __enter__(self) -> Self:
        self.thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *_) -> None:
        time.sleep(0.3)
        self.stop.set()
        self.thread.join(30)


def test_hostile_bodies_do_not_stall_other_requests(real_server):
    with Prober(real_server.url) as quiet:
        time.sleep(2)
    usual = sorted(quiet.latencies)[int(len(quiet.latencies) * 0.99)]
    with httpx.Client(base_url=real_server.url, timeout=60) as client:
        for name, body in HOSTILE.items():
            with Prober(real_server.url) as probe:
                started = time.perf_counter()
                response = client.post("/score_batch" if b"snapshots" in body else "/score",
                                       content=body, headers=JSON)
                took = time.perf_counter() - started
            assert response.status_code == 400, (name, response.text[:300])
            delay = max(probe.latencies) - usual
            print(f"{name}: answered 400 in {took * 1e3:.0f} ms; concurrent /score worst "
                  f"{max(probe.latencies) * 1e3:.1f} ms (usual p99 {usual * 1e3:.1f} ms)")
            assert delay < 0.100, f"{name} delayed a concurrent request by {delay * 1e3:.0f} ms"


def _unique_id_request(client: httpx.Client, i: int, user: str) -> httpx.Response:
    """A request on a path holding a new id, answered without reading the history store (each
    lookup opens it, ~20 ms): a refused `days` (400), a wrong method (405), a mistyped route
    (404). Each used to add its own metric series."""
    kind = i % 3
    if kind == 0:
        return client.get(f"/users/{user}/history", params={"days": 0})
    if kind == 1:
        return client.post(f"/users/{user}/score", json={})
    return client.get(f"/users/{user}/scores")


def test_unique_ids_do_not_grow_metrics_or_memory(real_server):
    worker = _worker(real_server)
    with httpx.Client(base_url=real_server.url, timeout=30) as client:
        for i in range(300):  # warm-up: every route and status, lookups of the store included
            _unique_id_request(client, i, uuid.uuid4().hex)
        for _ in range(20):
            client.get(f"/users/{uuid.uuid4().hex}/score")
        before = worker.memory_info().rss
        ids = [uuid.uuid4().hex for _ in range(5000)]
        for i, user in enumerate(ids):
            assert _unique_id_request(client, i, user).status_code < 500
        grown = (worker.memory_info().rss - before) / 2**20
        started = time.perf_counter()
        response = client.get("/metrics")
        took = time.perf_counter() - started
    metrics = response.text
    print(f"/metrics {len(metrics) / 1024:.1f} KB in {took * 1e3:.0f} ms after 5,000 ids; "
          f"worker RSS {grown:+.1f} MB")
    assert response.status_code == 200, metrics[:300]
    assert len(metrics.encode()) < 200 * 1024
    assert not [user for user in ids if user in metrics]
    assert 'endpoint="/users/{user_id}/history"' in metrics
    assert 'endpoint="/{unmatched}"' in metrics
    assert grown < 20


def test_a_client_error_is_one_info_line_without_traceback(real_server):
    marker = f"m{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=real_server.url, timeout=30) as client:
        bad = {"snapshot": {"networks": {"twitter": {"window_days": 30, marker: 1}}}}
        assert client.post("/score", json=bad).status_code == 400
        assert client.post("/score", json={"snapshot": EXAMPLE}).status_code == 200
    time.sleep(0.5)
    log = real_server.log.read_text()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "client error on /score" in line]
    assert lines and all("[INFO]" in line for line in lines)
    assert marker not in log  # the request's content is not written out


def test_the_supervisor_listens_on_no_port(real_server):
    port = int(real_server.url.rsplit(":", 1)[1])
    processes = [psutil.Process(real_server.pid), *psutil.Process(real_server.pid).children(True)]
    listening = {(c.laddr.ip, c.laddr.port) for p in processes
                 for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    assert listening == {("127.0.0.1", port)}


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closes `sock` (None: still open after `seconds`)."""
    sock.settimeout(seconds)
    started = time.monotonic()
    try:
        while sock.recv(1024):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


@pytest.mark.parametrize("sent", [b"", b"POST /score HTTP/1.1\r\nHost: x\r\n"])
def test_a_connection_without_a_whole_head_is_closed(real_server, sent):
    host, port = real_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(sent)
        closed = _closed_within(sock, HEADER_TIMEOUT_S + 5)
    assert closed is not None and closed < HEADER_TIMEOUT_S + 2


def test_a_slow_head_is_closed_even_while_bytes_trickle_in(real_server):
    host, port = real_server.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port))) as sock:
        try:
            for byte in b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                sock.sendall(bytes([byte]))
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 3


def test_keep_alive_requests_still_work_and_idle_ones_are_closed(real_server):
    with httpx.Client(base_url=real_server.url, timeout=10) as client:
        for _ in range(3):
            assert client.get("/livez").status_code == 200
            time.sleep(0.5)
    host, port = real_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200" in sock.recv(1024)
        closed = _closed_within(sock, 10)
    assert closed is not None and closed < 5
