"""The FastAPI application factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from .. import __version__
from .._settings import setting
from ..store import Store, open_store
from .errors import install_error_handlers

__all__ = ["create_app"]


def create_app(
    store_uri: str | None = None,
    artifacts_uri: str | None = None,
    *,
    store: Store | None = None,
    ui: bool = True,
    heartbeat_timeout: float | None = None,
) -> FastAPI:
    """Build the server app over ``store_uri`` (migrations run at start-up) and ``artifacts_uri``.

    The app keeps no state of its own besides the store connection pool, so several
    replicas can serve one database and one object store.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "store", None) is None:
            app.state.store = open_store(store_uri)
        from ..store import MediaBlobOwner

        if isinstance(app.state.store, MediaBlobOwner) and app.state.artifacts_uri:
            # rich results' bytes: the server's blob store
            app.state.store.use_artifacts(str(app.state.artifacts_uri))
        yield
        if store is None:
            app.state.store.close()

    app = FastAPI(
        title="labledger",
        version=__version__,
        description="The single source of truth for machine-learning runs: tracking server API.",
        lifespan=lifespan,
        # /docs is served from vendored Swagger UI files (server/docs.py), not from a CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.store_uri = store_uri
    app.state.artifacts_uri = artifacts_uri or setting("LABLEDGER_ARTIFACTS_URI")
    app.state.heartbeat_timeout = heartbeat_timeout
    install_error_handlers(app)

    from .routes_read import router as read_router

    app.include_router(read_router)
    from .docs import install as install_docs

    install_docs(app)
    _include_optional(app, "routes_write")
    _include_optional(app, "routes_artifacts")
    _include_optional(app, "mlflow")
    _include_optional(app, "routes_trust")
    _include_optional(app, "routes_registry")
    if ui:
        _include_optional(app, "ui")
    from .openapi import install as install_openapi

    install_openapi(app)

    @app.get("/healthz", tags=["meta"], summary="Liveness probe")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    return app


def _include_optional(app: FastAPI, module: str) -> None:
    """Routers living in their own modules: ``routes_write`` (writes, auth) and ``ui`` (web pages)."""
    import importlib
    import importlib.util

    name = f"labledger.server.{module}"
    if importlib.util.find_spec(name) is None:
        return
    mod = importlib.import_module(name)
    mod.install(app)
