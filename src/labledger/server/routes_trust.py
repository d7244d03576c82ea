"""Trust routes of the HTTP API (``/api/v1``): edits of a run, the audit chain.

Edits are made as the token's user and only by the run's author or an admin of its
project; the server writes the edit events and appends them to the audit chain, so no
client computes or supplies a hash. See docs/trust.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from .._exceptions import AuthError
from ..store import AuditTrail
from ._body import CheckedRoute
from ._json import LedgerJSONResponse
from .auth import Principal, core, get_store, principal, reader, require_owner, require_run

__all__ = ["install", "router"]

router = APIRouter(
    prefix="/api/v1",
    default_response_class=LedgerJSONResponse,
    tags=["trust"],
    route_class=CheckedRoute,
)


class EditBody(BaseModel):
    """Changes to a run's notes, tags or explicit summary values (null removes a summary value)."""

    model_config = ConfigDict(extra="forbid")

    notes: str | None = Field(default=None, max_length=100_000)
    add_tags: list[str] = Field(default_factory=list, max_length=1000)
    remove_tags: list[str] = Field(default_factory=list, max_length=1000)
    summary: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=10_000)


def _run_owner(ref: str, request: Request) -> str:
    """The run's full id once the caller may change it (checked before the body is read)."""
    return require_owner(request, ref)


@router.post("/runs/{ref}/edits", summary="Edit a run's notes, tags or summary (an edit event)")
def edit_run(
    body: EditBody,
    request: Request,
    run_id: str = Depends(_run_owner),
) -> Any:
    """The write core checks ownership and stores the events as the token's user."""
    from .._values import decode_json

    run_id, edits = core(request).edit_run(
        principal(request).actor,
        run_id,
        notes=body.notes,
        add_tags=body.add_tags,
        remove_tags=body.remove_tags,
        summary=decode_json(body.summary) if body.summary else None,
        reason=body.reason,
    )
    return LedgerJSONResponse({"run_id": run_id, "edits": edits})


@router.get("/runs/{ref}/verify", summary="Check one run's record against the audit chain")
def verify_run(ref: str, request: Request, store: AuditTrail = Depends(get_store)) -> Any:
    run_id = require_run(request, ref, "read")
    return store.verify_run(run_id)


def _project_reader(who: Principal, project: str | None) -> None:
    if project is not None:
        who.require("read", project)
    elif who.readable_projects() is not None:
        raise AuthError(
            f"user {who.user!r} may not read every project: name one with ?project=", 403
        )


@router.get("/audit/verify", summary="Re-derive every hash of the audit chain")
def audit_verify(
    request: Request,
    project: str | None = Query(None, max_length=250),
    head: str | None = Query(None, pattern=r"^[0-9a-f]{64}$"),
    store: AuditTrail = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    _project_reader(who, project)
    return store.audit_verify(project=project, head=head)


@router.get("/audit/head", summary="The newest entry hash of each project's audit chain")
def audit_head(
    request: Request,
    project: str | None = Query(None, max_length=250),
    store: AuditTrail = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    heads = store.audit_head(project=project)
    return {"heads": [h for h in heads if who.can("read", h["project"])]}


def install(app: FastAPI) -> None:
    app.include_router(router)
