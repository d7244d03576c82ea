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
        AccessControl,
        ArtifactCatalog,
        AuditTrail,
        Batch,
        ExportRecord,
        History,
        MetricSummary,
        MlflowObjects,
        ReproVerdicts,
        RunExport,
        RunRecord,
        RunStore,
        ServerStore,
        Store,
    )
    from ._core import (
        ALL_PROJECTS,
        REQUIREMENTS,
        ROLES,
        Actor,
        WriteCore,
        check_requirements,
        missing_for,
        refusal_message,
        role_allows,
    )
    from ._mlflow_source import MlflowMetricsSource
    from ._repro_rules import REPRO_JOB_TYPE, is_reproduction, without_repro


_BASE = frozenset(
    {
        "RUN_STATUSES",
        "TERMINAL_STATUSES",
        "AccessControl",
        "ArtifactCatalog",
        "AuditTrail",
        "Batch",
        "ExportRecord",
        "History",
        "MetricSummary",
        "MlflowObjects",
        "ReproVerdicts",
        "RunExport",
        "RunRecord",
        "RunStore",
        "ServerStore",
        "Store",
    }
)
_CORE = frozenset(
    {
        "ALL_PROJECTS",
        "REQUIREMENTS",
        "ROLES",
        "Actor",
        "WriteCore",
        "check_requirements",
        "missing_for",
        "refusal_message",
        "role_allows",
    }
)


def __getattr__(name: str) -> Any:
    # _base (dataclasses, uuid) is loaded on first use: init() reaches this package
    # for _locate and _lite only, and must stay fast
    if name in _BASE:
        from . import _base

        return getattr(_base, name)
    if name in _CORE:
        from . import _core

        return getattr(_core, name)
    if name in ("REPRO_JOB_TYPE", "is_reproduction", "without_repro"):
        from . import _repro_rules

        return getattr(_repro_rules, name)
    if name == "MlflowMetricsSource":  # (SQLAlchemy, on first use)
        from ._mlflow_source import MlflowMetricsSource

        return MlflowMetricsSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALL_PROJECTS",
    "REPRO_JOB_TYPE",
    "REQUIREMENTS",
    "ROLES",
    "RUN_STATUSES",
    "TERMINAL_STATUSES",
    "AccessControl",
    "Actor",
    "ArtifactCatalog",
    "AuditTrail",
    "Batch",
    "ExportRecord",
    "History",
    "Location",
    "MetricSummary",
    "MlflowMetricsSource",
    "MlflowObjects",
    "ReproVerdicts",
    "RunExport",
    "RunRecord",
    "RunStore",
    "ServerStore",
    "Store",
    "WriteCore",
    "check_requirements",
    "default_root",
    "default_store_uri",
    "is_reproduction",
    "missing_for",
    "open_store",
    "refusal_message",
    "resolve_store_uri",
    "role_allows",
    "without_repro",
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
