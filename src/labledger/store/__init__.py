"""Storage back ends behind one protocol.

``open_store(uri)`` picks the back end from the URI: ``sqlite:///PATH`` and
``postgresql://…`` give a :class:`~labledger.store.sql.SqlStore`, ``http(s)://…`` an
``HttpStore`` that speaks the same protocol to a tracking server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._locate import default_root, default_store_uri, resolve_store_uri

if TYPE_CHECKING:
    import os

    from ._base import RUN_STATUSES, TERMINAL_STATUSES, Batch, History, Store


def __getattr__(name: str) -> Any:
    # _base (dataclasses, uuid) is loaded on first use: init() reaches this package
    # for _locate and _lite only, and must stay fast
    if name in ("RUN_STATUSES", "TERMINAL_STATUSES", "Batch", "History", "Store"):
        from . import _base

        return getattr(_base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RUN_STATUSES",
    "TERMINAL_STATUSES",
    "Batch",
    "History",
    "Store",
    "default_root",
    "default_store_uri",
    "open_store",
    "resolve_store_uri",
]


def open_store(uri: str | os.PathLike[str] | None = None, **kwargs: object) -> Store:
    """Open the store named by ``uri`` (argument, else LABLEDGER_URI, else the embedded default)."""
    resolved = resolve_store_uri(uri)
    if resolved.startswith(("http://", "https://")):
        from .http import HttpStore

        return HttpStore(resolved, **kwargs)  # type: ignore[arg-type]
    from .sql import SqlStore

    return SqlStore(resolved, **kwargs)  # type: ignore[arg-type]
