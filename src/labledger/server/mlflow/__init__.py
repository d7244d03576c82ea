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

__all__ = ["install"]

_fallback = APIRouter(route_class=MlflowRoute)


@_fallback.api_route(
    "/api/2.0/mlflow/{rest:path}", methods=["GET", "POST", "PATCH", "DELETE", "PUT"]
)
def _not_found(rest: str, request: Request) -> Any:
    raise MlflowError(
        "ENDPOINT_NOT_FOUND",
        f"labledger does not implement {request.method} /api/2.0/mlflow/{rest}",
    )


def install(app: FastAPI) -> None:
    """Mount the MLflow routers (tracking, logged models, artifact proxy) on ``app``."""
    from ._artifacts import artifacts_router, models_router, tracking_artifacts_router
    from ._experiments import router as experiments
    from ._registry import router as registry
    from ._runs import metrics_router
    from ._runs import router as runs

    for r in (
        registry,
        experiments,
        runs,
        metrics_router,
        models_router,
        tracking_artifacts_router,
    ):
        app.include_router(r, include_in_schema=False)
    app.include_router(artifacts_router, include_in_schema=False)
    app.include_router(_fallback, include_in_schema=False)

    @app.get("/version", include_in_schema=False)
    def version() -> Any:
        from fastapi.responses import PlainTextResponse

        # MLflow's client asks the server's version to pick API variants: answer as MLflow 3
        return PlainTextResponse("3.0.0", headers={"X-Labledger-Version": __version__})
