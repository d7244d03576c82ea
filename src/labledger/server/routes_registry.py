"""The model registry on the native API (``/api/v1/models``) and its web page (``/models``).

Every write is the write core's (``store/_registry_core.py``), as the token's user: a
project's writers register a finished run's artifact version; an alias move is an edit
event by the caller, chained into the audit log. The MLflow routes
(``server/mlflow/_registry.py``) are another skin over the same rules.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from .._exceptions import UsageError
from ._body import CheckedRoute
from ._json import LedgerJSONResponse
from .auth import core, principal
from .errors import ApiError

__all__ = ["install", "install_page", "router"]

router = APIRouter(
    prefix="/api/v1",
    default_response_class=LedgerJSONResponse,
    tags=["registry"],
    route_class=CheckedRoute,
    # authenticate before the body is read: no token is a 401 whatever the body says
    dependencies=[Depends(principal)],
)


class ModelBody(BaseModel):
    """A new registered model (it takes the project of its first version)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=250)
    description: str | None = Field(default=None, max_length=100_000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)


class VersionBody(BaseModel):
    """A new version: a finished run and one of its artifact versions (id or name)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1, max_length=250)
    artifact_version_id: str | None = Field(default=None, max_length=32)
    artifact: str | None = Field(default=None, max_length=300)
    description: str | None = Field(default=None, max_length=100_000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)


class AliasBody(BaseModel):
    """Where an alias points (null deletes it)."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, le=2**31 - 1)


def _conflict(exc: UsageError) -> None:
    """A model that exists already, or a run that has not finished: 409, not a bad request."""
    text = str(exc)
    if "already exists" in text or "finished run only" in text:
        raise ApiError(409, text, "conflict") from None
    raise exc


@router.get("/models", summary="Registered models the caller may read (with aliases, latest)")
def list_models(request: Request) -> list[dict[str, Any]]:
    return core(request).shown_models(principal(request).actor)


@router.post("/models", summary="Create a registered model")
def create_model(body: ModelBody, request: Request) -> dict[str, Any]:
    try:
        return core(request).create_registered_model(
            principal(request).actor, body.name, description=body.description, tags=body.tags
        )
    except UsageError as exc:
        _conflict(exc)
        raise


@router.get("/models/{name}", summary="One registered model")
def get_model(name: str, request: Request) -> dict[str, Any]:
    return core(request).shown_models(principal(request).actor, name)[0]


@router.get(
    "/models/{name}/versions",
    summary="The versions of a registered model, each with its source run and artifact",
)
def list_versions(name: str, request: Request) -> list[dict[str, Any]]:
    return core(request).described_versions(principal(request).actor, name)


@router.get(
    "/models/{name}/alias-history",
    summary="Every alias move of a model, oldest first (edit events in the audit chain)",
)
def alias_history(name: str, request: Request) -> list[dict[str, Any]]:
    return core(request).model_alias_history(principal(request).actor, name)


@router.get(
    "/model-versions",
    summary="Model versions that point at a run (every readable version without run_id)",
)
def versions_of_run(
    request: Request, run_id: str | None = Query(None, min_length=1, max_length=250)
) -> list[dict[str, Any]]:
    return core(request).versions_of_run(principal(request).actor, run_id)


@router.post("/models/{name}/versions", summary="Register a finished run's artifact version")
def create_version(name: str, body: VersionBody, request: Request) -> dict[str, Any]:
    try:
        return core(request).create_model_version(
            principal(request).actor,
            name,
            body.run_id,
            artifact=body.artifact,
            artifact_version_id=body.artifact_version_id,
            description=body.description,
            tags=body.tags,
        )
    except UsageError as exc:
        _conflict(exc)
        raise


@router.put("/models/{name}/aliases/{alias}", summary="Move (or delete) an alias: an edit event")
def set_alias(name: str, alias: str, body: AliasBody, request: Request) -> dict[str, Any]:
    return core(request).set_model_alias(principal(request).actor, name, alias, body.version)


def install(app: FastAPI) -> None:
    app.include_router(router)


# -- the web page -----------------------------------------------------------------------


def _page(request: Request) -> str:
    e = html.escape
    rules, actor = core(request), principal(request).actor
    rows = []
    for m in rules.readable_models(actor):
        by_version: dict[int, list[str]] = {}
        for a, n in m["aliases"].items():
            by_version.setdefault(int(n), []).append(a)
        for v in reversed(rules.readable_versions(actor, m["name"])):
            run = v["run_id"]  # None: in a project the viewer may not read
            aliases = " ".join(
                f'<span class="badge">@{e(a)}</span>'
                for a in sorted(by_version.get(v["version"], []))
            )
            run_cell = (
                f'<a class="mono" href="/#/run/{quote(run)}">{e(run[:8])}</a>'
                if run
                else '<span class="muted">not readable</span>'
            )
            rows.append(
                "<tr>"
                f"<td>{e(m['name'])}</td><td>v{v['version']} {aliases}</td>"
                f"<td>{run_cell}</td>"
                f'<td class="mono">{e((v["artifact_version_id"] or "")[:12])}</td>'
                f"<td>{e(m.get('project') or '')}</td><td>{e(v.get('author') or '')}</td>"
                f"<td>{e(v.get('description') or '')}</td></tr>"
            )
    body = (
        "\n".join(rows) or '<tr><td colspan="7" class="muted">No registered models yet.</td></tr>'
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Model registry · labledger</title>"
        '<link rel="stylesheet" href="/static/app.css"></head><body>'
        '<main class="page"><p><a href="/">← runs</a></p><h1>Model registry</h1>'
        '<p class="muted">Every version is a finished run\'s content-addressed artifact: '
        "follow the run link for the numbers, the config and the lineage behind it.</p>"
        "<table><thead><tr><th>Model</th><th>Version</th><th>Run</th><th>Artifact version</th>"
        "<th>Project</th><th>Registered by</th><th>Description</th></tr></thead>"
        f"<tbody>{body}</tbody></table></main></body></html>"
    )


def install_page(app: FastAPI) -> None:
    """``/models``: every readable model's versions, aliases and a link to each run."""

    @app.get("/models", include_in_schema=False)
    def models_page(request: Request) -> HTMLResponse:
        return HTMLResponse(_page(request), headers={"Cache-Control": "no-store"})
