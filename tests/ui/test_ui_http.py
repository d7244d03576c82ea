"""The dashboard's HTTP side: security headers, UI endpoints, downloads, ``labledger ui``."""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from _uihelpers import ARTIFACT_BYTES, PATCH_MARKER, ROOT, XSS_NAME, UiServer, start_ui, sub_env

from labledger.server.ui import CONTENT_SECURITY_POLICY, safe_content_disposition


def _run_id(server: UiServer, name: str) -> str:
    runs = httpx.get(
        f"{server.url}/api/v1/runs", params={"project": "vision", "limit": 100}
    ).json()["runs"]
    return next(r["id"] for r in runs if r["name"] == name)


def test_pages_and_api_carry_security_headers(ui_server: UiServer) -> None:
    for path in ("/", "/login", "/static/app/main.js", "/api/v1/projects"):
        resp = httpx.get(ui_server.url + path)
        assert resp.status_code == 200, path
        csp = resp.headers["content-security-policy"]
        assert csp == CONTENT_SECURITY_POLICY
        assert (
            "script-src 'self'" in csp
            and "unsafe-inline" not in csp
            and "frame-ancestors 'none'" in csp
        )
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "no-referrer"
    page = httpx.get(ui_server.url + "/").text
    # no inline script and nothing from another origin
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert "http://" not in page and "https://" not in page and "//cdn" not in page


def test_series_endpoint_downsamples_and_keeps_extremes(ui_server: UiServer) -> None:
    rid = _run_id(ui_server, "run-0")
    body = httpx.get(
        f"{ui_server.url}/api/v1/series",
        params=[("run", rid), ("key", "loss"), ("key", "acc"), ("max_points", "20")],
    ).json()
    by_key = {s["key"]: s for s in body["series"]}
    assert set(by_key) == {"loss", "acc"}
    loss = by_key["loss"]
    assert loss["total"] == 200 and len(loss["steps"]) <= 20
    full = httpx.get(f"{ui_server.url}/api/v1/runs/{rid}/history", params={"key": "loss"}).json()
    assert max(loss["values"]) == max(full["values"]) and min(loss["values"]) == min(full["values"])
    assert loss["elapsed"][0] == 0 and len(loss["elapsed"]) == len(loss["steps"])


def test_series_endpoint_refuses_too_many_series(ui_server: UiServer) -> None:
    rid = _run_id(ui_server, "run-0")
    params = [("run", rid)] + [("key", f"k{i}") for i in range(65)]
    resp = httpx.get(f"{ui_server.url}/api/v1/series", params=params)
    assert resp.status_code == 400
    assert set(resp.json()) == {"code", "message", "details"}


def test_keys_lists_config_and_summary_keys(ui_server: UiServer) -> None:
    body = httpx.get(f"{ui_server.url}/api/v1/keys", params={"project": "vision"}).json()
    assert {"lr", "optimizer", "model.depth", "batch_size"} <= set(body["config"])
    assert {"val_acc", "loss", "acc"} <= set(body["summary"])
    assert "system/cpu_percent" in body["metrics"]


def test_patch_is_served_as_text_and_as_a_safe_download(ui_server: UiServer) -> None:
    rid = _run_id(ui_server, "run-1")
    body = httpx.get(f"{ui_server.url}/api/v1/runs/{rid}/patch").json()
    assert PATCH_MARKER in body["text"] and body["truncated"] is False
    assert hashlib.sha256(body["text"].encode()).hexdigest() == body["sha256"]
    resp = httpx.get(f"{ui_server.url}/api/v1/runs/{rid}/patch/download")
    assert resp.status_code == 200
    assert resp.headers["content-disposition"].startswith(
        f'attachment; filename="labledger-{rid[:12]}.patch"'
    )
    assert resp.headers["content-type"].startswith("text/x-diff")
    assert PATCH_MARKER.encode() in resp.content


def test_patch_of_unknown_run_is_404_in_the_error_shape(ui_server: UiServer) -> None:
    resp = httpx.get(f"{ui_server.url}/api/v1/runs/ffffffffffff/patch")
    assert resp.status_code == 404
    assert resp.json()["code"] == "not_found"


def test_artifact_file_download_is_an_attachment_with_its_sha256(ui_server: UiServer) -> None:
    run = httpx.get(f"{ui_server.url}/api/v1/runs/{_run_id(ui_server, 'run-2')}").json()
    [art] = run["artifacts"]
    resp = httpx.get(f"{ui_server.url}/api/v1/runs/{run['id']}/artifacts/{art['id']}/file")
    assert resp.status_code == 200
    assert resp.content == ARTIFACT_BYTES
    assert resp.headers["content-disposition"].startswith('attachment; filename="weights.bin"')
    assert resp.headers["x-content-sha256"] == hashlib.sha256(ARTIFACT_BYTES).hexdigest()
    assert resp.headers["content-type"] == "application/octet-stream"
    # a version the run neither produced nor used is not served through it
    other = _run_id(ui_server, "run-1")
    assert (
        httpx.get(f"{ui_server.url}/api/v1/runs/{other}/artifacts/{art['id']}/file").status_code
        == 404
    )
    bad_path = httpx.get(
        f"{ui_server.url}/api/v1/runs/{run['id']}/artifacts/{art['id']}/file",
        params={"path": "../../etc/passwd"},
    )
    assert bad_path.status_code == 404


@pytest.mark.parametrize(
    ("name", "ascii_name"),
    [
        ("model.pt", "model.pt"),
        ('a"; filename="evil.sh', "a_filename_evil.sh"),
        ("../../etc/passwd", "passwd"),
        ("line\r\nSet-Cookie: x=1", "line_Set-Cookie_x_1"),
        ("模型.bin", "bin"),
        (XSS_NAME, "img_src_x_onerror_alert_1"),
    ],
)
def test_content_disposition_cannot_escape_its_header(name: str, ascii_name: str) -> None:
    value = safe_content_disposition(name)
    assert value.startswith(f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''")
    assert "\r" not in value and "\n" not in value and value.count('"') == 2


def test_login_sets_an_httponly_strict_cookie(ui_server: UiServer) -> None:
    resp = httpx.post(f"{ui_server.url}/login", data={"token": "tok-123"})
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("labledger_token=tok-123;")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    out = httpx.post(f"{ui_server.url}/logout")
    assert out.status_code == 303 and 'labledger_token=""' in out.headers["set-cookie"]


def test_ui_refuses_a_busy_port(ui_store: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "labledger.cli", "ui", "--store", ui_store, "--port", str(port)],
            env=sub_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_vendored_files_match_their_recorded_checksums() -> None:
    vendor = ROOT / "src" / "labledger" / "server" / "static" / "vendor"
    record = (vendor / "VENDORED.md").read_text()
    listed = re.findall(r"^([0-9a-f]{64})  ((?:uplot|swagger-ui)/\S+)$", record, flags=re.M)
    assert {p for _, p in listed} == {
        "uplot/uPlot.iife.min.js",
        "uplot/uPlot.min.css",
        "uplot/LICENSE",
        "swagger-ui/swagger-ui-bundle.js",
        "swagger-ui/swagger-ui.css",
        "swagger-ui/favicon-32x32.png",
        "swagger-ui/LICENSE",
        "swagger-ui/NOTICE",
        "swagger-ui/swagger-ui-bundle.js.LICENSE.txt",
    }
    for digest, rel in listed:
        assert hashlib.sha256(Path(vendor, rel).read_bytes()).hexdigest() == digest, rel
    # every vendored file is recorded (nothing unpinned slipped in)
    on_disk = {
        p.relative_to(vendor).as_posix()
        for p in vendor.rglob("*")
        if p.is_file() and p.name != "VENDORED.md"
    }
    assert on_disk == {p for _, p in listed}
    assert "v1.6.32" in (vendor / "uplot" / "uPlot.iife.min.js").read_text()[:100]
    assert "| Swagger UI (`swagger-ui-dist`) | 5.35.0 |" in record
    bundle = (vendor / "swagger-ui" / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    assert 'PACKAGE_VERSION:"5.35.0"' in bundle


PG_RUNS = """
import sys
import labledger

for i in range(6):
    with labledger.init("pg", name=f"pg-{i}", config={"lr": 10 ** -(i % 3 + 1), "depth": i}, store=sys.argv[1]) as run:
        for step in range(50):
            run.log({"loss": 1 / (step + 1 + i)}, step=step)
        run.summary["score"] = i * 0.1
"""


@pytest.mark.postgres
def test_ui_endpoints_on_postgresql(pg_uri: str, tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-c", PG_RUNS, pg_uri],
        cwd=tmp_path,
        env=sub_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    server = start_ui(pg_uri)
    try:
        base = f"{server.url}/api/v1"
        runs = httpx.get(f"{base}/runs", params={"project": "pg", "order_by": "name"}).json()[
            "runs"
        ]
        ids = [r["id"] for r in runs]
        assert len(ids) == 6
        cmp = httpx.get(f"{base}/compare", params=[("run", i) for i in ids[:3]]).json()["runs"]
        assert [r["name"] for r in cmp] == ["pg-0", "pg-1", "pg-2"]
        series = httpx.get(
            f"{base}/series", params=[("run", ids[0]), ("key", "loss"), ("max_points", "10")]
        ).json()
        [s] = series["series"]
        assert s["total"] == 50 and len(s["steps"]) <= 10 and max(s["values"]) == 1.0
        keys = httpx.get(f"{base}/keys", params={"project": "pg"}).json()
        assert keys["config"] == ["depth", "lr"] and "score" in keys["summary"]
        board = httpx.get(
            f"{base}/leaderboard",
            params={"project": "pg", "metric": "score", "max": "true", "top": 3},
        ).json()
        assert [r["name"] for r in board["runs"]] == ["pg-5", "pg-4", "pg-3"]
        imp = httpx.get(f"{base}/importance", params={"project": "pg", "metric": "score"}).json()
        assert {i["key"] for i in imp["importances"]} == {"depth", "lr"}
        assert imp["importances"][0]["key"] == "depth" and imp["n_runs"] == 6
    finally:
        server.stop()
