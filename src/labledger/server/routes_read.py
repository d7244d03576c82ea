"""Read routes of the HTTP API (``/api/v1``): projects, runs, metric series."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ..store import RunRecord, RunStore, Store, without_repro
from ._body import CheckedRoute, JsonInt
from ._json import LedgerJSONResponse, series_values
from .auth import Principal, get_store, reader, require_run

__all__ = ["MAX_BODY_FILTER", "MAX_QUERY_FILTER", "RunSearch", "router"]

# a filter in the URL (GET) stays well under what proxies and servers take in a request
# line; a longer one (say 5,000 ids in an `in` list) goes in the body of POST /runs/search
MAX_QUERY_FILTER = 4000
MAX_BODY_FILTER = 1_000_000
TOTAL_CAP = 10_001  # a page says "10,000+" beyond; counting further costs O(runs)

router = APIRouter(
    prefix="/api/v1",
    default_response_class=LedgerJSONResponse,
    tags=["read"],
    route_class=CheckedRoute,
)


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
        None,
        max_length=MAX_QUERY_FILTER,
        description='e.g. config.lr < 0.01 and status = "finished" '
        "(a longer filter goes in the body of POST /api/v1/runs/search)",
    ),
    order_by: list[str] | None = Query(None, description="sort keys; '-' prefix for descending"),
    limit: int = Query(100, ge=1, le=10000),
    offset: int = Query(0, ge=0, le=10_000_000),
    total: bool = Query(True, description="also count all matching runs"),
    total_cap: int = Query(
        TOTAL_CAP,
        ge=0,
        description="stop counting at this many runs (`total_capped` says it did); 0: count all",
    ),
    repro: bool = Query(
        False,
        description="also give each run its newest reproduction verdict as `repro` (as in `labledger ls --json`) "
        "and, when the run is a reproduction, the original's id as `repro_of`",
    ),
    include_repro: bool = Query(
        True,
        description='also list reproductions (job_type "repro", made by labledger repro); '
        "the web UI asks for false",
    ),
    store: Store = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    return _list_runs(
        request,
        store,
        who,
        RunSearch.model_construct(
            project=project,
            filter=filter,
            order_by=order_by,
            limit=limit,
            offset=offset,
            total=total,
            total_cap=total_cap,
            repro=repro,
            include_repro=include_repro,
        ),
    )


class RunSearch(BaseModel):
    """The query of ``POST /api/v1/runs/search``: the parameters of ``GET /api/v1/runs``."""

    model_config = ConfigDict(extra="forbid")

    project: str | None = Field(None, max_length=250)
    filter: str | None = Field(
        None,
        max_length=MAX_BODY_FILTER,
        description="the filter language; e.g. config.seed in (1, 2, ... 5000 values)",
    )
    order_by: list[str] | None = Field(None, description="sort keys; '-' prefix for descending")
    limit: JsonInt = Field(100, ge=1, le=10000)
    offset: JsonInt = Field(0, ge=0, le=10_000_000)
    total: StrictBool = Field(True, description="also count all matching runs")
    total_cap: JsonInt = Field(TOTAL_CAP, ge=0, description="as for GET /api/v1/runs")
    repro: StrictBool = Field(False, description="as for GET /api/v1/runs")
    include_repro: StrictBool = Field(True, description="as for GET /api/v1/runs")


@router.post(
    "/runs/search",
    summary="List runs as GET /runs does, with the query in the body (for long filters)",
)
def search_runs(
    body: RunSearch,
    request: Request,
    store: Store = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    if body.project is not None:
        who.require("read", body.project)
    return _list_runs(request, store, who, body)


def _list_runs(request: Request, store: Store, who: Principal, q: RunSearch) -> Any:
    store.reap_stale_runs(request.app.state.heartbeat_timeout)
    # only projects the caller may read (the reader dependency already checked ?project=)
    readable = None if q.project is not None else who.readable_projects()
    allowed: dict[str, Any] = {} if readable is None else {"projects": readable}
    flt = q.filter if q.include_repro else without_repro(q.filter)
    runs = store.list_runs(
        project=q.project,
        filter=flt,
        order_by=q.order_by,
        limit=q.limit,
        offset=q.offset,
        **allowed,
    )
    if q.repro:
        _add_repro(store, runs)
    out: dict[str, Any] = {"runs": runs, "limit": q.limit, "offset": q.offset}
    if q.total:
        cap = q.total_cap or None
        out["total"] = store.count_runs(project=q.project, filter=flt, cap=cap, **allowed)
        out["total_capped"] = cap is not None and out["total"] >= cap
    # returned as a Response so FastAPI's encoder does not turn NaN/inf into null
    return LedgerJSONResponse(out)


def _add_repro(store: Store, runs: list[RunRecord]) -> None:
    """Each run's newest verdict (``repro``) and, for a reproduction, its original (``repro_of``)."""
    try:
        from ..repro import repro_fields
    except ImportError:  # labledger without the repro package
        fields: dict[str, dict[str, Any]] = {}
    else:
        fields = repro_fields(store, [r["id"] for r in runs])
    for r in runs:
        f = fields.get(r["id"]) or {}
        r["repro"] = f.get("verdict")
        if f.get("role") == "reproduction" or not r.get("repro_of"):
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


@router.get("/runs/{ref}/media/keys", summary="Keys of a run's rich results, with kind and count")
def media_keys(
    ref: str,
    request: Request,
    store: RunStore = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    return {"keys": store.media_keys(require_run(request, ref, "read"))}


@router.get("/runs/{ref}/media/steps", summary="Steps at which a rich-result key was logged")
def media_steps(
    ref: str,
    request: Request,
    key: str = Query(..., min_length=1, max_length=250),
    store: RunStore = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    return {"steps": store.media_steps(require_run(request, ref, "read"), key)}


@router.get("/runs/{ref}/media", summary="A run's rich results (images, tables, ...), paged")
def media(
    ref: str,
    request: Request,
    key: str | None = Query(None, min_length=1, max_length=250),
    step: int | None = Query(None, ge=0),
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=10_000),
    store: RunStore = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    run_id = require_run(request, ref, "read")
    items = store.media(run_id, key, step=step, offset=offset, limit=limit)
    return {"run_id": run_id, "items": items}


_MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


@router.get(
    "/runs/{ref}/media/blob/{sha256}",
    summary="The bytes of one of a run's rich results",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def media_blob(
    ref: str,
    sha256: str,
    request: Request,
    format: str | None = Query(None, max_length=16),
    store: RunStore = Depends(get_store),
    who: Principal = Depends(reader),
) -> Response:
    data = store.media_blob(require_run(request, ref, "read"), sha256)
    kind = _MEDIA_TYPES.get(format or "", "application/octet-stream")
    return Response(data, media_type=kind, headers={"Cache-Control": "private, max-age=86400"})


ARROW_STREAM = "application/vnd.apache.arrow.stream"


@router.get(
    "/runs/{ref}/history",
    summary="One metric series, optionally downsampled keeping extremes (JSON, or Arrow IPC)",
    responses={200: {"content": {ARROW_STREAM: {}}}},
)
def history(
    ref: str,
    request: Request,
    key: str = Query(..., min_length=1, max_length=250),
    max_points: int | None = Query(None, ge=2, le=1_000_000),
    format: str | None = Query(None, pattern="^(json|arrow)$"),
    store: RunStore = Depends(get_store),
    who: Principal = Depends(reader),
) -> Any:
    run_id = require_run(request, ref, "read")
    h = store.history(run_id, key, max_points=max_points)
    if format == "arrow":
        # the raw arrays in one Arrow IPC stream (no per-value JSON): History.from_arrow
        # or pyarrow.ipc.open_stream reads it back
        return Response(h.to_arrow_ipc(), media_type=ARROW_STREAM)
    return {
        "run_id": run_id,
        "key": key,
        "total": h.total,
        "steps": h.steps.tolist(),
        "values": series_values(h.values.tolist()),
        "timestamps": h.timestamps.tolist(),
    }
