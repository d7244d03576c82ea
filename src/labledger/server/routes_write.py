"""Write routes of the HTTP API (``/api/v1``): runs, batches, heartbeats, blobs, reaping.

Every route is a thin call into the store (``SqlStore``); the wire format of a batch is
defined in :mod:`labledger.store._wire`, shared with the client. Requests may be
gzip-compressed (``Content-Encoding: gzip``). ``install(app)`` adds the routes, the
gzip request decoder and the background reaper that marks runs ``crashed`` when their
heartbeats stop for longer than the app's heartbeat timeout (default 5 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._exceptions import AuthError
from ..artifacts._blobstore import is_sha256
from ..store import Store
from ..store._wire import MAX_BODY_BYTES, batch_from_wire
from ._json import BINARY_BODY, LedgerJSONResponse
from .auth import (
    Principal,
    get_store,
    principal,
    require_owner,
    run_project,
    writer,
)
from .errors import ApiError, error_body

__all__ = ["install", "router"]

log = logging.getLogger("labledger.server")

router = APIRouter(prefix="/api/v1", default_response_class=LedgerJSONResponse, tags=["write"])

_INT64 = 2**63 - 1
_INT32 = 2**31 - 1
_ID = r"^[0-9a-f]{32}$"
_NOT_NULL = ("status", "name", "config", "summary", "tags", "env", "datasets")


class RunCreate(BaseModel):
    """A new run (the fields of ``labledger show --json`` that exist at start)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=_ID)
    project: str = Field(min_length=1, max_length=250, pattern=r"^[^\x00-\x1f]+$")
    name: str = Field(min_length=1, max_length=250, pattern=r"^[^\x00]+$")
    status: Literal["running", "finished", "failed", "crashed", "killed"] = "running"
    created_at: float | None = None
    ended_at: float | None = None
    heartbeat_at: float | None = None
    host: str | None = Field(default=None, max_length=250)
    pid: int | None = Field(default=None, ge=0, le=_INT32)
    pid_start: str | None = Field(default=None, max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    notes: str | None = None
    seed: int | None = Field(default=None, ge=-_INT64 - 1, le=_INT64)
    env: dict[str, Any] = Field(default_factory=dict)
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    parent_run_id: str | None = Field(default=None, max_length=32)


class RunUpdate(BaseModel):
    """Run fields a batch may set (``env`` merges key by key)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["running", "finished", "failed", "crashed", "killed"] | None = None
    ended_at: float | None = None
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    tags: list[str] | None = None
    notes: str | None = None
    seed: int | None = Field(default=None, ge=-_INT64 - 1, le=_INT64)
    env: dict[str, Any] | None = None
    datasets: list[dict[str, Any]] | None = None
    exit_code: int | None = Field(default=None, ge=-_INT32 - 1, le=_INT32)
    error: str | None = None
    parent_run_id: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, min_length=1, max_length=250)
    heartbeat_at: float | None = None


class Series(BaseModel):
    """One metric series of a batch: base64 of little-endian int64 steps, float64 values and timestamps."""

    steps: str
    values: str
    timestamps: str


class BatchBody(BaseModel):
    """Many points of many keys plus run updates, applied atomically and at most once (``id``)."""

    id: str = Field(pattern=r"^[0-9A-Za-z_-]{1,64}$", description="idempotency key")
    heartbeat: float | None = None
    run_update: RunUpdate = Field(default_factory=lambda: RunUpdate())
    metrics: dict[str, Series] = Field(default_factory=dict)


@router.post("/runs", status_code=201, summary="Create a run (idempotent on its id)")
def create_run(
    body: RunCreate,
    request: Request,
    store: Store = Depends(get_store),
    who: Principal = Depends(writer),
) -> Any:
    who.require("write", body.project)
    record = {
        k: v for k, v in body.model_dump().items() if v is not None
    }  # absent = the store's default
    record["author"] = who.user  # the token's user, never what the client says
    from .._values import decode_json

    for f in ("config", "summary", "env"):
        record[f] = decode_json(record[f])
    try:
        store.create_run(record)
    except sa.exc.IntegrityError:
        # a retried create (the first answer was lost): fine when it is the same run
        _, project = run_project(request, body.id)
        if project != body.project:
            raise ApiError(
                409, f"run {body.id} exists in another project", details={"project": project}
            ) from None
        return LedgerJSONResponse({"id": body.id, "created": False}, status_code=200)
    return {"id": body.id, "created": True}


@router.post(
    "/runs/{run_id}/batches",
    summary="Write one batch of points and run updates (idempotent on batch id)",
)
def write_batch(
    run_id: str,
    body: BatchBody,
    request: Request,
    store: Store = Depends(get_store),
    who: Principal = Depends(writer),
) -> Any:
    run_id = require_owner(request, run_id)
    update = body.run_update.model_dump(exclude_unset=True)
    for f in _NOT_NULL:  # null for a required field means "leave it"
        if f in update and update[f] is None:
            del update[f]
    wire = {
        "id": body.id,
        "heartbeat": body.heartbeat,
        "run_update": update,
        "metrics": {k: v.model_dump() for k, v in body.metrics.items()},
    }
    batch = batch_from_wire(run_id, wire)
    applied = store.write_batch(batch, actor=who.user)  # type: ignore[call-arg]
    return {"applied": applied, "points": batch.point_count()}


@router.post("/runs/{ref}/heartbeat", summary="Record that the run's writer is alive")
def heartbeat(
    ref: str, request: Request, store: Store = Depends(get_store), who: Principal = Depends(writer)
) -> Any:
    import time

    from ..store import Batch

    run_id = require_owner(request, ref)
    now = time.time()
    store.write_batch(Batch(run_id=run_id, heartbeat=now))
    return {"run_id": run_id, "heartbeat_at": now}


@router.put(
    "/blobs",
    summary="Store small content-addressed bytes (patches, snapshots)",
    openapi_extra=BINARY_BODY,
)
async def put_blob(request: Request, store: Store = Depends(get_store)) -> Any:
    who = principal(request)
    if not any(who.can("write", p) for p in who.roles):
        raise AuthError(
            f"user {who.user!r} needs the write role on some project to store blobs", 403
        )
    data = await request.body()
    if len(data) > MAX_BODY_BYTES:
        raise ApiError(
            413, f"blobs are limited to {MAX_BODY_BYTES} bytes; use artifacts for large files"
        )
    from starlette.concurrency import run_in_threadpool

    sha = await run_in_threadpool(store.put_blob, data)
    return {"sha256": sha, "size": len(data)}


@router.get(
    "/blobs/{sha256}",
    summary="Bytes stored under a sha256",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_blob(sha256: str, request: Request, store: Store = Depends(get_store)) -> Response:
    who = principal(request)
    if not any(who.can("read", p) for p in who.roles):
        raise AuthError(f"user {who.user!r} needs the read role on some project to read blobs", 403)
    if not is_sha256(sha256):
        raise ApiError(400, "not a sha256 digest", details={"sha256": sha256[:80]})
    return Response(store.get_blob(sha256), media_type="application/octet-stream")


@router.get("/whoami", summary="The calling user and their roles", tags=["auth"])
def whoami(request: Request) -> Any:
    who = principal(request)
    return {"user": who.user, "roles": who.roles}


@router.post(
    "/admin/reap",
    summary="Mark runs whose heartbeats stopped as crashed (also runs in the background)",
    tags=["admin"],
)
def reap(request: Request, store: Store = Depends(get_store)) -> Any:
    who = principal(request)
    who.require("admin", "*")
    return {"crashed": store.reap_stale_runs(request.app.state.heartbeat_timeout)}


class GzipRequestMiddleware:
    """Decode request bodies sent with ``Content-Encoding: gzip`` (bounded size)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if headers.get(b"content-encoding", b"").lower() != b"gzip":
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = d.decompress(b"".join(chunks), MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES or d.unconsumed_tail:
                raise ValueError("too large")
        except (zlib.error, ValueError) as exc:
            status = 413 if str(exc) == "too large" else 400
            resp = JSONResponse(
                error_body(
                    "too_large" if status == 413 else "bad_request",
                    f"could not decode the gzip body: {exc}",
                ),
                status_code=status,
            )
            await resp(scope, receive, send)
            return
        new_headers = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")
        ]
        new_headers.append((b"content-length", str(len(body)).encode()))
        scope = dict(scope, headers=new_headers)
        sent = False

        async def receive2() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, receive2, send)


def _reap_interval(timeout: float | None) -> float:
    from ..store.sql import DEFAULT_HEARTBEAT_TIMEOUT

    t = DEFAULT_HEARTBEAT_TIMEOUT if timeout is None else timeout
    return max(0.2, min(30.0, t / 4))


def install(app: FastAPI) -> None:
    """Add the write routes, gzip request decoding, DB-error mapping and the background reaper."""
    app.include_router(router)
    app.add_middleware(GzipRequestMiddleware)

    @app.exception_handler(sa.exc.DataError)
    async def _data_error(request: Request, exc: sa.exc.DataError) -> JSONResponse:
        return JSONResponse(
            error_body(
                "bad_request",
                "the database rejected a value in the request",
                {"reason": str(exc.orig).splitlines()[0][:200]},
            ),
            status_code=400,
        )

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            task = asyncio.create_task(_reaper(a))
            try:
                yield state
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan


async def _reaper(app: FastAPI) -> None:
    from starlette.concurrency import run_in_threadpool

    while True:
        await asyncio.sleep(_reap_interval(app.state.heartbeat_timeout))
        store = getattr(app.state, "store", None)
        if store is None:
            continue
        try:
            crashed = await run_in_threadpool(store.reap_stale_runs, app.state.heartbeat_timeout)
            if crashed:
                log.info(
                    "marked %d run(s) crashed: %s", len(crashed), ", ".join(c[:8] for c in crashed)
                )
        except Exception:
            log.warning("reaping stale runs failed", exc_info=True)
