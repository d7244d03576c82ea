"""Artifact and reproduction routes of the HTTP API (``/api/v1``).

Artifacts are proxied through the server, so clients need no cloud credentials:

- ``HEAD/GET/PUT/DELETE /artifact-blobs/{sha256}``: content-addressed bytes in the
  server's blob store (its ``--artifacts-uri``: a directory or ``s3://``). ``PUT``
  streams the request body to a temporary file while hashing it and refuses it (400,
  code ``integrity``) when it does not hash to ``{sha256}``; only then is the blob
  handed to the blob store, so a half or wrong blob is never visible. ``GET`` streams
  back. Bodies are never read whole into memory.
- JSON routes for every artifact-metadata method of the Store protocol and for
  reproduction verdicts, each checking the caller's role on the project concerned.

Blob routes are not tied to a project (identical bytes are shared across projects):
reading needs the read role on some project, writing the write role on some project,
deleting and listing the admin role on every project (``*``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from .._exceptions import AuthError, IntegrityError, InvalidArtifactError
from ..artifacts import BlobStore, LocalBlobStore, file_fingerprint, is_sha256
from ..store import ArtifactCatalog, ReproVerdicts, Store, parse_ref, validate_alias, validate_name
from ._body import CheckedRoute, JsonInt, JsonNumber
from ._json import BINARY_BODY, LedgerJSONResponse
from .auth import (
    Principal,
    core,
    get_store,
    principal,
    reader,
    require_owner,
    require_run,
    run_project,
    writer,
)
from .errors import ApiError

__all__ = ["install", "router"]

router = APIRouter(
    prefix="/api/v1",
    default_response_class=LedgerJSONResponse,
    tags=["artifacts"],
    route_class=CheckedRoute,
)

STREAM_CHUNK = 1024 * 1024
MAX_BLOB_BYTES = 1 << 40  # 1 TiB: refuse anything announced larger
_SHA = r"^[0-9a-f]{64}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


def blob_store(request: Request) -> BlobStore:
    """The server's blob store (opened once per process from ``--artifacts-uri``)."""
    app = request.app
    blobs: BlobStore | None = getattr(app.state, "blob_store", None)
    if blobs is None:
        from ..artifacts import open_blob_store

        uri = app.state.artifacts_uri
        from ..store import scheme_family

        if uri and scheme_family(str(uri)) in ("http", "https"):
            raise ApiError(500, "the server's artifacts URI must be a directory or s3://, not http")
        store: Store | None = app.state.store  # (None until the app's lifespan opens it)
        store_uri = store.uri if store is not None else app.state.store_uri
        blobs = app.state.blob_store = open_blob_store(uri, store_uri)
    return blobs


def _sha(sha256: str) -> str:
    if not is_sha256(sha256):
        raise ApiError(
            400, "not a sha256 digest (64 lowercase hex digits)", details={"sha256": sha256[:80]}
        )
    return sha256


def _name(value: str, what: str = "name") -> str:
    try:
        return validate_name(value, what)
    except InvalidArtifactError as exc:
        raise ApiError(400, str(exc), details={what: value[:200]}) from None


def _any_role(who: Principal, role: str, what: str) -> None:
    if not any(who.can(role, p) for p in who.roles):
        raise AuthError(f"user {who.user!r} needs the {role} role on some project to {what}", 403)


# -- blobs --------------------------------------------------------------------------------


@router.head("/artifact-blobs/{sha256}", summary="Whether the server's blob store holds a blob")
def head_blob(sha256: str, request: Request) -> Response:
    _any_role(principal(request), "read", "read artifact blobs")
    return Response(status_code=200 if blob_store(request).has(_sha(sha256)) else 404)


class _UploadPart:
    """The request body on its way to disk: hashed and counted as it is written."""

    def __init__(self, directory: str | None) -> None:
        if directory:
            os.makedirs(directory, exist_ok=True)
        fd, self.path = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=directory)
        self.fh = os.fdopen(fd, "wb")
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.fh.write(data)
        self.size += len(data)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


@router.put(
    "/artifact-blobs/{sha256}",
    summary="Upload one blob (streamed; refused unless the body hashes to {sha256})",
    openapi_extra=BINARY_BODY,
)
async def put_blob(
    sha256: str,
    request: Request,
    size: int | None = Query(None, ge=0, le=MAX_BLOB_BYTES, description="expected size in bytes"),
) -> Any:
    who = principal(request)
    _any_role(who, "write", "store artifact blobs")
    sha = _sha(sha256)
    blobs = await run_in_threadpool(blob_store, request)
    if await run_in_threadpool(blobs.has, sha):
        await run_in_threadpool(blobs.touch, sha)
        async for _chunk in request.stream():  # drain, so the connection stays usable
            pass
        return {"sha256": sha, "stored": False, "size": size}
    tmp_dir = str(blobs.root / "tmp") if isinstance(blobs, LocalBlobStore) else None
    part = await run_in_threadpool(_UploadPart, tmp_dir)
    try:
        pending: list[bytes] = []
        pending_size = 0
        async for chunk in request.stream():
            if not chunk:
                continue
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= STREAM_CHUNK:
                await run_in_threadpool(part.write, b"".join(pending))
                pending, pending_size = [], 0
            if part.size + pending_size > MAX_BLOB_BYTES:
                raise ApiError(413, f"artifact blobs are limited to {MAX_BLOB_BYTES} bytes")
        if pending:
            await run_in_threadpool(part.write, b"".join(pending))
        await run_in_threadpool(part.fh.close)
        actual = part.hash.hexdigest()
        if actual != sha:
            raise ApiError(
                400,
                f"the uploaded bytes hash to {actual}, not {sha}: refused",
                code="integrity",
                details={"expected": sha, "actual": actual, "size": part.size},
            )
        if size is not None and size != part.size:
            raise ApiError(400, f"received {part.size} bytes, expected {size}", code="integrity")

        def commit() -> None:
            if isinstance(blobs, LocalBlobStore):
                blobs.put_file(part.path, sha, part.size, fingerprint=file_fingerprint(part.path))
            else:
                blobs.put_file(part.path, sha, part.size)

        try:
            await run_in_threadpool(commit)
        except IntegrityError as exc:  # cannot happen unless the disk corrupts our temp file
            raise ApiError(500, str(exc)) from None
        return LedgerJSONResponse(
            {"sha256": sha, "stored": True, "size": part.size}, status_code=201
        )
    finally:
        await run_in_threadpool(part.discard)


def _iter_stream(stream: Any) -> Iterator[bytes]:
    try:
        while True:
            chunk = stream.read(STREAM_CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        stream.close()


@router.get(
    "/artifact-blobs/{sha256}",
    summary="Download one blob (streamed; verify it against {sha256})",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_blob(sha256: str, request: Request) -> Response:
    _any_role(principal(request), "read", "read artifact blobs")
    sha = _sha(sha256)
    stream = blob_store(request).open(sha)  # NotFoundError -> 404
    return StreamingResponse(
        _iter_stream(stream),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{sha}"',
            "X-Content-Type-Options": "nosniff",
            "X-Labledger-Sha256": sha,
        },
    )


@router.delete(
    "/artifact-blobs/{sha256}", summary="Delete one blob (admin of every project; for gc)"
)
def delete_blob(sha256: str, request: Request) -> Any:
    principal(request).require("admin", "*")
    blob_store(request).delete(_sha(sha256))
    return {"sha256": sha256, "deleted": True}


@router.post(
    "/artifact-blobs/{sha256}/touch", summary="Mark a blob as recently used (protects it from gc)"
)
def touch_blob(sha256: str, request: Request) -> Any:
    _any_role(principal(request), "write", "touch artifact blobs")
    blob_store(request).touch(_sha(sha256))
    return {"sha256": sha256}


@router.get(
    "/artifact-blobs",
    summary="Every blob of the server's blob store, one JSON object a line (admin of every project)",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def list_blobs(request: Request) -> Response:
    principal(request).require("admin", "*")
    import json

    blobs = blob_store(request)

    def lines() -> Iterator[bytes]:
        for b in blobs.iter_blobs():
            yield (
                json.dumps({"sha256": b.sha256, "size": b.size, "modified": b.modified}) + "\n"
            ).encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get(
    "/admin/referenced-blob-shas",
    summary="Blobs some artifact version references (for gc)",
    tags=["admin"],
)
def referenced(request: Request, store: ArtifactCatalog = Depends(get_store)) -> Any:
    principal(request).require("admin", "*")
    return {"sha256": sorted(store.referenced_blob_shas())}


# -- artifact metadata ----------------------------------------------------------------------


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=1024)
    sha256: str = Field(pattern=_SHA)
    size: JsonInt = Field(ge=0, le=MAX_BLOB_BYTES)


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: str = Field("artifact", min_length=1, max_length=128, pattern=_NAME)
    run_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    manifest: list[FileEntry] = Field(max_length=1_000_000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    late: StrictBool = Field(
        False,
        description="logged before the run ended, uploaded from a client's spool "
        "(`labledger sync`): admitted into an ended run, as a `late` audit entry",
    )


class AliasBody(BaseModel):
    version: JsonInt = Field(ge=0, le=2**31 - 1)


class UseBody(BaseModel):
    version_id: str = Field(min_length=1, max_length=64)


def _readable(who: Principal, versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in versions if who.can("read", str(v["project"]))]


@router.post(
    "/projects/{project}/artifacts/{name}/versions",
    status_code=201,
    summary="Register the next version of an artifact (its blobs must be uploaded first)",
)
def create_version(
    project: str,
    name: str,
    body: VersionCreate,
    request: Request,
    store: ArtifactCatalog = Depends(get_store),
    who: Principal = Depends(writer),
) -> Any:
    _name(project, "project")
    _name(name)
    if body.run_id is not None:
        # resolved among readable runs only: another project's run answers 404, unnamed
        run_id, run_proj = run_project(request, require_run(request, body.run_id, "read"))
        if run_proj != project:
            raise ApiError(400, f"run {run_id} belongs to project {run_proj!r}, not {project!r}")
        require_owner(request, run_id)
    from ..store import blob_problems, check_manifest, describe_problems

    manifest = check_manifest(
        [f.model_dump() for f in body.manifest]
    )  # InvalidArtifactError -> 400
    blobs = blob_store(request)
    problems = blob_problems(blobs, manifest)
    missing = sorted({p["sha256"] for p in problems if p["actual"] is None})
    if missing:
        raise ApiError(
            409,
            f"{len(missing)} blob(s) of this version are not in the server's artifact store: upload them first",
            code="missing_blobs",
            details={"missing": missing[:100]},
        )
    if problems:
        # a size that does not match its blob would break downloads mid-stream
        raise ApiError(
            400,
            f"the manifest does not match the stored blobs: {describe_problems(problems)}",
            code="size_mismatch",
            details={"mismatched": problems[:100]},
        )
    from .._values import decode_json

    version = store.create_artifact_version(
        project,
        name,
        body.kind,
        body.run_id,
        [f.model_dump() for f in body.manifest],
        decode_json(body.metadata),
        storage=blobs.uri,
        late=body.late,
    )
    return LedgerJSONResponse(version, status_code=201)


@router.get(
    "/projects/{project}/artifacts/{name}/versions",
    summary="Versions of one artifact, newest first",
)
def versions_of(
    project: str,
    name: str,
    store: ArtifactCatalog = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    return LedgerJSONResponse(
        {"versions": store.list_artifact_versions(_name(project, "project"), _name(name))}
    )


def _resolve_target(who: Principal, project: str, ref: str, role: str) -> None:
    _name(project, "project")
    try:
        parts = parse_ref(ref)
    except InvalidArtifactError as exc:
        raise ApiError(400, str(exc), details={"ref": ref[:200]}) from None
    who.require(role, parts.project or project)


@router.get(
    "/projects/{project}/artifact-ref",
    summary="Resolve name, name:v3, name:alias or project/name:alias",
)
def resolve_ref(
    project: str,
    request: Request,
    ref: str = Query(..., min_length=1, max_length=400),
    store: ArtifactCatalog = Depends(get_store),
    who: Principal = Depends(principal),  # the role is checked on the ref's project
) -> Any:
    _resolve_target(who, project, ref, "read")
    return LedgerJSONResponse(store.get_artifact_version(project, ref))


@router.delete(
    "/projects/{project}/artifact-ref",
    summary="Forget one artifact version (its blobs become garbage for gc)",
)
def delete_version(
    project: str,
    request: Request,
    ref: str = Query(..., min_length=1, max_length=400),
    store: ArtifactCatalog = Depends(get_store),
    who: Principal = Depends(principal),  # the role is checked on the ref's project
) -> Any:
    _resolve_target(who, project, ref, "admin")
    return LedgerJSONResponse(store.delete_artifact_version(project, ref))


@router.put(
    "/projects/{project}/artifacts/{name}/aliases/{alias}",
    summary="Point a user alias at a version",
)
def set_alias(
    project: str,
    name: str,
    alias: str,
    body: AliasBody,
    store: ArtifactCatalog = Depends(get_store),
    who: Principal = Depends(writer),
) -> Any:
    _name(project, "project")
    _name(name)
    try:
        validate_alias(alias)
    except InvalidArtifactError as exc:
        raise ApiError(400, str(exc)) from None
    return LedgerJSONResponse(store.set_artifact_alias(project, name, body.version, alias))


@router.get(
    "/artifact-versions", summary="Artifact versions, optionally of one project and/or name"
)
def list_versions(
    project: str | None = Query(None, max_length=250),
    name: str | None = Query(None, max_length=250),
    store: ArtifactCatalog = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    return LedgerJSONResponse(
        {"versions": _readable(who, store.list_artifact_versions(project, name))}
    )


def _version(store: ArtifactCatalog, who: Principal, version_id: str) -> dict[str, Any]:
    version = store.get_artifact_version_by_id(version_id)
    who.require("read", str(version["project"]))
    return version


@router.get("/artifact-versions/{version_id}", summary="One artifact version by id")
def version_by_id(
    version_id: str, request: Request, store: ArtifactCatalog = Depends(get_store)
) -> Any:
    return LedgerJSONResponse(_version(store, principal(request), version_id))


@router.get(
    "/artifact-versions/{version_id}/consumers", summary="Ids of the runs that used a version"
)
def consumers(
    version_id: str, request: Request, store: ArtifactCatalog = Depends(get_store)
) -> Any:
    who = principal(request)
    _version(store, who, version_id)
    ids = [
        r
        for r in store.artifact_consumers(version_id)
        if who.can("read", run_project(request, r)[1])
    ]
    return {"runs": ids}


@router.get("/runs/{ref}/artifacts", summary="Artifact versions a run produced and consumed")
def run_artifacts(ref: str, request: Request, store: ArtifactCatalog = Depends(get_store)) -> Any:
    run_id = require_run(request, ref, "read")
    out = store.list_run_artifacts(run_id)
    who = principal(request)
    return LedgerJSONResponse(
        {"produced": out["produced"], "consumed": _readable(who, out["consumed"])}
    )


def _run_writer(ref: str, request: Request) -> str:
    """The run's full id once the caller may change it (its author or an admin; before the body)."""
    return require_owner(request, ref)


@router.post("/runs/{ref}/artifact-uses", summary="Record that a run consumed an artifact version")
def use(
    body: UseBody,
    request: Request,
    store: ArtifactCatalog = Depends(get_store),
    run_id: str = Depends(_run_writer),
) -> Any:
    _version(store, principal(request), body.version_id)
    store.record_artifact_use(run_id, body.version_id)
    return {"run_id": run_id, "version_id": body.version_id}


# -- reproduction verdicts --------------------------------------------------------------------


class VerdictBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    original_run_id: str = Field(min_length=1, max_length=64)
    verdict: Literal[
        "reproduced", "reproduced-within-tolerance", "not-reproduced", "not-reproducible"
    ]
    repro_run_id: str | None = Field(None, max_length=64)
    reason: str | None = Field(None, max_length=100_000)
    tolerance: JsonNumber | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    created_at: JsonNumber | None = Field(None, ge=0, le=1e11)
    id: str | None = Field(None, pattern=r"^[0-9A-Za-z_-]{1,64}$")


@router.post(
    "/repro-verdicts", status_code=201, summary="Store one labledger repro verdict", tags=["repro"]
)
def add_verdict(
    body: VerdictBody,
    request: Request,
    who: Principal = Depends(principal),
) -> Any:
    from .._values import decode_json

    verdict = body.model_dump(exclude_none=True)
    # any writer of the project may reproduce; the store refuses a verdict without its
    # reproduction run (400) and records the caller as the one who reproduced
    verdict["details"] = decode_json(verdict.get("details") or {})
    return {"id": core(request).add_repro_verdict(who.actor, verdict)}


@router.get(
    "/repro-verdicts", summary="Verdicts in which any of the runs takes part", tags=["repro"]
)
def verdicts(
    request: Request,
    runs: list[str] = Query(..., max_length=1000),
    store: ReproVerdicts = Depends(get_store),
) -> Any:
    who = principal(request)
    ids = [require_run(request, r, "read") for r in runs]
    found = store.repro_verdicts(ids)
    # a verdict names two runs: hide those whose other run the caller may not read
    visible = []
    for v in found:
        other = [r for r in (v.get("original_run_id"), v.get("repro_run_id")) if r and r not in ids]
        if all(_can_read_run(request, who, r) for r in other):
            visible.append(v)
    return LedgerJSONResponse({"verdicts": visible})


def _can_read_run(request: Request, who: Principal, run_id: str) -> bool:
    try:
        return who.can("read", run_project(request, run_id)[1])
    except Exception:
        return False


def install(app: FastAPI) -> None:
    """Add the artifact and repro routes."""
    app.include_router(router)
