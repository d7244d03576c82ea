"""MLflow's artifact proxy and MLflow 3 logged models, over labledger's artifact store.

``mlflow-artifacts:/<experiment>/<run>/artifacts/<path>`` is where the client puts a
run's files. Each uploaded file goes to the server's content-addressed blob store and
registers a new version of a labledger artifact of the run, named after the path's
first component (``model/MLmodel`` -> artifact ``model``), whose manifest is every file
uploaded under that name so far; so ``labledger artifacts ls RUN`` shows them and
``labledger artifacts get`` fetches them. Listing and downloading through MLflow merge
all versions the run produced, newest file first.

A logged model (``/api/2.0/mlflow/logged-models``) is an ``mlflow_objects`` row; its
files (``<experiment>/models/<model id>/artifacts/...``) become versions of an artifact
named after the model, kind ``model``, linked to the model's source run.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..._exceptions import RunNotFoundError
from ...store import ServerStore
from ..auth import core, principal
from ..routes_artifacts import blob_store
from ._common import (
    MlflowError,
    MlflowRoute,
    float_to_json,
    json_list,
    max_results,
    page_offset,
    page_token,
    read_params,
    require_str,
)
from ._experiments import experiment_of_project, readable, sql_store, visible_experiment

__all__ = ["artifacts_router", "models_router", "tracking_artifacts_router"]

artifacts_router = APIRouter(prefix="/api/2.0/mlflow-artifacts", route_class=MlflowRoute)
models_router = APIRouter(prefix="/api/2.0/mlflow/logged-models", route_class=MlflowRoute)
tracking_artifacts_router = APIRouter(prefix="/api/2.0/mlflow/artifacts", route_class=MlflowRoute)

MODEL = "model"
_RUN_ID = re.compile(r"[0-9a-f]{32}\Z")
_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]")


def _artifact_name(text: str) -> str:
    name = _NAME_BAD.sub("_", text).strip("._-")[:128] or "artifact"
    return name.replace("..", "_")


def _safe(rel: str) -> list[str]:
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid path {rel!r}")
    return parts


class _Owner:
    """Whose files a path names: a run's (``exp/run/artifacts``) or a model's."""

    def __init__(self, store: ServerStore, path: str, role: str, request: Request) -> None:
        parts = _safe(path)
        self.store = store
        self.request = request
        missing = MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifact root for path {path!r}")
        if len(parts) >= 3 and _RUN_ID.match(parts[1]) and parts[2] == "artifacts":
            self.run_id: str | None = parts[1]
            rules, actor = core(request), principal(request).actor
            try:  # a run's files: the write core's rules for the run (owner to write)
                if role == "read":
                    self.project = rules.resolve(actor, parts[1], "read")[1]
                else:
                    self.project = rules.owned(actor, parts[1])[1]
            except RunNotFoundError:
                raise missing from None
            self.key = f"run:{parts[1]}"
            self.model_name: str | None = None
            self.rest = parts[3:]
        elif len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
            model = _model_for(request, parts[2], role)[1]
            self.run_id = model["run_id"]
            self.project = str(model["project"])
            self.key = f"model:{parts[2]}"
            self.model_name = str(model["data"].get("name") or MODEL)
            self.rest = parts[4:]
        else:
            raise missing

    def versions(self) -> list[dict[str, Any]]:
        if self.run_id is not None:
            found = self.store.list_run_artifacts(self.run_id)["produced"]
        else:
            assert self.model_name is not None
            found = self.store.list_artifact_versions(self.project, _artifact_name(self.model_name))
        mine = [v for v in found if (v.get("metadata") or {}).get("mlflow_owner") == self.key]
        return sorted(mine, key=lambda v: (v["created_at"], v["version"]))

    def files(self) -> dict[str, dict[str, Any]]:
        """Every file under this owner: relative path -> {sha256, size} (newest upload wins)."""
        out: dict[str, dict[str, Any]] = {}
        for v in self.versions():
            prefix = (v.get("metadata") or {}).get("mlflow_prefix") or ""
            for f in v["files"]:
                out[posixpath.join(prefix, f["path"]) if prefix else f["path"]] = f
        return out

    def add(self, sha: str, size: int) -> None:
        rest = self.rest
        if not rest:
            raise MlflowError("INVALID_PARAMETER_VALUE", "an artifact path names no file")
        if self.model_name is not None:
            name, prefix, inner, kind = _artifact_name(self.model_name), "", "/".join(rest), MODEL
        elif len(rest) == 1:
            name, prefix, inner, kind = _artifact_name(rest[0]), "", rest[0], "file"
        else:
            name, prefix, inner = _artifact_name(rest[0]), rest[0], "/".join(rest[1:])
            kind = MODEL if rest[-1] == "MLmodel" else "directory"
        previous: dict[str, dict[str, Any]] = {}
        for v in self.versions():
            meta = v.get("metadata") or {}
            if v["name"] == name and (meta.get("mlflow_prefix") or "") == prefix:
                previous.update({f["path"]: f for f in v["files"]})
                if v["kind"] == MODEL:
                    kind = MODEL
        previous[inner] = {"path": inner, "sha256": sha, "size": size}
        self.store.create_artifact_version(
            self.project,
            name,
            kind,
            self.run_id,
            sorted(previous.values(), key=lambda f: f["path"]),
            {
                "type": "directory" if prefix or self.model_name else "file",
                "mlflow_owner": self.key,
                "mlflow_prefix": prefix,
                "source": "mlflow",
            },
            storage=getattr(blob_store(self.request), "uri", None),
        )


def _owner(request: Request, path: str, role: str) -> _Owner:
    return _Owner(sql_store(request), path, role, request)


@artifacts_router.put("/artifacts/{path:path}")
async def upload(path: str, request: Request) -> Any:
    owner = await run_in_threadpool(_owner, request, path, "write")
    blobs = blob_store(request)
    fd, tmp = tempfile.mkstemp(prefix="mlflow-upload-", suffix=".part")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        await run_in_threadpool(blobs.put_file, tmp, sha, size)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    await run_in_threadpool(owner.add, sha, size)
    return {}


def _listing(owner: _Owner, rel: list[str]) -> list[dict[str, Any]]:
    files = owner.files()
    base = "/".join(rel)
    if base in files:
        return [{"path": rel[-1], "is_dir": False, "file_size": files[base]["size"]}]
    entries: dict[str, dict[str, Any]] = {}
    prefix = base + "/" if base else ""
    for path, f in files.items():
        if not path.startswith(prefix):
            continue
        head, _, tail = path[len(prefix) :].partition("/")
        if tail:
            entries[head] = {"path": head, "is_dir": True}
        else:
            entries.setdefault(head, {"path": head, "is_dir": False, "file_size": f["size"]})
    return [entries[k] for k in sorted(entries)]


@artifacts_router.get("/artifacts")
def list_artifacts(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    path = str(params.get("path") or "")
    parts = _safe(path)
    if len(parts) < 3:  # the root or an experiment: not browsable through labledger
        return {"files": []}
    owner = _owner(request, path, "read")
    return {"files": _listing(owner, owner.rest)}


@artifacts_router.get("/artifacts/{path:path}")
def download(path: str, request: Request) -> Response:
    owner = _owner(request, path, "read")
    f = owner.files().get("/".join(owner.rest))
    if f is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifact at {path!r}")
    stream = blob_store(request).open(f["sha256"])

    def chunks() -> Iterator[bytes]:
        with stream:
            while block := stream.read(1 << 20):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Length": str(f["size"])},
    )


@tracking_artifacts_router.get("/list")
def tracking_list(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store = sql_store(request)
    run_id = require_str(params, "run_id", "run_uuid")
    try:
        if not _RUN_ID.match(run_id):
            raise RunNotFoundError(run_id)
        project = core(request).resolve(principal(request).actor, run_id, "read")[1]
    except RunNotFoundError:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Run with id={run_id} not found") from None
    exp = experiment_of_project(store, project)["id"]
    rel = str(params.get("path") or "")
    owner = _owner(request, f"{exp}/{run_id}/artifacts/{rel}", "read")
    files = [
        dict(f, path=posixpath.join(rel, f["path"]) if rel else f["path"])
        for f in _listing(owner, owner.rest)
    ]
    return {"root_uri": f"mlflow-artifacts:/{exp}/{run_id}/artifacts", "files": files}


# -- logged models (MLflow 3) -----------------------------------------------------------

_MODEL_STATUS = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")


def _no_model(model_id: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model_id}' not found.")


def _model(store: ServerStore, model_id: str) -> dict[str, Any]:
    obj = store.mlflow_object(MODEL, model_id)
    if obj is None or obj["data"].get("deleted"):
        raise _no_model(model_id)
    return obj


def _model_json(store: ServerStore, obj: dict[str, Any]) -> dict[str, Any]:
    d = obj["data"]
    exp = experiment_of_project(store, obj["project"])["id"]
    info = {
        "model_id": obj["id"],
        "experiment_id": exp,
        "name": d.get("name") or MODEL,
        "creation_timestamp_ms": int(obj["created_at"] * 1000),
        "last_updated_timestamp_ms": int(obj["updated_at"] * 1000),
        "artifact_uri": f"mlflow-artifacts:/{exp}/models/{obj['id']}/artifacts",
        "status": d.get("status", _MODEL_STATUS[0]),
        "model_type": d.get("model_type") or "",
        "source_run_id": obj["run_id"] or "",
        "tags": [{"key": k, "value": v} for k, v in sorted((d.get("tags") or {}).items())],
    }
    metrics = []
    if obj["run_id"]:
        run = store.get_run(obj["run_id"])
        metrics = [
            {
                "key": k,
                "value": float_to_json(m["last"]),
                "timestamp": int(m["last_ts"] * 1000),
                "step": m["last_step"],
                "run_id": obj["run_id"],
                "model_id": obj["id"],
            }
            for k, m in sorted((run.get("metrics") or {}).items())
        ]
    params = [{"key": k, "value": v} for k, v in sorted((d.get("params") or {}).items())]
    return {"info": info, "data": {"params": params, "metrics": metrics}}


def _kv(params: dict[str, Any], name: str) -> dict[str, str]:
    return {
        str(t["key"]): str(t.get("value") or "")
        for t in json_list(params, name)
        if isinstance(t, dict) and t.get("key")
    }


@models_router.post("")
def create_model(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, who = sql_store(request), principal(request)
    exp = visible_experiment(request, require_str(params, "experiment_id"))
    who.require("write", exp["project"])
    run_id = params.get("source_run_id") or None
    if run_id is not None and (not _RUN_ID.match(str(run_id))):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid source_run_id {run_id!r}")
    model_id = "m-" + uuid.uuid4().hex
    data = {
        "name": params.get("name") or MODEL,
        "model_type": params.get("model_type") or "",
        "status": _MODEL_STATUS[0],
        "creator": who.user if who.user != "anonymous" else "",  # MLflow's creator_id is numeric
        "tags": _kv(params, "tags"),
        "params": _kv(params, "params"),
    }
    store.put_mlflow_object(MODEL, model_id, exp["project"], data, run_id=run_id)
    return {"model": _model_json(store, _model(store, model_id))}


@models_router.post("/search")
def search_models(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, _who = sql_store(request), principal(request)
    projects = set()
    for eid in json_list(params, "experiment_ids", of=str):
        projects.add(visible_experiment(request, str(eid))["project"])
    found = [
        o
        for p in sorted(projects)
        for o in store.mlflow_objects(MODEL, project=p)
        if not o["data"].get("deleted")
    ]
    found.sort(key=lambda o: o["created_at"], reverse=True)
    limit = max_results(params, 100)
    offset = page_offset(params.get("page_token"))
    out: dict[str, Any] = {
        "models": [_model_json(store, o) for o in found[offset : offset + limit]]
    }
    if offset + limit < len(found):
        out["next_page_token"] = page_token(offset + limit)
    return out


def _model_for(request: Request, model_id: str, role: str) -> tuple[ServerStore, dict[str, Any]]:
    store = sql_store(request)
    obj = _model(store, model_id)
    readable(request, obj["project"], _no_model(model_id))
    principal(request).require(role, obj["project"])
    return store, obj


def _save_model(store: ServerStore, obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = dict(obj["data"], **changes)
    store.put_mlflow_object(MODEL, obj["id"], obj["project"], data, run_id=obj["run_id"])
    return _model(store, obj["id"])


@models_router.get("/{model_id}")
def get_model(model_id: str, request: Request) -> Any:
    store, obj = _model_for(request, model_id, "read")
    return {"model": _model_json(store, obj)}


@models_router.patch("/{model_id}")
def finalize_model(
    model_id: str, request: Request, params: dict[str, Any] = Depends(read_params)
) -> Any:
    store, obj = _model_for(request, model_id, "write")
    status = str(params.get("status") or "")
    if status not in _MODEL_STATUS:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid logged model status {status!r}")
    return {"model": _model_json(store, _save_model(store, obj, status=status))}


@models_router.delete("/{model_id}")
def delete_model(model_id: str, request: Request) -> Any:
    store, obj = _model_for(request, model_id, "write")
    _save_model(store, obj, deleted=time.time())
    return {}


@models_router.patch("/{model_id}/tags")
def set_model_tags(
    model_id: str, request: Request, params: dict[str, Any] = Depends(read_params)
) -> Any:
    store, obj = _model_for(request, model_id, "write")
    tags = dict(obj["data"].get("tags") or {}, **_kv(params, "tags"))
    _save_model(store, obj, tags=tags)
    return {}


@models_router.delete("/{model_id}/tags/{tag_key:path}")
def delete_model_tag(model_id: str, tag_key: str, request: Request) -> Any:
    store, obj = _model_for(request, model_id, "write")
    tags = dict(obj["data"].get("tags") or {})
    tags.pop(tag_key, None)
    _save_model(store, obj, tags=tags)
    return {}


@models_router.post("/{model_id}/params")
def log_model_params(
    model_id: str, request: Request, params: dict[str, Any] = Depends(read_params)
) -> Any:
    store, obj = _model_for(request, model_id, "write")
    merged = dict(obj["data"].get("params") or {}, **_kv(params, "params"))
    _save_model(store, obj, params=merged)
    return {}
