"""The MLflow tracking REST API on ``labledger server`` (``/api/2.0/mlflow/...``).

The unchanged ``mlflow`` client (``MLFLOW_TRACKING_URI=http://host:port``, token in
``MLFLOW_TRACKING_TOKEN``) logs into labledger: experiments are projects, runs are runs,
params are typed config, and every write takes the same ``Store`` path as labledger's
own client. See docs/migrating.md for the mapping.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request

from ... import __version__
from ._common import MlflowError, MlflowRoute

__all__ = ["MLFLOW_API_VERSION", "MLFLOW_PREFIXES", "install"]

_fallback = APIRouter(route_class=MlflowRoute)

# the MLflow version whose REST API this one matches: the client pinned by constraints.txt
MLFLOW_API_VERSION = "3.17.2"

# every prefix MLflow's clients and UI call; an unknown route under any of them answers
# MLflow's shape (the client then reports ENDPOINT_NOT_FOUND, not an internal error)
MLFLOW_PREFIXES = (
    "/api/2.0/mlflow",
    "/api/3.0/mlflow",
    "/api/2.0/mlflow-artifacts",
    "/ajax-api/2.0/mlflow",
    "/ajax-api/3.0/mlflow",
    "/ajax-api/2.0/mlflow-artifacts",
)


def _not_found(rest: str, request: Request) -> Any:
    raise MlflowError(
        "ENDPOINT_NOT_FOUND",
        f"labledger does not implement {request.method} {request.url.path}",
    )


for _prefix in MLFLOW_PREFIXES:
    _fallback.add_api_route(
        _prefix + "/{rest:path}", _not_found, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]
    )


def install(app: FastAPI) -> None:
    """Mount the MLflow routers (tracking, registry, logged models, artifact proxy, the
    UI's ``/ajax-api`` routes) on ``app``."""
    from ._ajax import AjaxRewrite, ui_router
    from ._ajax import router as ajax
    from ._artifacts import artifacts_router, models_router, tracking_artifacts_router
    from ._experiments import router as experiments
    from ._registry import router as registry
    from ._runs import metrics_router
    from ._runs import router as runs

    for r in (ajax, ui_router, registry, experiments, runs, metrics_router, models_router):
        app.include_router(r, include_in_schema=False)
    app.include_router(tracking_artifacts_router, include_in_schema=False)
    app.include_router(artifacts_router, include_in_schema=False)
    app.include_router(_fallback, include_in_schema=False)
    app.add_middleware(AjaxRewrite)

    @app.get("/version", include_in_schema=False)
    def version() -> Any:
        from fastapi.responses import PlainTextResponse

        # MLflow's client asks the server's version to pick API variants (an older one
        # switches features off): answer the MLflow version this API matches
        return PlainTextResponse(MLFLOW_API_VERSION, headers={"X-Labledger-Version": __version__})
