"""The tracking server: a thin FastAPI layer over the same SqlStore and artifact store.

``create_app(store_uri, artifacts_uri)`` builds the application; ``labledger server``
and ``labledger ui`` run it under uvicorn.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
