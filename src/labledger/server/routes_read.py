"""Read routes of the HTTP API (``/api/v1``): projects, runs, metric series."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ..store import RunStore, Store
from ._json import LedgerJSONResponse, series_values
from .auth import Principal, get_store, reader, require_run

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", default_response_class=LedgerJSONResponse, tags=["read"])


@router.get("/projects", summary="Projects with their run counts")
def list_projects(store: RunStore = Depends(get_store), who: Principal = Depends(reader)) -> Any:
    allowed = who.readable_projects()
    projects = store.projects()
    if allowed is not None:
        projects = [p for p in projects if p["project"] in allowed]
    return {"projects": projects}


@router.get("/runs", summary="List runs with the filter language, ordering and paging")
def list_runs(
    request: Request,
    project: str | None = Query(None, max_length=250),
    filter: str | None = Query(
        None, max_length=4000, description='e.g. config.lr < 0.01 and status = "finished"'
    ),
    order_by: list[str] | None = Query(None, description="sort keys; '-' prefix for descending"),
    limit: int = Query(100, ge=1, le=10000),
    offset: int = Query(0, ge=0, le=10_000_000),
    total: bool = Query(True, description="also count all matching runs"),
    repro: bool = Query(
        False,
        description="also give each run its newest reproduction verdict as `repro` (as in `labledger ls --json`) "
        "and, when the run is a reproduction, the original's id as `repro_of`",
    ),
    store: Store = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    store.reap_stale_runs(request.app.state.heartbeat_timeout)
    # only projects the caller may read (the reader dependency already checked ?project=)
    readable = None if project is not None else who.readable_projects()
    allowed: dict[str, Any] = {} if readable is None else {"projects": readable}
    runs = store.list_runs(
        project=project, filter=filter, order_by=order_by, limit=limit, offset=offset, **allowed
    )
    if repro:
        _add_repro(store, runs)
    out: dict[str, Any] = {"runs": runs, "limit": limit, "offset": offset}
    if total:
        out["total"] = store.count_runs(project=project, filter=filter, **allowed)
    # returned as a Response so FastAPI's encoder does not turn NaN/inf into null
    return LedgerJSONResponse(out)


def _add_repro(store: Store, runs: list[dict[str, Any]]) -> None:
    """Each run's newest verdict (``repro``) and, for a reproduction, its original (``repro_of``)."""
    try:
        from ..repro._display import repro_fields
    except ImportError:  # labledger without the repro package
        fields: dict[str, dict[str, Any]] = {}
    else:
        fields = repro_fields(store, [r["id"] for r in runs])
    for r in runs:
        f = fields.get(r["id"]) or {}
        r["repro"] = f.get("verdict")
        r["repro_of"] = f.get("reproduction_of") if f.get("role") == "reproduction" else None


@router.get("/runs/{ref}", summary="One run by id, unique id prefix or name")
def get_run(
    ref: str,
    request: Request,
    store: RunStore = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    run_id = require_run(request, ref, "read")
    store.reap_stale_runs(request.app.state.heartbeat_timeout)
    return LedgerJSONResponse(store.get_run(run_id))


@router.get("/runs/{ref}/metrics", summary="Metric keys of a run")
def metric_keys(
    ref: str,
    request: Request,
    store: RunStore = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    return {"keys": store.metric_keys(require_run(request, ref, "read"))}


@router.get(
    "/runs/{ref}/history", summary="One metric series, optionally downsampled keeping extremes"
)
def history(
    ref: str,
    request: Request,
    key: str = Query(..., min_length=1, max_length=250),
    max_points: int | None = Query(None, ge=2, le=1_000_000),
    store: RunStore = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    run_id = require_run(request, ref, "read")
    h = store.history(run_id, key, max_points=max_points)
    return {
        "run_id": run_id,
        "key": key,
        "total": h.total,
        "steps": h.steps.tolist(),
        "values": series_values(h.values.tolist()),
        "timestamps": h.timestamps.tolist(),
    }
