"""The web dashboard: pages, static files, UI-only JSON endpoints and security headers.

The dashboard is a small vanilla-JavaScript app (``static/app/*.js``) over the JSON API;
pages are one HTML shell with hash routes, so no data is ever rendered into HTML on the
server and the Content-Security-Policy forbids inline scripts. ``install(app)`` is called
by :func:`labledger.server.app.create_app` when ``ui=True``.

Endpoints added here (all read-only, all behind the ``reader`` dependency):

- ``GET /api/v1/series``: several metric series of one or more runs in one request,
  downsampled on the server keeping each bucket's extremes.
- ``GET /api/v1/compare``: several runs in one request (the compare page).
- ``GET /api/v1/keys``: config, summary and metric keys seen in recent runs (column chooser).
- ``GET /api/v1/runs/{ref}/patch`` and ``.../patch/download``: the captured git patch.
- ``GET /api/v1/runs/{ref}/artifacts/{version_id}/file``: a file of an artifact version
  the run produced or used, with a safe ``Content-Disposition``.
- ``GET /api/v1/runs/{ref}/repro``: reproduction verdicts (``labledger repro``).
- ``GET /api/v1/importance`` and ``GET /api/v1/leaderboard``: the analysis library's
  parameter importance and leaderboard, when it is installed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from .._values import flatten
from ..store import RunRecord, Store
from ._body import CheckedRoute
from ._json import LedgerJSONResponse, series_values
from .auth import Principal, get_store, reader
from .errors import ApiError

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "TOKEN_COOKIE",
    "SecurityHeadersMiddleware",
    "install",
    "safe_content_disposition",
]

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TOKEN_COOKIE = "labledger_token"

#: Applied to every response, the interactive API docs at ``/docs`` included (served
#: from vendored Swagger UI files with no inline script, see ``server/docs.py``).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
_DOCS_CSP = "frame-ancestors 'none'"

MAX_PATCH_DISPLAY = 2 * 1024 * 1024  # bytes of patch text sent to the page; the download is whole
MAX_SERIES_PER_REQUEST = 64
MAX_COMPARE_RUNS = 100

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SecurityHeadersMiddleware:
    """Pure ASGI middleware adding CSP, nosniff, Referrer-Policy and framing headers.

    Written against ASGI directly (not ``BaseHTTPMiddleware``) so streamed downloads and
    the latency of the JSON API are untouched.
    """

    def __init__(self, app: ASGIApp, docs_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = _DOCS_CSP if path in self.docs_paths else CONTENT_SECURITY_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in (
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_content_disposition(filename: str, *, inline: bool = False) -> str:
    """A Content-Disposition value that cannot break out of its header or name a path.

    The ASCII ``filename`` keeps only ``[A-Za-z0-9._-]`` (no quotes, slashes, CR/LF);
    the exact name travels percent-encoded in ``filename*`` (RFC 6266 / RFC 5987).
    """
    from urllib.parse import quote

    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    ascii_name = _UNSAFE_FILENAME.sub("_", base).strip("._") or "download"
    ascii_name = ascii_name[:150]
    encoded = quote(base, safe="")[:600] or ascii_name
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


def _run_id(request: Request, store: Store, ref: str) -> str:
    """The full id of run ``ref``, after checking the caller may read its project."""
    from . import auth

    check = getattr(auth, "require_run", None)
    if check is not None:
        return str(check(request, ref, "read"))
    return store.resolve_run_id(ref)


def _visible_runs(
    store: Store,
    who: Principal,
    *,
    project: str | None,
    filter: str | None,
    limit: int,
    order_by: list[str] | None = None,
) -> list[RunRecord]:
    """Runs matching ``project``/``filter`` that the caller may read (``reader`` checked ``project``)."""
    runs = store.list_runs(project=project, filter=filter, order_by=order_by, limit=limit)
    readable = getattr(who, "readable_projects", None)
    allowed = readable() if project is None and callable(readable) else None
    if allowed is not None:
        keep = set(allowed)
        runs = [r for r in runs if r["project"] in keep]
    return runs


router = APIRouter(
    prefix="/api/v1",
    default_response_class=LedgerJSONResponse,
    tags=["ui"],
    route_class=CheckedRoute,
)


class FastJSONResponse(Response):
    """JSON for payloads already made strict (series): skips the per-value NaN walk."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


def _json_values(values: np.ndarray) -> list[Any]:
    """Series values for JSON: non-finite ones as "NaN", "Infinity", "-Infinity" strings."""
    if bool(np.isfinite(values).all()):
        out: list[Any] = values.tolist()
        return out
    return series_values(values.tolist())


@router.get("/compare", summary="Several runs by id, prefix or name, in the order asked")
def compare_runs(
    request: Request,
    run: list[str] = Query(..., description="run ids, prefixes or names (repeatable)"),
    store: Store = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    if len(run) > MAX_COMPARE_RUNS:
        raise ApiError(400, f"at most {MAX_COMPARE_RUNS} runs at once", details={"runs": len(run)})
    runs: list[dict[str, Any]] = [dict(store.get_run(_run_id(request, store, ref))) for ref in run]
    # each run's newest reproduction verdict, for the compare page's provenance rows
    from ..repro import repro_fields

    verdicts = repro_fields(store, [r["id"] for r in runs])
    for r in runs:
        r["repro"] = verdicts[r["id"]]
    return {"runs": runs}


@router.get("/replicates", summary="Replicate sets (runs differing only in their seed)")
def replicates(
    request: Request,
    run: list[str] = Query([], description="run ids, prefixes or names (repeatable)"),
    filter: str | None = Query(None, max_length=4000, description="or: the runs matching this"),
    store: Store = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    """``{sets: [{set, runs, n, config}]}``: the named runs (or up to 1,000 runs matching
    ``filter``) grouped into replicate sets, in the order their first run appears;
    reproductions are left out of a filter's runs (they replay a seed, they add none)."""
    from ..analysis import replicate_sets
    from ..store import without_repro

    if len(run) > MAX_COMPARE_RUNS:
        raise ApiError(400, f"at most {MAX_COMPARE_RUNS} runs at once", details={"runs": len(run)})
    if run:
        runs = [store.get_run(_run_id(request, store, ref)) for ref in run]
    elif filter:
        runs = store.list_runs(filter=without_repro(filter), limit=1000)
    else:
        raise ApiError(400, "name runs (run=) or a filter", code="bad_request")
    return {
        "sets": [
            {"set": s.key, "runs": s.run_ids, "n": len(s.runs), "config": s.identity["config"]}
            for s in replicate_sets(runs)
        ]
    }


@router.get(
    "/series", summary="Several metric series of several runs, downsampled keeping extremes"
)
def series(
    request: Request,
    run: list[str] = Query(..., description="run ids or prefixes (repeatable)"),
    key: list[str] = Query(..., description="metric keys (repeatable)"),
    max_points: int = Query(1000, ge=2, le=100_000),
    store: Store = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    if len(run) * len(key) > MAX_SERIES_PER_REQUEST:
        raise ApiError(
            400,
            f"at most {MAX_SERIES_PER_REQUEST} series per request (runs x keys)",
            details={"runs": len(run), "keys": len(key)},
        )
    out = []
    for ref in run:
        run_id = _run_id(request, store, ref)
        for k in key:
            h = store.history(run_id, k, max_points=max_points)
            t0 = float(h.timestamps[0]) if len(h.timestamps) else None
            out.append(
                {
                    "run_id": run_id,
                    "key": k,
                    "total": h.total,
                    "steps": h.steps.tolist(),
                    "values": _json_values(h.values),
                    "t0": t0,
                    "elapsed": [] if t0 is None else np.round(h.timestamps - t0, 4).tolist(),
                }
            )
    return FastJSONResponse({"series": out})


@router.get("/keys", summary="Config, summary and metric keys seen in recent runs")
def keys(
    request: Request,
    project: str | None = Query(None, max_length=250),
    filter: str | None = Query(None, max_length=4000),
    sample: int = Query(500, ge=1, le=5000),
    store: Store = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    runs = _visible_runs(store, who, project=project, filter=filter, limit=sample)
    config: dict[str, set[str]] = {}  # key -> the distinct values seen (JSON text)
    summary: dict[str, set[str]] = {}
    present: dict[tuple[str, str], int] = {}  # (part, key) -> how many runs have it
    metrics: set[str] = set()
    for r in runs:
        for part, seen, values in (
            ("config", config, flatten(r.get("config") or {})),
            ("summary", summary, r.get("summary") or {}),
        ):
            for k, v in values.items():
                seen.setdefault(k, set()).add(_value_key(v))
                present[part, k] = present.get((part, k), 0) + 1
        metrics.update((r.get("metrics") or {}).keys())

    def varying(part: str, seen: dict[str, set[str]]) -> list[str]:
        # a key whose value differs between the sampled runs, or that some of them lack
        return sorted(
            k for k, vals in seen.items() if len(vals) > 1 or present[part, k] < len(runs)
        )

    return {
        "config": sorted(config),
        "summary": sorted(summary),
        "metrics": sorted(metrics),
        # the runs table shows these first by default: what tells the listed runs apart
        "varying": {"config": varying("config", config), "summary": varying("summary", summary)},
        "sampled": len(runs),
    }


def _value_key(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _patch_bytes(request: Request, store: Store, ref: str) -> tuple[str, str, bytes]:
    run = store.get_run(_run_id(request, store, ref))
    git = (run.get("env") or {}).get("git") or {}
    sha = git.get("diff_sha256")
    if not sha or not isinstance(sha, str):
        raise ApiError(404, "this run has no captured patch", code="not_found")
    return run["id"], sha, store.get_blob(sha)


@router.get("/runs/{ref}/patch", summary="The uncommitted changes captured with the run (text)")
def patch(
    ref: str, request: Request, store: Store = Depends(get_store), who: Principal = Depends(reader)
) -> Any:
    run_id, sha, data = _patch_bytes(request, store, ref)
    shown = data[:MAX_PATCH_DISPLAY]
    return {
        "run_id": run_id,
        "sha256": sha,
        "size": len(data),
        "truncated": len(data) > len(shown),
        "text": shown.decode("utf-8", errors="replace"),
    }


@router.get(
    "/runs/{ref}/patch/download", summary="Download the captured patch", response_class=Response
)
def patch_download(
    ref: str, request: Request, store: Store = Depends(get_store), who: Principal = Depends(reader)
) -> Response:
    run_id, sha, data = _patch_bytes(request, store, ref)
    return Response(
        data,
        media_type="text/x-diff; charset=utf-8",
        headers={
            "Content-Disposition": safe_content_disposition(f"labledger-{run_id[:12]}.patch"),
            "X-Content-SHA256": sha,
        },
    )


@router.get(
    "/runs/{ref}/artifacts/{version_id}/file",
    summary="Download one file of an artifact version the run produced or used",
    response_class=Response,
)
def artifact_file(
    ref: str,
    version_id: str,
    request: Request,
    path: str | None = Query(None, max_length=1024, description="file inside a directory artifact"),
    store: Store = Depends(get_store),
    who: Principal = Depends(reader),
) -> Response:
    from fastapi.responses import StreamingResponse

    from ..artifacts import reader_blob_store

    run = store.get_run(_run_id(request, store, ref))
    versions = [*(run.get("artifacts") or []), *(run.get("used_artifacts") or [])]
    version = next((v for v in versions if str(v.get("id")) == version_id), None)
    if version is None:
        raise ApiError(
            404, "this run neither produced nor used that artifact version", code="not_found"
        )
    files = version.get("files") or []
    if path is None and len(files) == 1:
        entry = files[0]
    else:
        entry = next((f for f in files if f.get("path") == path), None)
    if entry is None:
        raise ApiError(
            404,
            "no such file in this artifact version",
            code="not_found",
            details={"path": (path or "")[:200], "files": len(files)},
        )
    blobs = reader_blob_store(version, request.app.state.artifacts_uri, store.uri)
    stream = blobs.open(str(entry["sha256"]))

    def chunks() -> Any:
        with stream:
            while block := stream.read(1 << 20):
                yield block

    name = str(entry.get("path") or version.get("name") or "artifact")
    if version.get("metadata", {}).get("type") == "file" or len(files) == 1:
        name = name.rsplit("/", 1)[-1] or str(version.get("name") or "artifact")
    headers = {
        "Content-Disposition": safe_content_disposition(name),
        "X-Content-SHA256": str(entry["sha256"]),
    }
    if isinstance(entry.get("size"), int):
        headers["Content-Length"] = str(entry["size"])
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


@router.get("/runs/{ref}/repro", summary="Reproduction verdicts the run takes part in")
def repro(
    ref: str, request: Request, store: Store = Depends(get_store), who: Principal = Depends(reader)
) -> Any:
    run_id = _run_id(request, store, ref)
    try:
        from ..repro import repro_field
    except ImportError:  # labledger without the repro package
        return {"verdict": None, "role": None, "reproduction_of": None, "verdicts": []}
    return repro_field(store, run_id)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _analysis_scope(who: Principal, project: str | None) -> None:
    """Analysis over every project needs read access to every project."""
    readable = getattr(who, "readable_projects", None)
    if project is None and callable(readable) and readable() is not None:
        raise ApiError(
            400, "choose a project: your token cannot read every project", code="bad_request"
        )


@router.get("/importance", summary="Parameter importance of config keys for a metric")
def importance(
    metric: str = Query(..., min_length=1, max_length=250),
    project: str | None = Query(None, max_length=250),
    filter: str | None = Query(None, max_length=4000),
    include_repro: bool = Query(False, description='also reproductions (job_type "repro")'),
    store: Store = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    from . import _ui_analysis

    _analysis_scope(who, project)
    return _ui_analysis.importance(
        store, metric=metric, project=project, filter=filter, include_repro=include_repro
    )


@router.get("/leaderboard", summary="The best runs for a metric")
def leaderboard(
    metric: str = Query(..., min_length=1, max_length=250),
    max: bool = Query(False, description="higher is better (default: lower is better)"),
    top: int = Query(10, ge=1, le=1000),
    project: str | None = Query(None, max_length=250),
    filter: str | None = Query(None, max_length=4000),
    include_repro: bool = Query(False, description='also reproductions (job_type "repro")'),
    by: Literal["run", "config"] = Query(
        "run", description="config: one row per configuration (mean ± std over seeds)"
    ),
    store: Store = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    from . import _ui_analysis

    _analysis_scope(who, project)
    return _ui_analysis.leaderboard(
        store,
        by=by,
        metric=metric,
        maximize=max,
        top=top,
        project=project,
        filter=filter,
        include_repro=include_repro,
    )


def _token_valid(request: Request, token: str) -> bool:
    """Check ``token`` with the server's token registry when it has one (else accept it)."""
    from . import auth

    registry = getattr(auth, "registry", None)
    reg = registry(request) if callable(registry) else None
    if reg is None or not reg.auth_enabled():
        return True
    return reg.authenticate(token) is not None


def _page(name: str) -> bytes:
    html = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
    return html.replace("{{version}}", __version__).encode("utf-8")


_PAGE_HEADERS = {"Cache-Control": "no-store"}


def install(app: FastAPI) -> None:
    """Add the dashboard's pages, static files, JSON endpoints and security headers to ``app``."""
    index = _page("index.html")
    login_page = _page("login.html").replace(b"{{error}}", b"")
    login_failed = _page("login.html").replace(
        b"{{error}}",
        b'<p class="error-box" role="alert">That token is not valid (unknown or revoked).</p>',
    )
    # FastAPI's CDN-loaded docs pages are off (docs_url=None): no path is exempt from the policy
    docs = tuple(p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p)
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=docs)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    from .routes_registry import install_page

    install_page(app)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse(index, headers=_PAGE_HEADERS)

    @app.get("/login", include_in_schema=False)
    def login_form() -> HTMLResponse:
        return HTMLResponse(login_page, headers=_PAGE_HEADERS)

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: str = Form(..., min_length=1, max_length=4096)) -> Response:
        """Keep the token in an HttpOnly cookie (the server's auth accepts it like a Bearer token)."""
        token = token.strip()
        if not _token_valid(request, token):
            return HTMLResponse(login_failed, status_code=401, headers=_PAGE_HEADERS)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(
            TOKEN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            path="/",
            secure=request.url.scheme == "https",
            max_age=30 * 24 * 3600,
        )
        return resp

    @app.post("/logout", include_in_schema=False)
    def logout() -> Response:
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(
            (STATIC_DIR / "favicon.svg").read_bytes(),
            media_type="image/svg+xml",
            headers={"Cache-Control": "max-age=86400"},
        )
