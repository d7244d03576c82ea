"""MLflow's model registry REST API over labledger's registry (store/_registry_sql.py).

``registered-models/*`` and ``model-versions/*`` under ``/api/2.0/mlflow`` (and the
``/ajax-api/2.0/mlflow`` mirror the MLflow UI calls). Every write goes through the write
core's registry rules (``store/_registry_core.py``); routes only translate. A version's
``source`` (``runs:/RUN/model``, ``mlflow-artifacts:/EXP/RUN/artifacts/model``,
``models:/m-...``) is resolved to the run's own content-addressed artifact version, and
``get-download-uri`` answers ``mlflow-artifacts:/artifact-versions/<id>/artifacts``: the
exact files of that version, through the artifact proxy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request

from ..._exceptions import NotFoundError, UsageError
from ..auth import core, principal
from ._common import (
    MlflowError,
    MlflowRoute,
    json_int,
    max_results,
    page_offset,
    page_token,
    read_params,
)
from ._experiments import sql_store

__all__ = ["download_uri", "router"]

router = APIRouter(route_class=MlflowRoute)
PREFIXES = ("/api/2.0/mlflow",)  # /ajax-api/2.0/mlflow/* is rewritten to these (_ajax.py)
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def _route(methods: list[str], path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for prefix in PREFIXES:
            router.add_api_route(prefix + path, fn, methods=methods)
        return fn

    return deco


def _name(params: dict[str, Any], field: str = "name") -> str:
    value = params.get(field)
    if not isinstance(value, str) or not value:
        if value is None or value == "":
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{field}'."
            )
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", f"Invalid value {value!r} for parameter '{field}' supplied."
        )
    return value


def _version(params: dict[str, Any]) -> int:
    raw = params.get("version")
    try:
        number = json_int(raw, "version")
    except MlflowError:
        number = None
    if number is None or number < 1:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"Parameter 'version' must be an integer, got '{raw}'."
            if raw not in (None, "")
            else "Missing value for required parameter 'version'.",
        )
    return number


def _tags_in(params: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for t in params.get("tags") or []:
        if isinstance(t, dict) and isinstance(t.get("key"), str):
            out[t["key"]] = "" if t.get("value") is None else str(t["value"])
    return out


def _ms(t: float | None) -> int | None:
    return None if t is None else int(t * 1000)


def download_uri(version: dict[str, Any]) -> str:
    return f"mlflow-artifacts:/artifact-versions/{version['artifact_version_id']}/artifacts"


def version_json(request: Request, v: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v["name"],
        "version": str(v["version"]),
        "creation_timestamp": _ms(v["created_at"]),
        "last_updated_timestamp": _ms(v["updated_at"]),
        "current_stage": "None",
        "description": v["description"] or "",
        "status": "READY",
        "tags": [{"key": k, "value": x} for k, x in sorted(v["tags"].items())],
        "aliases": list(v["aliases"]),
    }
    if v.get("run_id"):  # None: the run is in a project the caller may not read
        out["source"] = v["source"] or download_uri(v)
        out["run_id"] = v["run_id"]
        out["run_link"] = f"{str(request.base_url).rstrip('/')}/#/run/{v['run_id']}"
    if v.get("author"):
        out["user_id"] = v["author"]
    model_id = v["tags"].get("mlflow.labledger.model_id")
    if model_id:
        out["model_id"] = model_id
    return out


def model_json(request: Request, m: dict[str, Any]) -> dict[str, Any]:
    latest = m.get("latest_version")
    return {
        "name": m["name"],
        "creation_timestamp": _ms(m["created_at"]),
        "last_updated_timestamp": _ms(m["updated_at"]),
        "description": m["description"] or "",
        "latest_versions": [version_json(request, latest)] if latest else [],
        "tags": [{"key": k, "value": x} for k, x in sorted(m["tags"].items())],
        "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(m["aliases"].items())],
        **({"user_id": m["author"]} if m.get("author") else {}),
    }


def _missing(exc: NotFoundError) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", str(exc))


# -- registered models ----------------------------------------------------------------


@_route(["POST"], "/registered-models/create")
def create_model(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    name = _name(params)
    rules, actor = core(request), principal(request).actor
    try:
        rules.readable_model(actor, name)
    except NotFoundError:
        pass
    else:
        raise MlflowError(
            "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists."
        )
    try:
        m = rules.create_registered_model(
            actor, name, description=params.get("description"), tags=_tags_in(params)
        )
    except UsageError as exc:
        if "already exists" in str(exc):
            raise MlflowError("RESOURCE_ALREADY_EXISTS", str(exc)) from None
        raise
    return {"registered_model": model_json(request, m)}


@_route(["GET"], "/registered-models/get")
def get_model(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    m = core(request).readable_models(principal(request).actor, _name(params))[0]
    return {"registered_model": model_json(request, m)}


_CLAUSE = re.compile(
    r"""\s*(?P<field>[\w.`"]+)\s*(?P<op>=|!=|ILIKE|LIKE|IN)\s*(?P<value>'(?:[^']|'')*'|"[^"]*"|\([^)]*\))\s*""",
    re.I,
)


def _like(pattern: str, value: str, ci: bool) -> bool:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.I if ci else 0) is not None


def _matcher(filter_string: str) -> Callable[[dict[str, Any]], bool]:
    """MLflow's registry filter (``name = 'x'``, ``name LIKE 'x%'``, ``run_id IN (...)``,
    ``tags.k = 'v'``, joined by AND) as a predicate over version or model dicts."""
    text = filter_string.strip()
    if not text:
        return lambda _: True
    clauses = []
    for part in re.split(r"\s+AND\s+", text, flags=re.I):
        m = _CLAUSE.fullmatch(part)
        if m is None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter string {filter_string!r}")
        field = m["field"]
        op = m["op"].upper()
        raw = m["value"]
        if op == "IN":
            values = [v.strip().strip("'\"") for v in raw[1:-1].split(",") if v.strip()]
        else:
            values = [raw[1:-1].replace("''", "'")]
        clauses.append((field, op, values))

    def get(obj: dict[str, Any], field: str) -> str | None:
        if field.startswith(("tags.", "tag.")):
            found = obj["tags"].get(field.split(".", 1)[1].strip('`"'))
            return None if found is None else str(found)
        if field in ("name", "run_id", "source", "version"):
            v = obj.get(field)
            return None if v is None else str(v)
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter field {field!r}")

    def test(obj: dict[str, Any]) -> bool:
        for field, op, values in clauses:
            have = get(obj, field)
            if have is None:
                if op == "!=":
                    continue
                return False
            if op == "=" and have != values[0]:
                return False
            if op == "!=" and have == values[0]:
                return False
            if op in ("LIKE", "ILIKE") and not _like(values[0], have, op == "ILIKE"):
                return False
            if op == "IN" and have not in values:
                return False
        return True

    return test


def _page(items: list[Any], params: dict[str, Any], default: int) -> tuple[list[Any], str | None]:
    limit = max_results(params, default, 1000 if default <= 1000 else 200_000)
    start = page_offset(params.get("page_token"))
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, page_token(start + limit) if more else None


@_route(["GET", "POST"], "/registered-models/search")
def search_models(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    test = _matcher(str(params.get("filter") or ""))
    found = [m for m in core(request).readable_models(principal(request).actor) if test(m)]
    order = params.get("order_by") or []
    if isinstance(order, str):
        order = [order]
    for clause in reversed(order):
        field, _, direction = str(clause).partition(" ")
        key = {"name": "name", "timestamp": "updated_at", "last_updated_timestamp": "updated_at"}
        attr = key.get(field.strip(), "name")
        found.sort(key=lambda m: m[attr], reverse=direction.strip().upper() == "DESC")
    page, token = _page(found, params, 100)
    out: dict[str, Any] = {"registered_models": [model_json(request, m) for m in page]}
    if token:
        out["next_page_token"] = token
    return out


@_route(["PATCH"], "/registered-models/update")
def update_model(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    kwargs: dict[str, Any] = {}
    if "description" in params:
        kwargs["description"] = params.get("description")
    m = core(request).update_registered_model(principal(request).actor, _name(params), **kwargs)
    return {"registered_model": model_json(request, m)}


@_route(["POST"], "/registered-models/rename")
def rename_model(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    new = _name(params, "new_name")
    try:
        m = core(request).update_registered_model(
            principal(request).actor, _name(params), new_name=new
        )
    except UsageError as exc:
        if "already exists" in str(exc):
            raise MlflowError("RESOURCE_ALREADY_EXISTS", str(exc)) from None
        raise
    return {"registered_model": model_json(request, m)}


@_route(["DELETE"], "/registered-models/delete")
def delete_model(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    core(request).delete_registered_model(principal(request).actor, _name(params))
    return {}


@_route(["POST"], "/registered-models/set-tag")
def set_model_tag(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    key = _name(params, "key")
    value = params.get("value")
    core(request).update_registered_model(
        principal(request).actor, _name(params), set_tags={key: "" if value is None else value}
    )
    return {}


@_route(["DELETE"], "/registered-models/delete-tag")
def delete_model_tag(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    core(request).update_registered_model(
        principal(request).actor, _name(params), delete_tags=[_name(params, "key")]
    )
    return {}


@_route(["POST"], "/registered-models/alias")
def set_alias(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    core(request).set_model_alias(
        principal(request).actor, _name(params), _name(params, "alias"), _version(params)
    )
    return {}


@_route(["DELETE"], "/registered-models/alias")
def delete_alias(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    core(request).set_model_alias(
        principal(request).actor, _name(params), _name(params, "alias"), None
    )
    return {}


@_route(["GET"], "/registered-models/alias")
def get_by_alias(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    v = core(request).readable_version(
        principal(request).actor, _name(params), "@" + _name(params, "alias")
    )
    return {"model_version": version_json(request, v)}


@_route(["GET", "POST"], "/registered-models/get-latest-versions")
def latest_versions(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    versions = core(request).readable_versions(principal(request).actor, _name(params))
    stages = params.get("stages") or []
    if isinstance(stages, str):
        stages = [stages]
    if stages and not any(str(s).lower() == "none" for s in stages):
        return {"model_versions": []}  # labledger keeps no stages: every version is "None"
    return {"model_versions": [version_json(request, versions[-1])] if versions else []}


# -- model versions -----------------------------------------------------------------------


def _source_of(request: Request, params: dict[str, Any]) -> dict[str, Any]:
    """``run_id`` and the artifact (a name, or a logged model's version id) a source names."""
    from ._artifacts import MODEL, _artifact_name

    source = str(params.get("source") or "")
    run_id = params.get("run_id") or None
    model_id = params.get("model_id") or None
    m = re.match(r"models:/(m-[0-9a-f]+)/?$", source)
    if m and not model_id:
        model_id = m.group(1)
    if model_id:
        obj = sql_store(request).mlflow_object(MODEL, str(model_id))
        if obj is None or obj["data"].get("deleted") or not obj["run_id"]:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"logged model {model_id!r} has no source run: a labledger model version "
                "points at a finished run's artifact",
            )
        mine = [
            v
            for v in sql_store(request).list_run_artifacts(str(obj["run_id"]))["produced"]
            if (v.get("metadata") or {}).get("mlflow_owner") == f"model:{model_id}"
        ]
        mine.sort(key=lambda v: (v["created_at"], v["version"]))
        return {
            "run_ref": obj["run_id"],
            "artifact": _artifact_name(str(obj["data"].get("name") or MODEL)),
            "artifact_version_id": mine[-1]["id"] if mine else None,
            "model_id": str(model_id),
        }
    path = ""
    r = re.match(r"runs:/([0-9a-f]{32})/?(.*)$", source)
    a = re.match(r"mlflow-artifacts:/+[^/]+/([0-9a-f]{32})/artifacts/?(.*)$", source)
    if r:
        run_id, path = run_id or r.group(1), r.group(2)
    elif a:
        run_id, path = run_id or a.group(1), a.group(2)
    elif run_id and "/artifacts/" in source:
        path = source.split("/artifacts/", 1)[1]
    if not run_id:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"Invalid value {source!r} for parameter 'source' supplied: labledger registers "
            "a run's artifact (runs:/RUN/PATH, a logged model, or run_id with its path)",
        )
    first = path.strip("/").split("/")[0] if path.strip("/") else ""
    return {"run_ref": str(run_id), "artifact": _artifact_name(first) if first else ""}


@_route(["POST"], "/model-versions/create")
def create_version(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    name = _name(params)
    src = _source_of(request, params)
    tags = _tags_in(params)
    if src.get("model_id"):
        tags["mlflow.labledger.model_id"] = src["model_id"]
    rules, actor = core(request), principal(request).actor
    try:
        v = rules.create_model_version(
            actor,
            name,
            src["run_ref"],
            artifact=src["artifact"],
            artifact_version_id=src.get("artifact_version_id"),
            source=str(params.get("source") or "") or None,
            description=params.get("description"),
            tags=tags,
        )
    except NotFoundError as exc:
        raise _missing(exc) from None
    return {"model_version": version_json(request, v)}


@_route(["GET"], "/model-versions/get")
def get_version(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    v = core(request).readable_version(principal(request).actor, _name(params), _version(params))
    return {"model_version": version_json(request, v)}


@_route(["GET", "POST"], "/model-versions/search")
def search_versions(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    test = _matcher(str(params.get("filter") or ""))
    found = [v for v in core(request).readable_versions(principal(request).actor) if test(v)]
    found.sort(key=lambda v: (v["name"], -v["version"]))
    page, token = _page(found, params, 200_000)
    out: dict[str, Any] = {"model_versions": [version_json(request, v) for v in page]}
    if token:
        out["next_page_token"] = token
    return out


@_route(["PATCH"], "/model-versions/update")
def update_version(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    kwargs: dict[str, Any] = {}
    if "description" in params:
        kwargs["description"] = params.get("description")
    v = core(request).update_model_version(
        principal(request).actor, _name(params), _version(params), **kwargs
    )
    return {"model_version": version_json(request, v)}


@_route(["DELETE"], "/model-versions/delete")
def delete_version(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    core(request).delete_model_version(principal(request).actor, _name(params), _version(params))
    return {}


@_route(["POST"], "/model-versions/set-tag")
def set_version_tag(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    key = _name(params, "key")
    value = params.get("value")
    core(request).update_model_version(
        principal(request).actor,
        _name(params),
        _version(params),
        set_tags={key: "" if value is None else value},
    )
    return {}


@_route(["DELETE"], "/model-versions/delete-tag")
def delete_version_tag(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    core(request).update_model_version(
        principal(request).actor,
        _name(params),
        _version(params),
        delete_tags=[_name(params, "key")],
    )
    return {}


@_route(["GET"], "/model-versions/get-download-uri")
def get_download_uri(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    av = core(request).readable_artifact_version(
        principal(request).actor, _name(params), _version(params)
    )
    return {"artifact_uri": download_uri({"artifact_version_id": av})}
