"""The interactive API docs (``/docs``) work offline: Swagger UI is vendored, every asset
is served by labledger itself, and the dashboard's strict Content-Security-Policy applies."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from _uihelpers import ROOT, PageProbe, UiServer, sub_env

from labledger.server.ui import CONTENT_SECURITY_POLICY

VENDOR = ROOT / "src" / "labledger" / "server" / "static" / "vendor" / "swagger-ui"


def _refs(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html)


def test_docs_page_references_only_local_urls(ui_server: UiServer) -> None:
    resp = httpx.get(ui_server.url + "/docs")
    assert resp.status_code == 200
    assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    html = resp.text
    refs = _refs(html)
    assert len(refs) >= 3  # the css, the bundle, the start-up script
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        got = httpx.get(ui_server.url + ref)
        assert got.status_code == 200, ref
    assert "cdn" not in html.lower() and "http://" not in html and "https://" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # no inline script
    bundle = next(r for r in refs if r.endswith("swagger-ui-bundle.js"))
    served = httpx.get(ui_server.url + bundle).content
    assert served == (VENDOR / "swagger-ui-bundle.js").read_bytes()
    # FastAPI's CDN-backed pages are gone rather than exempt from the policy
    assert httpx.get(ui_server.url + "/redoc").status_code == 404
    assert httpx.get(ui_server.url + "/openapi.json").json()["info"]["title"] == "labledger"


def test_docs_page_without_the_dashboard_keeps_its_policy(tmp_path: Path) -> None:
    """``labledger server --no-ui`` still serves /docs and its vendored assets."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"sqlite:///{tmp_path / 'l.db'}"
    cmd = [sys.executable, "-m", "labledger.cli", "server", "--backend-uri", uri]
    proc = subprocess.Popen(
        [*cmd, "--no-ui", "--port", str(port), "--log-level", "warning"],
        env=sub_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/healthz").raise_for_status()
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        resp = httpx.get(base + "/docs")
        assert resp.status_code == 200
        assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        refs = _refs(resp.text)
        assert refs
        for ref in refs:
            assert httpx.get(base + ref).status_code == 200, ref
        assert httpx.get(base + "/static/app/main.js").status_code == 404  # no dashboard
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_swagger_ui_renders_operations_offline(probe: PageProbe, ui_server: UiServer) -> None:
    requests: list[str] = []
    probe.page.on("request", lambda r: requests.append(r.url))
    page = probe.page
    page.goto(ui_server.url + "/docs")
    page.wait_for_selector(".opblock .opblock-summary-path", timeout=20_000)
    paths = page.locator(".opblock .opblock-summary-path").all_text_contents()
    assert len(paths) >= 10
    assert any(p.replace("\u200b", "") == "/api/v1/runs" for p in paths), paths
    assert page.locator(".information-container .title", has_text="labledger").count() == 1
    # expanding an operation works (the bundle's React app is alive under the strict CSP)
    page.locator(".opblock-summary", has_text="/healthz").first.click()
    page.wait_for_selector(".opblock.is-open")
    probe.screenshot("api-docs")
    server = urlsplit(ui_server.url)
    assert requests, "no request recorded"
    for url in requests:
        parts = urlsplit(url)
        assert parts.scheme in ("http", "data"), url
        if parts.scheme == "http":
            assert (parts.hostname, parts.port) == (server.hostname, server.port), url
    assert any(u.endswith("/openapi.json") for u in requests)
