"""The API page: our own, loading nothing from another site. In process, the page and its Content
Security Policy; in a real headless Chromium (slow, skipped without one), the page renders the
document under that policy and every request it makes goes to the service."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from serving.apidoc import CONTENT_SECURITY_POLICY, TITLE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUIET_BROWSER = [  # no background traffic of the browser's own, so the log holds the page's
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-features=AutofillServerCommunication,OptimizationHints",
    "--virtual-time-budget=15000",
]


def test_the_page_is_ours_and_points_nowhere_else(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert f"<title>{TITLE}</title>" in response.text
    assert not re.search(r"(src|href)=\"(https?:)?//", response.text)
    assert "googletagmanager" not in response.text and "validatorUrl: null" in response.text
    for source in re.findall(r'(?:src|href)="\./([^"]+)"', response.text):
        assert client.get(f"/{source}").status_code == 200, source


def _page_requests(net_log: Path, origin: str) -> list[str]:
    """URLs the page asked for: every request it initiated (its files, the document, and
    whatever its scripts would add)."""
    log, _ = json.JSONDecoder().raw_decode(net_log.read_text())
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    starts = [e.get("params", {}) for e in log["events"]
              if names.get(e["type"]) == "URL_REQUEST_START_JOB"]
    return [p["url"] for p in starts if "url" in p and p.get("initiator") == origin]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (CI installs it)")
def test_the_page_renders_in_a_browser_loading_only_from_the_service(real_server, tmp_path):
    net_log = tmp_path / "net.json"
    ran = subprocess.run(
        [CHROMIUM, *QUIET_BROWSER, f"--user-data-dir={tmp_path / 'profile'}",
         f"--log-net-log={net_log}", "--dump-dom", f"{real_server.url}/"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert re.search(rf'<h2 class="title">{TITLE}', ran.stdout), "Swagger UI did not render"
    assert "score_batch" in ran.stdout  # the operations of the document are listed
    requests = _page_requests(net_log, real_server.url)
    assert f"{real_server.url}/docs.json" in requests
    assert [url for url in requests if not url.startswith(real_server.url + "/")] == []
