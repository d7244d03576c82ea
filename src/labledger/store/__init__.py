"""Storage back ends behind one protocol.

``open_store(uri)`` picks the back end from the URI: ``sqlite:///PATH`` and
``postgresql://…`` give a :class:`~labledger.store.sql.SqlStore`, ``http(s)://…`` an
``HttpStore`` that speaks the same protocol to a tracking server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import RUN_STATUSES, TERMINAL_STATUSES, Batch, History, Store
from ._locate import default_root, default_store_uri, resolve_store_uri

if TYPE_CHECKING:
    import os

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
        from ..remote.http import HttpStore

        return HttpStore(resolved, **kwargs)  # type: ignore[arg-type]
    from .sql import SqlStore

    return SqlStore(resolved, **kwargs)  # type: ignore[arg-type]
