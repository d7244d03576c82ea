"""The tracking server: a thin FastAPI layer over the same SqlStore and artifact store.

``create_app(store_uri, artifacts_uri)`` builds the application; ``labledger server``
and ``labledger ui`` run it under uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .app import create_app

if TYPE_CHECKING:
    from ._serve import serve

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "serve":  # (uvicorn, on first use)
        from ._serve import serve

        return serve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
