"""The OpenAPI description, made exact: typed success bodies and documented error answers.

Routes answer through :class:`~labledger.server._json.LedgerJSONResponse` (so NaN and
infinities survive), which FastAPI describes as a bare ``string``; and every error
goes through one handler (:mod:`labledger.server.errors`) whose body FastAPI does not
know. :func:`install` post-processes the generated description once:

- each JSON success body gets its schema (:data:`BODIES`, by method and path; routes
  with a ``response_model`` keep theirs; any other JSON answer is at least an object);
- each operation documents the error answers it can give (400, 401, 403, 404, 409,
  413, 422, 503), all with the one error shape ``{code, message, details}``;
- a ``HEAD`` answer has no body, errors included;
- path and query parameters that the server checks against a rule (sha256 digests,
  artifact names, aliases and references) carry that rule as a ``pattern``
  (:data:`PARAMS`), so a request the description calls valid is never refused for it.

``tests/server/test_schemathesis.py`` checks the real answers against this description.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from .._limits import MAX_TAG_LENGTH, MAX_TAGS

__all__ = ["BODIES", "ERROR_BODY", "PARAMS", "install"]

ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "title": "ErrorBody",
    "description": "Every error answer: a stable code, a readable message, details.",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "string", "examples": ["not_found", "invalid_request", "forbidden"]},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
}

_ERRORS = {
    "400": (
        "Bad request: a body that is not JSON, not UTF-8, nested too deep or holding a "
        "number no back end stores; or a value that breaks a rule this description cannot "
        "state: a filter that does not parse, series of unequal lengths, bytes that do not "
        "hash to their digest, a run of another project"
    ),
    "401": "No valid token (when the server has tokens)",
    "403": "The token's user lacks the role on the project",
    "404": "Not found (or not readable by the caller: answers never depend on what it cannot read)",
    "409": "Conflict (a run id already taken)",
    "413": "The body is too large",
    "422": "The request does not match this description",
    "503": "The store is unavailable; retry later",
}

_OBJ: dict[str, Any] = {"type": "object"}
_STR_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_NUM_OR_STR: dict[str, Any] = {"anyOf": [{"type": "number"}, {"type": "string"}]}
_RUN: dict[str, Any] = {
    "type": "object",
    "title": "Run",
    "required": ["id", "project", "name", "status"],
    "properties": {
        "id": {"type": "string"},
        "project": {"type": "string"},
        "name": {"type": "string"},
        "status": {"type": "string"},
        "config": _OBJ,
        "summary": _OBJ,
        "env": _OBJ,
        "tags": {"type": "array"},
        "metrics": _OBJ,
    },
}


# an artifact (or project) name as ``store._artifact_paths.validate_name`` takes it:
# letters, digits, ``._-``, starting with a letter or digit, no "..", 1..128 characters
_NAME_PART = r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)){0,127}"
_SHA256: dict[str, Any] = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_ARTIFACT_NAME: dict[str, Any] = {"type": "string", "pattern": f"^{_NAME_PART}$"}
# an alias is a name that does not look like a version (v3, 3) and is not "latest"
_ALIAS: dict[str, Any] = {
    "type": "string",
    "pattern": f"^(?!v?[0-9]+$)(?!latest$){_NAME_PART}$",
}
# ``parse_ref``: [project/]name[:vN|:N|:alias], surrounding white space ignored
_REF: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 400,
    "pattern": rf"^\s*(?:{_NAME_PART}/)?{_NAME_PART}(?::(?:{_NAME_PART})?)?\s*$",
}

# (path prefix, parameter name) -> its schema, for parameters checked by a rule
PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/v1/", "sha256"): _SHA256,
    ("/api/v1/projects/{project}/artifact", "project"): _ARTIFACT_NAME,
    ("/api/v1/projects/{project}/artifact", "name"): _ARTIFACT_NAME,
    ("/api/v1/projects/{project}/artifact", "alias"): _ALIAS,
    ("/api/v1/projects/{project}/artifact", "ref"): _REF,
}


def _param_schema(path: str, name: str) -> dict[str, Any] | None:
    for (prefix, param), schema in PARAMS.items():
        if param == name and path.startswith(prefix):
            return schema
    return None


def _obj(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **optional},
    }


# (method, path) -> schema of the JSON success body
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/v1/projects"): _obj({"projects": {"type": "array", "items": _OBJ}}),
    ("get", "/api/v1/models"): {"type": "array", "items": _OBJ},
    ("get", "/api/v1/models/{name}/versions"): {"type": "array", "items": _OBJ},
    ("get", "/api/v1/models/{name}"): _obj(
        {"name": {"type": "string"}, "aliases": _OBJ}, latest_version={"type": ["object", "null"]}
    ),
    ("get", "/api/v1/models/{name}/alias-history"): {"type": "array", "items": _OBJ},
    ("get", "/api/v1/model-versions"): {"type": "array", "items": _OBJ},
    ("get", "/api/v1/runs"): _obj(
        {
            "runs": {"type": "array", "items": _RUN},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
        total={"type": "integer"},
        total_capped={"type": "boolean"},
    ),
    ("post", "/api/v1/runs"): _obj(
        {"id": {"type": "string"}, "created": {"type": "boolean"}}, policy=_OBJ
    ),
    ("post", "/api/v1/runs/search"): _obj(
        {
            "runs": {"type": "array", "items": _RUN},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
        total={"type": "integer"},
        total_capped={"type": "boolean"},
    ),
    ("get", "/api/v1/runs/{ref}"): _RUN,
    ("get", "/api/v1/runs/{ref}/metrics"): _obj({"keys": _STR_LIST}),
    ("get", "/api/v1/runs/{ref}/history"): _obj(
        {
            "run_id": {"type": "string"},
            "key": {"type": "string"},
            "total": {"type": "integer"},
            "steps": {"type": "array", "items": {"type": "integer"}},
            "values": {"type": "array", "items": _NUM_OR_STR},
            "timestamps": {"type": "array", "items": {"type": "number"}},
        }
    ),
    ("post", "/api/v1/runs/{run_id}/batches"): _obj(
        {"applied": {"type": "boolean"}, "points": {"type": "integer"}}, policy=_OBJ
    ),
    ("post", "/api/v1/runs/{ref}/heartbeat"): _obj(
        {"run_id": {"type": "string"}, "heartbeat_at": {"type": "number"}}
    ),
    ("put", "/api/v1/blobs"): _obj({"sha256": {"type": "string"}, "size": {"type": "integer"}}),
    ("get", "/api/v1/whoami"): _obj({"user": {"type": "string"}, "roles": _OBJ}),
    ("post", "/api/v1/admin/reap"): _obj({"crashed": _STR_LIST}),
}


# other success answers than FastAPI's default one: (method, path) -> (status, description)
EXTRA: dict[tuple[str, str], tuple[str, str]] = {
    ("post", "/api/v1/runs"): ("200", "The run existed already (a retried creation)"),
    ("put", "/api/v1/artifact-blobs/{sha256}"): ("201", "The blob was stored"),
}

# a metric key as ``labledger._values.check_key`` takes it
_KEY: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 250,
    "pattern": r"^(?!/)(?!.*//)(?!.*/$)[^\x00-\x1f\x7f]+$",
}

# a tag as ``labledger._limits.check_tags`` takes it
_TAGS: dict[str, Any] = {
    "maxItems": MAX_TAGS,
    "items": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TAG_LENGTH,
        "pattern": r"^[^\x00]+$",
    },
}

# (component, property) -> extra keywords for that property's schema (for an optional
# property, for its non-null branch)
PROPERTIES: dict[tuple[str, str], dict[str, Any]] = {
    ("BatchBody", "metrics"): {"propertyNames": _KEY},
    ("RunCreate", "tags"): _TAGS,
    ("RunUpdate", "tags"): _TAGS,
}


def _extend(prop: dict[str, Any], extra: dict[str, Any]) -> None:
    branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
    (branches[0] if branches else prop).update(extra)


# the largest float64 below 2**63: a reader of JSON numbers as doubles (JavaScript, most
# fuzzers) reads 2**63 - 1 as 2**63, which no int64 column holds
_INT64_DESCRIBED_MAX = 2**63 - 1024


def _int64_bounds(node: Any) -> None:
    """Describe int64 maxima as a bound a double holds exactly (the server keeps 2**63 - 1)."""
    if isinstance(node, dict):
        # (a JsonInt field's bound is rendered as the float 2**63)
        if node.get("maximum") in (2**63 - 1, float(2**63)):
            node["maximum"] = _INT64_DESCRIBED_MAX
        for value in node.values():
            _int64_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _int64_bounds(value)


def _request_models(schemas: dict[str, Any]) -> None:
    """Components of bodies a route reads itself (a batch: JSON or binary, so FastAPI
    does not see its model) and names by ``$ref`` in its ``openapi_extra``."""
    from .routes_write import BatchBody

    top = BatchBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, schema in top.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas.setdefault("BatchBody", top)


def _describe(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ERROR_BODY
    _request_models(schemas)
    _int64_bounds(schemas)
    for (component, prop), keywords in PROPERTIES.items():
        if component in schemas:
            _extend(schemas[component]["properties"][prop], keywords)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            for param in op.get("parameters", []):
                schema = _param_schema(path, param.get("name", ""))
                if schema is not None:
                    param["schema"] = dict(schema)
            extra = EXTRA.get((method, path))
            if extra is not None:
                first = next(a for s, a in responses.items() if s.startswith("2"))
                responses[extra[0]] = {**first, "description": extra[1]}
            for status, answer in list(responses.items()):
                if not status.startswith("2"):
                    continue
                if method == "head":
                    answer.pop("content", None)
                    continue
                content = answer.get("content") or {}
                media = content.get("application/json")
                if media is None:
                    continue
                schema = media.get("schema") or {}
                typed = BODIES.get((method, path))
                if typed is not None:
                    media["schema"] = typed
                elif schema in ({}, {"type": "string"}):  # a route answering `Any`
                    media["schema"] = _OBJ
            if path.startswith("/api/"):
                for status, text in _ERRORS.items():
                    responses[status] = {"description": text}
                    if method != "head":
                        responses[status]["content"] = {"application/json": {"schema": error_ref}}
    return spec


def install(app: FastAPI) -> None:
    """Serve the exact description at ``/openapi.json`` (built once, on first use)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _describe(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
