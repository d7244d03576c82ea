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
import logging
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

from ..._exceptions import LabledgerError, NotFoundError, RunNotFoundError
from ...store import Batch, ServerStore
from ..auth import core, principal
from ..routes_artifacts import blob_store
from ._common import (
    MlflowError,
    MlflowRoute,
    json_list,
    max_results,
    page_offset,
    page_token,
    read_params,
    require_str,
)
from ._experiments import experiment_of_project, readable, sql_store, visible_experiment
from ._media import maybe_media, media_item

__all__ = ["artifacts_router", "models_router", "tracking_artifacts_router"]

log = logging.getLogger("labledger.server")

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
        raise MlflowError("INVALID_PARAMETER_VALUE", "Invalid path")
    return parts


class _Owner:
    """Whose files a path names: a run's (``exp/run/artifacts``) or a model's."""

    def __init__(self, store: ServerStore, path: str, role: str, request: Request) -> None:
        parts = _safe(path)
        self.store = store
        self.request = request
        missing = MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifact root for path {path!r}")
        self.pinned: dict[str, dict[str, Any]] | None = None
        if (
            len(parts) >= 3
            and parts[0] != "artifact-versions"
            and _RUN_ID.match(parts[1])
            and parts[2] == "artifacts"
        ):
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
        elif len(parts) >= 3 and parts[0] == "artifact-versions" and parts[2] == "artifacts":
            # one content-addressed artifact version (a registered model version's files)
            if role != "read":
                raise MlflowError("PERMISSION_DENIED", "an artifact version never changes")
            try:
                av = store.get_artifact_version_by_id(parts[1])
            except NotFoundError:
                raise missing from None
            readable(request, str(av["project"]), missing)
            self.run_id = av.get("run_id")
            self.project = str(av["project"])
            self.key = f"version:{parts[1]}"
            self.model_name = None
            self.pinned = {f["path"]: f for f in av["files"]}
            self.rest = parts[3:]
            return
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
        if self.pinned is not None:
            return dict(self.pinned)
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
    data: bytes | None = None
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        await run_in_threadpool(blobs.put_file, tmp, sha, size)
        if owner.model_name is None and maybe_media(owner.rest, size):
            with open(tmp, "rb") as fh:
                data = fh.read()
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    await run_in_threadpool(owner.add, sha, size)
    if data is not None:
        await run_in_threadpool(_add_media, request, owner, data)
    return {}


def _add_media(request: Request, owner: _Owner, data: bytes) -> None:
    """An image, table or text logged through MLflow becomes a rich result of the run,
    written through the write core like any batch (its position: after those at its step)."""
    item = media_item(owner.rest, data)
    if item is None or owner.run_id is None:
        return
    item.seq = len(owner.store.media(owner.run_id, item.key, step=item.step))
    # one upload, one batch: its id names the file and its content, so a retried upload
    # is kept once and the same bytes under another name or step are a value of their own
    tag = hashlib.sha256(f"{'/'.join(owner.rest)}\0{item.sha256}".encode()).hexdigest()[:40]
    batch = Batch(owner.run_id, media=[item], id=f"mlflow-media-{tag}")
    try:
        core(request).write_batch(principal(request).actor, batch)
    except LabledgerError as exc:  # the file is stored as an artifact all the same
        log.warning("MLflow upload %s not kept as a rich result: %s", "/".join(owner.rest), exc)


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
    # the metrics logged with this model's id (MLflow 3 links a metric to a model)
    metrics = [dict(m, model_id=obj["id"]) for m in d.get("metrics") or []]
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
    if run_id is not None:
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"Invalid value {run_id!r} for parameter 'source_run_id' supplied.",
            )
        try:
            core(request).resolve(who.actor, run_id, "read")
        except RunNotFoundError:
            raise MlflowError(
                "RESOURCE_DOES_NOT_EXIST", f"Run with id={run_id} not found"
            ) from None
    model_id = "m-" + uuid.uuid4().hex
    data = {
        "name": params.get("name") or _new_model_name(),
        "model_type": params.get("model_type") or "",
        "status": _MODEL_STATUS[0],
        "creator": who.user if who.user != "anonymous" else "",  # MLflow's creator_id is numeric
        "tags": _kv(params, "tags"),
        "params": _kv(params, "params"),
    }
    store.put_mlflow_object(MODEL, model_id, exp["project"], data, run_id=run_id)
    return {"model": _model_json(store, _model(store, model_id))}


def _new_model_name() -> str:
    """A generated name, as MLflow gives a logged model created without one."""
    from ..._names import new_run_name

    return new_run_name()


@models_router.get("/{model_id}/artifacts/directories")
def list_model_artifacts(
    model_id: str, request: Request, params: dict[str, Any] = Depends(read_params)
) -> Any:
    """A logged model's files under ``artifact_directory_path`` (MLflow's web UI)."""
    path = str(params.get("artifact_directory_path") or "")
    owner = _owner(request, posixpath.join(f"0/models/{model_id}/artifacts", path), "read")
    return {"files": _listing(owner, owner.rest)}


@models_router.get("/{model_id}/artifacts/files")
def get_model_artifact(
    model_id: str, request: Request, params: dict[str, Any] = Depends(read_params)
) -> Response:
    """One file of a logged model, ``artifact_file_path`` (MLflow's web UI)."""
    path = require_str(params, "artifact_file_path")
    return download(f"0/models/{model_id}/artifacts/{path}", request)


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
    wanted = [
        (d.get("dataset_name"), d.get("dataset_digest"))
        for d in json_list(params, "datasets", of=dict)
    ]
    if wanted:
        found = [o for o in found if _uses_datasets(o, wanted)]
    text = str(params.get("filter") or "").strip()
    if text:
        found = [o for o in found if _model_matches(o, text)]
    found.sort(key=lambda o: o["created_at"], reverse=True)
    limit = max_results(params, 100)
    offset = page_offset(params.get("page_token"))
    out: dict[str, Any] = {
        "models": [_model_json(store, o) for o in found[offset : offset + limit]]
    }
    if offset + limit < len(found):
        out["next_page_token"] = page_token(offset + limit)
    return out


def _uses_datasets(obj: dict[str, Any], wanted: list[tuple[Any, Any]]) -> bool:
    """Whether a metric of the model was logged on one of ``wanted`` (name[, digest])."""
    for m in obj["data"].get("metrics") or []:
        for name, digest in wanted:
            if m.get("dataset_name") == name and (not digest or m.get("dataset_digest") == digest):
                return True
    return False


_CLAUSE = re.compile(
    r"\s*(name|model_type|status|source_run_id|tags\.`?[^`=!<>\s]+`?|metrics\.`?[^`=!<>\s]+`?)"
    r"\s*(=|!=|<=|>=|<|>|LIKE|ILIKE)\s*('(?:[^']*)'|\"[^\"]*\"|-?[0-9.eE+-]+)\s*",
    re.I,
)


def _model_matches(obj: dict[str, Any], text: str) -> bool:
    """MLflow's logged-model filter (``name``, ``model_type``, ``status``,
    ``source_run_id``, ``tags.k``, ``metrics.k`` with comparisons, joined by AND)."""
    d = obj["data"]
    for part in re.split(r"\s+AND\s+", text, flags=re.I):
        m = _CLAUSE.fullmatch(part)
        if m is None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter string {text!r}")
        field, op, raw = m.group(1), m.group(2).upper(), m.group(3)
        have: Any
        if field.lower().startswith("metrics."):
            key = field[8:].strip("`")
            vals = [x["value"] for x in d.get("metrics") or [] if x.get("key") == key]
            have = vals[-1] if vals else None
            want: Any = float(raw.strip("'\""))
        else:
            if field.lower().startswith("tags."):
                have = (d.get("tags") or {}).get(field[5:].strip("`"))
            elif field == "source_run_id":
                have = obj["run_id"]
            else:
                have = d.get(field.lower())
            want = raw.strip("'\"")
        if have is None:
            return False
        if op in ("LIKE", "ILIKE"):
            rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in want)
            if not re.fullmatch(rx, str(have), re.I if op == "ILIKE" else 0):
                return False
            continue
        ok = {
            "=": have == want,
            "!=": have != want,
            "<": have < want,
            "<=": have <= want,
            ">": have > want,
            ">=": have >= want,
        }[op]
        if not ok:
            return False
    return True


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
    data = dict(obj["data"], deleted=time.time())
    store.put_mlflow_object(MODEL, obj["id"], obj["project"], data, run_id=obj["run_id"])
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
    if tag_key not in tags:
        raise MlflowError(
            "RESOURCE_DOES_NOT_EXIST",
            f"No tag with key {tag_key!r} found for logged model with ID '{model_id}'.",
        )
    del tags[tag_key]
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
