"""Storage back ends behind one protocol.

``open_store(uri)`` picks the back end from the URI: ``sqlite:///PATH`` and
``postgresql://…`` give a :class:`~labledger.store.sql.SqlStore`, ``http(s)://…`` an
``HttpStore`` that speaks the same protocol to a tracking server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from ._locate import (
    Location,
    artifacts_uri_for,
    default_root,
    default_store_uri,
    existing_store_uri,
    precheck_sqlite,
    resolve_store_uri,
    scheme_family,
    sqlite_path,
)

if TYPE_CHECKING:
    import os

    from ._amend import (
        apply_amended,
    )
    from ._artifact_paths import (
        default_name,
        parse_ref,
        safe_destination,
        scan,
        validate_alias,
        validate_kind,
        validate_name,
    )
    from ._audit_core import (
        artifact_field,
    )
    from ._backends import (
        BLOB_BACKENDS,
        STORE_BACKENDS,
        blob_scheme,
        load_backend,
        open_blobs,
    )
    from ._base import (
        RUN_STATUSES,
        TERMINAL_STATUSES,
        AccessControl,
        ArtifactCatalog,
        AuditTrail,
        Batch,
        ExportRecord,
        History,
        ListPoints,
        MediaBlobOwner,
        MediaItem,
        MetricSummary,
        MlflowObjects,
        ModelRegistry,
        ReplaysMany,
        ReproVerdicts,
        RunExport,
        RunRecord,
        RunStore,
        ServerStore,
        Store,
        TokenBearer,
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
    from ._lite import (
        LiteStore,
        NeedsMigration,
    )
    from ._manifest import (
        blob_problems,
        check_blobs,
        check_manifest,
        describe_problems,
        is_sha256,
        manifest_digest,
        root_type,
    )
    from ._mlflow_source import (
        MlflowMetricsSource,
    )
    from ._repro_rules import (
        NOT_REPRODUCED,
        NOT_REPRODUCIBLE,
        REPRO_JOB_TYPE,
        REPRODUCED,
        STORED_VERDICTS,
        WITHIN_TOLERANCE,
        compare_runs,
        compare_summaries,
        ended_early,
        history_value_at,
        is_reproduction,
        judge,
        overall_verdict,
        without_repro,
    )
    from ._wire import (
        BATCH_MEDIA_TYPE,
        GZIP_ABOVE,
        MAX_BODY_BYTES,
        batch_from_binary,
        batch_from_wire,
        batch_to_binary,
        batch_to_wire,
        dumps,
        split_binary_batch,
    )

# Loaded on first use, name -> submodule: init() reaches this package for _locate and _lite
# only, and must stay fast (_base pulls dataclasses and uuid, _mlflow_source SQLAlchemy).
_LAZY: dict[str, str] = {
    "AccessControl": "_base",
    "ArtifactCatalog": "_base",
    "AuditTrail": "_base",
    "Batch": "_base",
    "ExportRecord": "_base",
    "History": "_base",
    "ListPoints": "_roles",
    "ReplaysMany": "_roles",
    "MediaBlobOwner": "_roles",
    "MediaItem": "_base",
    "MetricSummary": "_base",
    "MlflowObjects": "_base",
    "ModelRegistry": "_base",
    "RUN_STATUSES": "_base",
    "ReproVerdicts": "_base",
    "RunExport": "_base",
    "RunRecord": "_base",
    "RunStore": "_base",
    "ServerStore": "_base",
    "Store": "_base",
    "TokenBearer": "_base",
    "TERMINAL_STATUSES": "_base",
    "ALL_PROJECTS": "_core",
    "Actor": "_core",
    "REQUIREMENTS": "_core",
    "ROLES": "_core",
    "WriteCore": "_core",
    "check_requirements": "_core",
    "missing_for": "_core",
    "refusal_message": "_core",
    "role_allows": "_core",
    "NOT_REPRODUCED": "_repro_rules",
    "NOT_REPRODUCIBLE": "_repro_rules",
    "REPRODUCED": "_repro_rules",
    "REPRO_JOB_TYPE": "_repro_rules",
    "STORED_VERDICTS": "_repro_rules",
    "WITHIN_TOLERANCE": "_repro_rules",
    "compare_runs": "_repro_rules",
    "compare_summaries": "_repro_rules",
    "ended_early": "_repro_rules",
    "history_value_at": "_repro_rules",
    "is_reproduction": "_repro_rules",
    "judge": "_repro_rules",
    "overall_verdict": "_repro_rules",
    "without_repro": "_repro_rules",
    "MlflowMetricsSource": "_mlflow_source",
    "LiteStore": "_lite",
    "NeedsMigration": "_lite",
    "BATCH_MEDIA_TYPE": "_wire",
    "GZIP_ABOVE": "_wire",
    "MAX_BODY_BYTES": "_wire",
    "batch_from_binary": "_wire",
    "batch_from_wire": "_wire",
    "batch_to_binary": "_wire",
    "batch_to_wire": "_wire",
    "split_binary_batch": "_wire",
    "dumps": "_wire",
    "default_name": "_artifact_paths",
    "parse_ref": "_artifact_paths",
    "safe_destination": "_artifact_paths",
    "scan": "_artifact_paths",
    "validate_alias": "_artifact_paths",
    "validate_kind": "_artifact_paths",
    "validate_name": "_artifact_paths",
    "blob_problems": "_manifest",
    "check_blobs": "_manifest",
    "check_manifest": "_manifest",
    "describe_problems": "_manifest",
    "is_sha256": "_manifest",
    "manifest_digest": "_manifest",
    "root_type": "_manifest",
    "artifact_field": "_audit_core",
    "apply_amended": "_amend",
    "BLOB_BACKENDS": "_backends",
    "STORE_BACKENDS": "_backends",
    "blob_scheme": "_backends",
    "load_backend": "_backends",
    "open_blobs": "_backends",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "ALL_PROJECTS",
    "BATCH_MEDIA_TYPE",
    "BLOB_BACKENDS",
    "GZIP_ABOVE",
    "MAX_BODY_BYTES",
    "NOT_REPRODUCED",
    "NOT_REPRODUCIBLE",
    "REPRODUCED",
    "REPRO_JOB_TYPE",
    "REQUIREMENTS",
    "ROLES",
    "RUN_STATUSES",
    "STORED_VERDICTS",
    "STORE_BACKENDS",
    "TERMINAL_STATUSES",
    "WITHIN_TOLERANCE",
    "AccessControl",
    "Actor",
    "ArtifactCatalog",
    "AuditTrail",
    "Batch",
    "ExportRecord",
    "History",
    "ListPoints",
    "LiteStore",
    "Location",
    "MediaBlobOwner",
    "MediaItem",
    "MetricSummary",
    "MlflowMetricsSource",
    "MlflowObjects",
    "ModelRegistry",
    "NeedsMigration",
    "ReplaysMany",
    "ReproVerdicts",
    "RunExport",
    "RunRecord",
    "RunStore",
    "ServerStore",
    "Store",
    "TokenBearer",
    "WriteCore",
    "apply_amended",
    "artifact_field",
    "artifacts_uri_for",
    "batch_from_binary",
    "batch_from_wire",
    "batch_to_binary",
    "batch_to_wire",
    "blob_problems",
    "blob_scheme",
    "check_blobs",
    "check_manifest",
    "check_requirements",
    "compare_runs",
    "compare_summaries",
    "default_name",
    "default_root",
    "default_store_uri",
    "describe_problems",
    "dumps",
    "ended_early",
    "existing_store_uri",
    "history_value_at",
    "is_reproduction",
    "is_sha256",
    "judge",
    "load_backend",
    "manifest_digest",
    "missing_for",
    "open_blobs",
    "open_store",
    "overall_verdict",
    "parse_ref",
    "precheck_sqlite",
    "refusal_message",
    "resolve_store_uri",
    "role_allows",
    "root_type",
    "safe_destination",
    "scan",
    "scheme_family",
    "split_binary_batch",
    "sqlite_path",
    "validate_alias",
    "validate_kind",
    "validate_name",
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
