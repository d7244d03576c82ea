"""Storage back ends behind one protocol.

``open_store(uri)`` picks the back end from the URI: ``sqlite:///PATH`` and
``postgresql://…`` give a :class:`~labledger.store.sql.SqlStore`, ``http(s)://…`` an
``HttpStore`` that speaks the same protocol to a tracking server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._locate import Location, default_root, default_store_uri, resolve_store_uri

if TYPE_CHECKING:
    import os

    from ._base import (
        RUN_STATUSES,
        TERMINAL_STATUSES,
        ArtifactCatalog,
        AuditTrail,
        Batch,
        ExportRecord,
        History,
        MetricSummary,
        ReproVerdicts,
        RunExport,
        RunRecord,
        RunStore,
        Store,
    )
    from ._mlflow_source import MlflowMetricsSource


def __getattr__(name: str) -> Any:
    # _base (dataclasses, uuid) is loaded on first use: init() reaches this package
    # for _locate and _lite only, and must stay fast
    if name in (
        "RUN_STATUSES",
        "TERMINAL_STATUSES",
        "ArtifactCatalog",
        "AuditTrail",
        "Batch",
        "ExportRecord",
        "History",
        "MetricSummary",
        "ReproVerdicts",
        "RunExport",
        "RunRecord",
        "RunStore",
        "Store",
    ):
        from . import _base

        return getattr(_base, name)
    if name == "MlflowMetricsSource":  # (SQLAlchemy, on first use)
        from ._mlflow_source import MlflowMetricsSource

        return MlflowMetricsSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RUN_STATUSES",
    "TERMINAL_STATUSES",
    "ArtifactCatalog",
    "AuditTrail",
    "Batch",
    "ExportRecord",
    "History",
    "Location",
    "MetricSummary",
    "MlflowMetricsSource",
    "ReproVerdicts",
    "RunExport",
    "RunRecord",
    "RunStore",
    "Store",
    "default_root",
    "default_store_uri",
    "open_store",
    "resolve_store_uri",
]


def open_store(uri: str | os.PathLike[str] | None = None, **kwargs: object) -> Store:
    """Open the store named by ``uri`` (argument, else LABLEDGER_URI, else the embedded default).

    The URI's scheme picks the class from ``STORE_BACKENDS`` (``store/_backends.py``)."""
    from .._exceptions import UsageError
    from ._backends import STORE_BACKENDS, load_backend

    location = Location.of(uri)
    spec = STORE_BACKENDS.get(location.scheme)
    if spec is None:
        raise UsageError(
            f"unsupported store URI {location.uri!r}: use sqlite:///PATH, postgresql://… or http(s)://HOST:PORT"
        )
    store: Store = load_backend(spec)(location.uri, **kwargs)
    return store
