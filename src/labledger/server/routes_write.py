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
import json
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._exceptions import AuthError, ValueRejectedError
from .._limits import (
    MAX_MEDIA_PER_STEP,
    MAX_METRIC_KEYS,
    MAX_NAME_LENGTH,
    MAX_NOTES_LENGTH,
    check_json,
    check_tags,
)
from ..artifacts import is_sha256
from ..store import (
    BATCH_MEDIA_TYPE,
    MAX_BODY_BYTES,
    REQUIREMENTS,
    Batch,
    RunStore,
    ServerStore,
    Store,
    batch_from_wire,
    split_binary_batch,
)
from ._body import CheckedRoute, JsonInt, JsonNumber
from ._json import BINARY_BODY, LedgerJSONResponse
from .auth import (
    Principal,
    admin,
    core,
    get_store,
    principal,
    reader,
    writer,
)
from .errors import ApiError, error_body

__all__ = ["install", "router"]

log = logging.getLogger("labledger.server")

router = APIRouter(
    prefix="/api/v1",
    default_response_class=LedgerJSONResponse,
    tags=["write"],
    route_class=CheckedRoute,
)

# JSON true/false is not a number ("heartbeat_at": false was stored as 0)
Num = JsonNumber
Int = JsonInt
_INT64 = 2**63 - 1
_INT32 = 2**31 - 1
_ID = r"^[0-9a-f]{32}$"
MAX_REPLAY = 5000  # items of one POST /replay
_NOT_NULL = ("status", "name", "config", "summary", "tags", "env", "datasets")


class _Limited(BaseModel):
    """The limits of ``labledger._limits`` (the same the client checks in ``init()``): 422 when over."""

    @field_validator("tags", check_fields=False)
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else check_tags(v)

    @field_validator("config", "summary", "env", "datasets", check_fields=False)
    @classmethod
    def _json(cls, v: Any, info: Any) -> Any:
        if v is not None:
            check_json(info.field_name, v)
        return v


class RunCreate(_Limited):
    """A new run (the fields of ``labledger show --json`` that exist at start)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=_ID)
    project: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00-\x1f]+$")
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00]+$")
    status: Literal["running", "finished", "failed", "crashed", "killed", "pruned"] = "running"
    created_at: Num | None = None
    ended_at: Num | None = None
    heartbeat_at: Num | None = None
    host: str | None = Field(default=None, max_length=250)
    pid: Int | None = Field(default=None, ge=0, le=_INT32)
    pid_start: str | None = Field(default=None, max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    notes: str | None = Field(default=None, max_length=MAX_NOTES_LENGTH)
    seed: Int | None = Field(default=None, ge=-_INT64 - 1, le=_INT64)
    env: dict[str, Any] = Field(default_factory=dict)
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    parent_run_id: str | None = Field(default=None, max_length=32)
    group: str | None = Field(default=None, max_length=250)
    job_type: str | None = Field(default=None, max_length=250)


class RunUpdate(_Limited):
    """Run fields a batch may set (``env`` merges key by key)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["running", "finished", "failed", "crashed", "killed", "pruned"] | None = None
    ended_at: Num | None = None
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    tags: list[str] | None = None
    notes: str | None = Field(default=None, max_length=MAX_NOTES_LENGTH)
    seed: Int | None = Field(default=None, ge=-_INT64 - 1, le=_INT64)
    env: dict[str, Any] | None = None
    datasets: list[dict[str, Any]] | None = None
    exit_code: Int | None = Field(default=None, ge=-_INT32 - 1, le=_INT32)
    error: str | None = None
    parent_run_id: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_LENGTH)
    heartbeat_at: Num | None = None


class Series(BaseModel):
    """One metric series of a batch: base64 of little-endian int64 steps, float64 values and timestamps."""

    steps: str
    values: str
    timestamps: str


class MediaBody(BaseModel):
    """One rich result of a batch: its place, kind, base64 bytes and metadata."""

    key: str = Field(min_length=1, max_length=250)
    step: Int = Field(ge=0, le=_INT64)
    seq: Int = Field(ge=0, lt=MAX_MEDIA_PER_STEP, description="position at (key, step)")
    kind: str = Field(max_length=16, description="image, table, confusion_matrix, curve, ...")
    data: str = Field(description="base64 of the stored bytes (PNG, JSON, UTF-8 text)")
    meta: dict[str, Any] = Field(default_factory=dict)
    caption: str | None = None
    ts: Num = 0.0


class BatchBody(BaseModel):
    """Many points of many keys plus run updates, applied atomically and at most once (``id``)."""

    id: str = Field(pattern=r"^[0-9A-Za-z_-]{1,64}$", description="idempotency key")
    heartbeat: Num | None = None
    run_update: RunUpdate = Field(default_factory=lambda: RunUpdate())
    metrics: dict[str, Series] = Field(default_factory=dict, max_length=MAX_METRIC_KEYS)
    media: list[MediaBody] = Field(default_factory=list)


@router.post("/runs", status_code=201, summary="Create a run (idempotent on its id)")
def create_run(
    body: RunCreate,
    request: Request,
    who: Principal = Depends(writer),
) -> Any:
    """The write core creates it: the author is the token's user, the policy is named
    (and applied at once to a run created finished)."""
    from .._values import decode_json

    record = {
        k: v for k, v in body.model_dump().items() if v is not None
    }  # absent = the store's default
    for f in ("config", "summary", "env"):
        record[f] = decode_json(record[f])
    answer = core(request).create_run(who.actor, record)
    if not answer["created"]:
        return LedgerJSONResponse(answer, status_code=200)
    return answer


def _to_batch(run_id: str, body: BatchBody) -> Batch:
    update = body.run_update.model_dump(exclude_unset=True)
    for f in _NOT_NULL:  # null for a required field means "leave it"
        if f in update and update[f] is None:
            del update[f]
    wire = {
        "id": body.id,
        "heartbeat": body.heartbeat,
        "run_update": update,
        "metrics": {k: v.model_dump() for k, v in body.metrics.items()},
        "media": [m.model_dump() for m in body.media],
    }
    return batch_from_wire(run_id, wire)


_BATCH_JSON = "application/json"


def _binary_body_error(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": message, "type": "value_error"}])


async def batch_body(run_id: str, request: Request) -> Batch:
    """The batch of a request, JSON (:class:`BatchBody`) or binary (``BATCH_MEDIA_TYPE``).

    Both forms are checked by the same model (the binary header is the JSON body less
    its arrays) and give the same :class:`~labledger.store.Batch`; malformed arrays or
    a malformed binary layout answer 400, a field out of its limits 422."""
    from pydantic import ValidationError

    kind = request.headers.get("content-type", _BATCH_JSON).split(";")[0].strip().lower()
    data = await request.body()
    if not data:
        raise _binary_body_error("a batch body is required")
    metrics: dict[str, tuple[Any, Any, Any]] | None = None
    if kind == BATCH_MEDIA_TYPE:
        raw, metrics = split_binary_batch(data, max_keys=MAX_METRIC_KEYS)
        raw["metrics"] = {}
    elif kind == _BATCH_JSON or kind.endswith("+json"):
        raw = await request.json()
    else:
        raise _binary_body_error(
            f"a batch is sent as {_BATCH_JSON} or {BATCH_MEDIA_TYPE}, not {kind!r}"
        )
    try:
        body = BatchBody.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None
    batch = _to_batch(run_id, body)
    if metrics is not None:
        batch.metrics = metrics
    return batch


_BATCH_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            _BATCH_JSON: {"schema": {"$ref": "#/components/schemas/BatchBody"}},
            BATCH_MEDIA_TYPE: {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": (
                        "b'LLB1', a uint32 header length, a JSON header (the JSON body "
                        "with metrics as [{key, n}]), zero padding to 8 bytes, then per "
                        "series n int64 steps, n float64 values, n float64 timestamps "
                        "(little-endian); see docs/server.md"
                    ),
                }
            },
        },
    }
}


@router.post(
    "/runs/{run_id}/batches",
    summary="Write one batch of points and run updates (idempotent on batch id)",
    openapi_extra=_BATCH_REQUEST,
)
def write_batch(
    run_id: str,
    request: Request,
    who: Principal = Depends(writer),
    batch: Batch = Depends(batch_body),
) -> Any:
    """JSON (base64 arrays) or the binary batch form (raw little-endian arrays, the
    HTTP client's choice); both go through the write core alike."""
    applied, policy = core(request).write_batch(who.actor, batch)
    answer: dict[str, Any] = {"applied": applied, "points": batch.point_count()}
    if policy:
        answer["policy"] = policy
    return answer


class ReplayItem(BaseModel):
    """One spooled write: a run creation (``body`` as for ``POST /runs``) or a batch of a run."""

    kind: Literal["run", "batch"]
    run_id: str | None = Field(default=None, max_length=250, description="for kind=batch")
    body: dict[str, Any]


class ReplayBody(BaseModel):
    """Many spooled writes, applied in order (each idempotent, as on its own route)."""

    requests: list[ReplayItem] = Field(max_length=MAX_REPLAY)


class ReplayResult(BaseModel):
    """The answer ``POST /runs`` or ``POST /runs/{id}/batches`` would have given to one item."""

    status: int
    body: dict[str, Any]


class ReplayAnswer(BaseModel):
    results: list[ReplayResult]


def _error_result(exc: Exception) -> tuple[int, dict[str, Any]] | None:
    """(status, error body) for an exception a route would have answered with; None: unexpected."""
    from pydantic import ValidationError

    from .._exceptions import (
        LabledgerError,
        NotFoundError,
        PolicyViolationError,
        RunIdTakenError,
        UsageError,
    )

    if isinstance(exc, PolicyViolationError):
        return 422, error_body("policy_violation", exc.message, {"missing": exc.missing})
    if isinstance(exc, RunIdTakenError):
        return 409, error_body("conflict", str(exc))
    if isinstance(exc, ApiError):
        return exc.status, error_body(exc.code, exc.message, exc.details)
    if isinstance(exc, AuthError):
        code = "unauthorized" if exc.status_code == 401 else "forbidden"
        return exc.status_code, error_body(code, str(exc))
    if isinstance(exc, ValidationError):
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return 422, error_body("invalid_request", "the request is not valid", {"errors": errors})
    if isinstance(exc, NotFoundError):
        return 404, error_body("not_found", str(exc))
    if isinstance(exc, ValueRejectedError):
        return 400, error_body(
            "bad_request", "the database rejected a value in the request", {"reason": exc.reason}
        )
    if isinstance(exc, (UsageError, LabledgerError)):
        return 400, error_body("bad_request", str(exc))
    return None


@router.post(
    "/replay",
    summary="Apply many spooled writes in order, several batches per transaction",
    response_model=ReplayAnswer,
)
def replay(
    body: ReplayBody,
    request: Request,
    store: Store = Depends(get_store),
    who: Principal = Depends(writer),
) -> Any:
    """What a client sends when it catches up after an outage (``labledger sync`` too).

    Results come in request order. Runs of consecutive batches are written in one
    transaction (one commit for many batches); when that transaction fails they are
    retried one by one so a bad batch answers its own error. When the database fails
    (a 5xx), the items from there on answer 503 and the client sends them again."""
    results: list[ReplayResult | None] = [None] * len(body.requests)
    group: list[tuple[int, Batch]] = []
    extra: dict[int, dict[str, Any]] = {}  # more for an item's answer (a policy refusal)
    rules, actor = core(request), who.actor

    def flush() -> None:
        if not group:
            return
        if len(group) > 1:
            try:
                applied = rules.write_batches(actor, [b for _, b in group])
            except Exception:  # one bad batch: answer each on its own below
                log.debug("replay group failed; retrying one by one", exc_info=True)
            else:
                for (i, b), ok in zip(group, applied, strict=True):
                    results[i] = ReplayResult(
                        status=200,
                        body={"applied": ok, "points": b.point_count(), **extra.get(i, {})},
                    )
                group.clear()
                return
        for i, b in group:
            try:
                ok = rules.write_batches(actor, [b])[0]
            except Exception as exc:
                err = _error_result(exc)
                if err is None:
                    raise
                results[i] = ReplayResult(status=err[0], body=err[1])
            else:
                results[i] = ReplayResult(
                    status=200,
                    body={"applied": ok, "points": b.point_count(), **extra.get(i, {})},
                )
        group.clear()

    try:
        for i, item in enumerate(body.requests):
            try:
                if item.kind == "run":
                    flush()
                    run = RunCreate.model_validate(item.body)
                    answer = create_run(run, request, who)
                    if isinstance(answer, Response):
                        results[i] = ReplayResult(
                            status=answer.status_code, body=json.loads(bytes(answer.body))
                        )
                    else:
                        results[i] = ReplayResult(status=201, body=answer)
                else:
                    batch_body = BatchBody.model_validate(item.body)
                    batch = _to_batch(str(item.run_id or ""), batch_body)
                    policy = rules.check_batch(actor, batch)
                    if policy:
                        extra[i] = {"policy": policy}
                    group.append((i, batch))
            except Exception as exc:
                err = _error_result(exc)
                if err is None:
                    raise
                flush()
                results[i] = ReplayResult(status=err[0], body=err[1])
        flush()
    except Exception:
        log.warning("replay stopped by a server error", exc_info=True)
    unavailable = error_body("unavailable", "not processed: the server failed on an earlier item")
    return ReplayAnswer(results=[r or ReplayResult(status=503, body=unavailable) for r in results])


@router.post("/runs/{ref}/heartbeat", summary="Record that the run's writer is alive")
def heartbeat(
    ref: str,
    request: Request,
    store: RunStore = Depends(get_store),
    who: Principal = Depends(writer),
) -> Any:
    import time

    from ..store import Batch

    now = time.time()
    batch = Batch(run_id=ref, heartbeat=now)
    core(request).write_batch(who.actor, batch)
    return {"run_id": batch.run_id, "heartbeat_at": now}


@router.put(
    "/blobs",
    summary="Store small content-addressed bytes (patches, snapshots)",
    openapi_extra=BINARY_BODY,
)
async def put_blob(request: Request, store: RunStore = Depends(get_store)) -> Any:
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
def get_blob(sha256: str, request: Request, store: RunStore = Depends(get_store)) -> Response:
    who = principal(request)
    if not any(who.can("read", p) for p in who.roles):
        raise AuthError(f"user {who.user!r} needs the read role on some project to read blobs", 403)
    if not is_sha256(sha256):
        raise ApiError(400, "not a sha256 digest", details={"sha256": sha256[:80]})
    return Response(store.get_blob(sha256), media_type="application/octet-stream")


class Policy(BaseModel):
    """What every finished run of the project must carry (see docs/server.md, Project policy)."""

    require: list[Literal["git", "seed", "dataset"]] = Field(
        default_factory=list, description=", ".join(f"{k}: {v}" for k, v in REQUIREMENTS.items())
    )


class PolicyAnswer(Policy):
    project: str


@router.get(
    "/projects/{project}/policy",
    summary="The project's run policy",
    tags=["admin"],
    response_model=PolicyAnswer,
)
def get_project_policy(project: str, request: Request, who: Principal = Depends(reader)) -> Any:
    return {"project": project, "require": core(request).policy(project)}


@router.put(
    "/projects/{project}/policy",
    summary="Set the project's run policy (admin)",
    tags=["admin"],
    response_model=PolicyAnswer,
)
def put_project_policy(
    project: str, body: Policy, request: Request, who: Principal = Depends(admin)
) -> Any:
    require = core(request).set_policy(who.actor, project, list(body.require))
    return {"project": project, "require": require}


@router.get("/whoami", summary="The calling user and their roles", tags=["auth"])
def whoami(request: Request) -> Any:
    who = principal(request)
    return {"user": who.user, "roles": who.roles}


@router.post(
    "/admin/reap",
    summary="Mark runs whose heartbeats stopped as crashed (also runs in the background)",
    tags=["admin"],
)
def reap(request: Request, store: RunStore = Depends(get_store)) -> Any:
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

    @app.exception_handler(ValueRejectedError)
    async def _data_error(request: Request, exc: ValueRejectedError) -> JSONResponse:
        # the store raises it for the database's "data exception" (no SQLAlchemy here)
        return JSONResponse(
            error_body(
                "bad_request",
                "the database rejected a value in the request",
                {"reason": exc.reason},
            ),
            status_code=400,
        )

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            store: ServerStore | None = getattr(a.state, "store", None)
            if store is not None:
                store.compact_in_background = True  # no series compaction inside a request
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
