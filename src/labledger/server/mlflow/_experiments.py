"""MLflow experiments over labledger projects (``/api/2.0/mlflow/experiments/...``).

An experiment *is* a project: its name is the project's name, and its MLflow-only facts
(a stable numeric id, the lifecycle stage, experiment tags) are kept in
``mlflow_objects``. A project made by labledger's own client gets its experiment row
on first sight; ``Default`` is experiment ``0``, as MLflow's client assumes.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from typing import Any

from fastapi import APIRouter, Depends, Request

from ...store import ServerStore
from ..auth import core, get_store, principal
from ._common import (
    MlflowError,
    MlflowRoute,
    json_list,
    json_str,
    max_results,
    page_offset,
    page_token,
    read_params,
    require_str,
)

__all__ = [
    "DEFAULT_EXPERIMENT",
    "experiment_by_id",
    "experiment_json",
    "experiment_of_project",
    "readable",
    "router",
    "sql_store",
]

DEFAULT_EXPERIMENT = "Default"
KIND = "experiment"

router = APIRouter(prefix="/api/2.0/mlflow/experiments", route_class=MlflowRoute)


def sql_store(request: Request) -> ServerStore:
    """The server's store (its ``MlflowObjects`` role keeps experiments and models)."""
    return get_store(request)


def readable(request: Request, project: str, missing: MlflowError) -> None:
    """The one visibility rule: what the caller may not read answers ``missing``, exactly
    what a missing object answers (same status, same body, no project name)."""
    if not principal(request).can("read", project):
        raise missing


def _no_id(experiment_id: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={experiment_id} exists")


def _no_name(name: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'")


def _new_id(store: ServerStore, name: str) -> str:
    if name == DEFAULT_EXPERIMENT:
        return "0"
    # stable across replicas (no counter to share); a clash (after a rename) takes the next
    n = int(hashlib.sha256(name.encode()).hexdigest()[:13], 16)
    while store.mlflow_object(KIND, str(n)) is not None:
        n += 1
    return str(n)


def experiment_of_project(
    store: ServerStore,
    project: str,
    *,
    tags: dict[str, str] | None = None,
    artifact_location: str | None = None,
) -> dict[str, Any]:
    """The experiment object of ``project``, created on first sight."""
    found = store.mlflow_objects(KIND, project=project)
    if found:
        return found[0]
    now = time.time()
    data = {
        "lifecycle_stage": "active",
        "tags": dict(tags or {}),
        "creation_time": now,
        "last_update_time": now,
    }
    if artifact_location:
        data["artifact_location"] = artifact_location
    store.put_mlflow_object(KIND, _new_id(store, project), project, data, create_only=True)
    return store.mlflow_objects(KIND, project=project)[0]


def _sync(store: ServerStore) -> None:
    """Give every project that has runs an experiment row."""
    known = {o["project"] for o in store.mlflow_objects(KIND)}
    for p in store.projects():
        if p["project"] not in known:
            experiment_of_project(store, p["project"])


def experiment_by_id(store: ServerStore, experiment_id: str) -> dict[str, Any]:
    """The experiment object with ``experiment_id`` (RESOURCE_DOES_NOT_EXIST when none)."""
    experiment_id = str(experiment_id)
    obj = store.mlflow_object(KIND, experiment_id)
    if obj is None and experiment_id == "0":
        return experiment_of_project(store, DEFAULT_EXPERIMENT)
    if obj is None and experiment_id.isdigit():
        _sync(store)
        obj = store.mlflow_object(KIND, experiment_id)
    if obj is None:
        raise _no_id(experiment_id)
    return obj


def visible_experiment(request: Request, experiment_id: str) -> dict[str, Any]:
    """The experiment ``experiment_id`` if the caller may read it; else exactly what a
    missing one answers."""
    obj = experiment_by_id(sql_store(request), experiment_id)
    readable(request, obj["project"], _no_id(experiment_id))
    return obj


def experiment_json(obj: dict[str, Any]) -> dict[str, Any]:
    data = obj["data"]
    return {
        "experiment_id": obj["id"],
        "name": obj["project"],
        "artifact_location": data.get("artifact_location") or f"mlflow-artifacts:/{obj['id']}",
        "lifecycle_stage": data.get("lifecycle_stage", "active"),
        "last_update_time": int(data.get("last_update_time", obj["updated_at"]) * 1000),
        "creation_time": int(data.get("creation_time", obj["created_at"]) * 1000),
        "tags": [{"key": k, "value": v} for k, v in sorted((data.get("tags") or {}).items())],
    }


def _tags(params: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for t in json_list(params, "tags"):
        if not isinstance(t, dict) or not isinstance(t.get("key"), str) or not t["key"]:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid tag {t!r}")
        out[t["key"]] = str(t.get("value") or "")
    return out


def _save(store: ServerStore, obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = dict(obj["data"], **changes, last_update_time=time.time())
    store.put_mlflow_object(KIND, obj["id"], obj["project"], data)
    return dict(obj, data=data)


def _resolved(location: Any) -> str | None:
    """A relative local ``artifact_location`` as MLflow's server stores it: an absolute
    path (resolved against the server's working directory)."""
    if not location:
        return None
    text = str(location)
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", text) and not re.match(r"[A-Za-z]:[\\/]", text):
        return text  # has a scheme (s3:, file:, mlflow-artifacts:)
    from pathlib import Path

    return str(Path(text).expanduser().resolve())


@router.post("/create")
def create(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, who = sql_store(request), principal(request)
    name = require_str(params, "name")
    location = _resolved(json_str(params, "artifact_location"))
    tags = _tags(params)
    if len(name) > 250 or re.search(r"[\x00-\x1f]", name):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid experiment name {name!r}")
    who.require("write", name)  # a writer of the project creates its experiment
    existing = store.mlflow_objects(KIND, project=name)
    has_runs = any(p["project"] == name for p in store.projects())
    if existing or has_runs:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment(name={name}) already exists.")
    obj = experiment_of_project(
        store,
        name,
        tags=tags,
        artifact_location=location,
    )
    return {"experiment_id": obj["id"]}


@router.get("/get")
def get(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    obj = visible_experiment(request, require_str(params, "experiment_id"))
    return {"experiment": experiment_json(obj)}


@router.get("/get-by-name")
def get_by_name(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store = sql_store(request)
    name = require_str(params, "experiment_name")
    readable(request, name, _no_name(name))
    found = store.mlflow_objects(KIND, project=name)
    if not found:
        if name != DEFAULT_EXPERIMENT and not any(p["project"] == name for p in store.projects()):
            raise _no_name(name)
        found = [experiment_of_project(store, name)]
    return {"experiment": experiment_json(found[0])}


_VIEW = {"ACTIVE_ONLY": {"active"}, "DELETED_ONLY": {"deleted"}, "ALL": {"active", "deleted"}}
_VIEW.update({"1": _VIEW["ACTIVE_ONLY"], "2": _VIEW["DELETED_ONLY"], "3": _VIEW["ALL"]})
_EXP_FILTER = re.compile(
    r"""\s*(?:attributes?\.)?(?P<field>name|tags?\.(?:`[^`]+`|"[^"]+"|[\w.\-/]+)|creation_time|last_update_time)
        \s*(?P<op>=|!=|<=|>=|<|>|(?:I)?LIKE)\s*
        (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+)\s*(?:AND\s+|$)""",
    re.IGNORECASE | re.VERBOSE,
)


def _like(pattern: str, value: str, ci: bool) -> bool:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.IGNORECASE | re.DOTALL if ci else re.DOTALL) is not None


def _matches(exp: dict[str, Any], filter_string: str) -> bool:
    pos = 0
    text = filter_string.strip()
    while pos < len(text):
        m = _EXP_FILTER.match(text, pos)
        if m is None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{filter_string}'")
        pos = m.end()
        field, op, raw = m["field"], m["op"].upper(), m["value"]
        value: Any = raw[1:-1] if raw[0] in "'\"" else int(raw)
        if field.lower() == "name":
            actual: Any = exp["name"]
        elif field.lower() in ("creation_time", "last_update_time"):
            actual = exp[field.lower()]
        else:
            key = field.split(".", 1)[1].strip('`"')
            actual = {t["key"]: t["value"] for t in exp["tags"]}.get(key)
            if actual is None:
                return False
        if op in ("LIKE", "ILIKE"):
            ok = _like(str(value), str(actual), op == "ILIKE")
        else:
            ok = {
                "=": actual == value,
                "!=": actual != value,
                "<": actual < value,
                "<=": actual <= value,
                ">": actual > value,
                ">=": actual >= value,
            }[op]
        if not ok:
            return False
    return True


@router.api_route("/search", methods=["GET", "POST"])
def search(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, who = sql_store(request), principal(request)
    _sync(store)
    if who.can("read", DEFAULT_EXPERIMENT):  # MLflow's server always has experiment "0"
        experiment_of_project(store, DEFAULT_EXPERIMENT)
    stages = _VIEW.get(str(params.get("view_type") or "ACTIVE_ONLY"))
    if stages is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid view_type {params['view_type']!r}")
    exps = [
        experiment_json(o)
        for o in store.mlflow_objects(KIND)
        if o["data"].get("lifecycle_stage", "active") in stages and who.can("read", o["project"])
    ]
    if params.get("filter"):
        exps = [e for e in exps if _matches(e, str(params["filter"]))]
    # MLflow's default order: the newest experiment first, ties by id
    order = json_list(params, "order_by", of=str) or ["creation_time DESC", "experiment_id"]
    for clause in reversed(order):
        parts = str(clause).split()
        field = parts[0].split(".", 1)[-1] if parts else ""
        if field not in ("name", "experiment_id", "creation_time", "last_update_time"):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause '{clause}'")
        desc = len(parts) > 1 and parts[1].upper() == "DESC"
        exps.sort(key=functools.partial(_sort_key, field=field), reverse=desc)
    limit = max_results(params, 1000)
    offset = page_offset(params.get("page_token"))
    out: dict[str, Any] = {"experiments": exps[offset : offset + limit]}
    if offset + limit < len(exps):
        out["next_page_token"] = page_token(offset + limit)
    return out


def _sort_key(exp: dict[str, Any], field: str) -> Any:
    return int(exp["experiment_id"]) if field == "experiment_id" else exp[field]


def _writable(request: Request, params: dict[str, Any]) -> tuple[ServerStore, dict[str, Any]]:
    """An experiment the caller may delete, restore, rename or retag: it changes every
    colleague's view of the project, so the write core asks for the project's admin role."""
    obj = visible_experiment(request, require_str(params, "experiment_id"))
    core(request).require_project_admin(principal(request).actor, obj["project"])
    return sql_store(request), obj


@router.post("/delete")
def delete(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, obj = _writable(request, params)
    if obj["id"] == "0":
        raise MlflowError("INVALID_PARAMETER_VALUE", "Cannot delete the default experiment '0'.")
    _save(store, obj, lifecycle_stage="deleted")
    return {}


@router.post("/restore")
def restore(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, obj = _writable(request, params)
    _save(store, obj, lifecycle_stage="active")
    return {}


@router.post("/update")
def update(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, obj = _writable(request, params)
    new = params.get("new_name")
    if not new:
        return {}
    new = str(new)
    principal(request).require("write", new)
    if new != obj["project"]:
        if store.mlflow_objects(KIND, project=new) or any(
            p["project"] == new for p in store.projects()
        ):
            raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment(name={new}) already exists.")
        core(request).require_project_admin(principal(request).actor, new)
        store.rename_project(obj["project"], new)
        core(request).forget()  # the run -> project cache of the write core
    return {}


@router.post("/set-experiment-tag")
def set_tag(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, obj = _writable(request, params)
    key = require_str(params, "key")
    tags = dict(obj["data"].get("tags") or {}, **{key: str(params.get("value") or "")})
    _save(store, obj, tags=tags)
    return {}


@router.post("/delete-experiment-tag")
def delete_tag(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, obj = _writable(request, params)
    key = require_str(params, "key")
    tags = dict(obj["data"].get("tags") or {})
    tags.pop(key, None)
    _save(store, obj, tags=tags)
    return {}
