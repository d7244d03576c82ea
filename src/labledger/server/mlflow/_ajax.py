"""The routes only MLflow's web UI (and some clients) call, under ``/ajax-api/2.0/mlflow``.

Every other ``/ajax-api/...`` path is the same route as under ``/api/...`` (the app
rewrites the prefix, :func:`rewrite_ajax`); these four exist only here: the history of
one metric over several runs (``metrics/get-history-bulk``, ``-bulk-interval``, sampled
to a step window), ``upload-artifact`` (one file's bytes into a run's artifacts) and
``experiments/search-datasets`` (the datasets the runs of some experiments used).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..._exceptions import RunNotFoundError
from ..auth import core, principal
from ._common import (
    MlflowError,
    MlflowRoute,
    float_to_json,
    json_int,
    json_list,
    read_params,
    require_str,
)
from ._experiments import experiment_by_id, readable, sql_store

__all__ = ["AjaxRewrite", "router", "ui_router"]

router = APIRouter(prefix="/ajax-api/2.0/mlflow", route_class=MlflowRoute)
# MLflow's web UI downloads a run's file from the server's root
ui_router = APIRouter(route_class=MlflowRoute)

_OWN = (
    "/ajax-api/2.0/mlflow/metrics/get-history-bulk",
    "/ajax-api/2.0/mlflow/upload-artifact",
    "/ajax-api/2.0/mlflow/experiments/search-datasets",
)


class AjaxRewrite:
    """``/ajax-api/X`` is ``/api/X`` (MLflow's UI prefix), except the UI-only routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope.get("path", "")
            if path.startswith("/ajax-api/") and not path.startswith(_OWN):
                scope = dict(scope)
                scope["path"] = "/api/" + path[len("/ajax-api/") :]
                scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def _run_ids(params: dict[str, Any], op: str) -> list[str]:
    """The runs a bulk history request names (1 to 100), in MLflow's words for ``op``."""
    ids = json_list(params, "run_ids", of=str) or json_list(params, "run_id", of=str)
    if not ids:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            "GetMetricHistoryBulk request must specify at least one run_id."
            if op == "bulk"
            else "Missing value for required parameter 'run_ids'.",
        )
    if len(ids) > 100:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received"
            f" {len(ids)} run_ids."
            if op == "bulk"
            else "GetMetricHistoryBulkInterval request must specify at most 100 run_ids.",
        )
    return ids


def _runs(request: Request, ids: list[str]) -> list[str]:
    rules, actor = core(request), principal(request).actor
    out = []
    for r in ids:
        try:
            out.append(rules.resolve(actor, r, "read")[0])
        except RunNotFoundError:
            raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Run with id={r} not found") from None
    return out


def _points(
    request: Request, run_id: str, key: str, lo: int | None, hi: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    store = sql_store(request)
    if key not in (store.get_run(run_id).get("metrics") or {}):
        empty = np.array([])
        return empty, empty, empty
    h = store.history(run_id, key)
    keep = np.ones(len(h.steps), dtype=bool)
    if lo is not None:
        keep &= h.steps >= lo
    if hi is not None:
        keep &= h.steps <= hi
    return h.steps[keep], h.values[keep], h.timestamps[keep]


def _json(run_id: str, key: str, s: Any, v: Any, t: Any) -> dict[str, Any]:
    return {
        "key": key,
        "value": float_to_json(float(v)),
        "timestamp": round(float(t) * 1000),
        "step": int(s),
        "run_id": run_id,
    }


@router.get("/metrics/get-history-bulk")
def history_bulk(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    ids = _run_ids(params, "bulk")
    key = params.get("metric_key")
    if not key or not isinstance(key, str):
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", "GetMetricHistoryBulk request must specify a metric_key."
        )
    limit = json_int(params.get("max_results"), "max_results", 25000)
    assert limit is not None
    out: list[dict[str, Any]] = []
    for run_id in sorted(_runs(request, ids)):  # MLflow's order: by run, then as logged
        steps, vals, ts = _points(request, run_id, key, None, None)
        for s, v, t in zip(steps, vals, ts, strict=True):
            if len(out) >= limit:
                break
            out.append(_json(run_id, key, s, v, t))
    return {"metrics": out}


@router.get("/metrics/get-history-bulk-interval")
def history_bulk_interval(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    ids = _run_ids(params, "interval")
    key = require_str(params, "metric_key")
    lo = json_int(params.get("start_step"), "start_step")
    hi = json_int(params.get("end_step"), "end_step")
    if (lo is None) != (hi is None):
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            "If either start step or end step are specified, both must be specified.",
        )
    if lo is not None and hi is not None and lo > hi:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"end_step must be greater than start_step. Found start_step={lo} and end_step={hi}.",
        )
    limit = json_int(params.get("max_results"), "max_results", 320)
    assert limit is not None
    if not 0 < limit <= 2500:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", f"max_results must be between 1 and 2500, got {limit}"
        )
    out: list[dict[str, Any]] = []
    for run_id in _runs(request, ids):
        steps, vals, ts = _points(request, run_id, key, lo, hi)
        if len(steps) > limit:
            # evenly spaced points, the first and last always kept (as MLflow samples)
            idx = np.unique(np.linspace(0, len(steps) - 1, limit).round().astype(int))
            steps, vals, ts = steps[idx], vals[idx], ts[idx]
        out.extend(_json(run_id, key, s, v, t) for s, v, t in zip(steps, vals, ts, strict=True))
    return {"metrics": out}


@router.post("/upload-artifact")
async def upload_artifact(request: Request) -> Any:
    """One file (the request body) into ``path`` of run ``run_uuid``'s artifacts."""
    from starlette.concurrency import run_in_threadpool

    from ._artifacts import upload

    run_id, path = _run_and_path(request)
    if request.headers.get("content-length") in (None, "0") and not request.headers.get(
        "transfer-encoding"
    ):
        await run_in_threadpool(_run_artifact, request, run_id, path, "write")
        raise MlflowError("INVALID_PARAMETER_VALUE", "Request must specify data.")
    # refuses an unsafe path before the body is read
    full = await run_in_threadpool(_run_artifact, request, run_id, path, "write")
    return await upload(full, request)


def _run_and_path(request: Request) -> tuple[str, str]:
    """``run_uuid`` and ``path`` from the query string, in MLflow's words when missing."""
    run_id = request.query_params.get("run_uuid") or request.query_params.get("run_id") or ""
    path = request.query_params.get("path") or ""
    if not run_id:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Request must specify run_uuid.")
    if not path:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Request must specify path.")
    return run_id, path


def _run_artifact(request: Request, run_id: str, path: str, role: str) -> str:
    """The artifact proxy's path of ``path`` in run ``run_id``'s artifacts (checked)."""
    from ._artifacts import _owner, _safe
    from ._experiments import experiment_of_project

    _safe(path)
    rules, actor = core(request), principal(request).actor
    try:
        if role == "write":
            project = rules.owned(actor, run_id)[1]
        else:
            project = rules.resolve(actor, run_id, "read")[1]
    except RunNotFoundError:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Run with id={run_id} not found") from None
    exp = experiment_of_project(sql_store(request), project)["id"]
    full = f"{exp}/{run_id}/artifacts/{path.lstrip('/')}"
    _owner(request, full, role)
    return full


@ui_router.get("/get-artifact")
def get_artifact(request: Request) -> Any:
    """One file of a run's artifacts, as MLflow's web UI downloads it."""
    from ._artifacts import download

    run_id, path = _run_and_path(request)
    return download(_run_artifact(request, run_id, path, "read"), request)


@router.post("/experiments/search-datasets")
def search_datasets(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    """``dataset_summaries``: each dataset (name, digest, context) the runs of the
    experiments logged as an input, once per experiment."""
    store = sql_store(request)
    out: list[dict[str, Any]] = []
    ids = json_list(params, "experiment_ids", of=str)
    if not ids:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            "SearchDatasets request must specify at least one experiment_id.",
        )
    if len(ids) > 20:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"SearchDatasets request cannot specify more than 20 experiment_ids. Received"
            f" {len(ids)} experiment_ids.",
        )
    for eid in ids:
        exp = experiment_by_id(store, str(eid))
        missing = MlflowError("RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={eid} exists")
        readable(request, exp["project"], missing)
        seen: set[tuple[Any, ...]] = set()
        for run in store.list_runs(project=exp["project"]):
            for d in run.get("datasets") or []:
                if not isinstance(d, dict) or not d.get("name"):
                    continue
                item = (d.get("name"), d.get("digest") or d.get("sha256"), d.get("context"))
                if item in seen:
                    continue
                seen.add(item)
                summary = {"experiment_id": str(eid), "name": item[0], "digest": item[1] or ""}
                if item[2]:
                    summary["context"] = item[2]
                out.append(summary)
    return {"dataset_summaries": out}


def model_version_artifact(request: Request) -> Any:
    """One file of a registered model version, as MLflow's web UI downloads it."""
    from ._artifacts import _safe, download
    from ._registry import _name, _version

    params = dict(request.query_params)
    path = params.get("path") or ""
    if not path:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Request must specify path.")
    parts = _safe(path)
    av = core(request).readable_artifact_version(
        principal(request).actor, _name(params), _version(params)
    )
    return download(f"artifact-versions/{av}/artifacts/{'/'.join(parts)}", request)


# MLflow's UI (and MLflow's tests) call it with a doubled slash, which MLflow's server takes
for _path in ("/model-versions/get-artifact", "//model-versions/get-artifact"):
    ui_router.add_api_route(_path, model_version_artifact, methods=["GET"])
