"""Run-record field sets shared by the two SQL writers (``sql.SqlStore`` on SQLAlchemy and
``_lite.LiteStore`` on the standard library) and the audit chain. No imports, so the
stdlib write path in ``init()`` can use them for free."""

from __future__ import annotations

__all__ = ["RUN_JSON_FIELDS", "SEALED_STATUSES", "UPDATABLE_RUN_FIELDS"]

# JSON columns of ``runs``
RUN_JSON_FIELDS = ("config", "summary", "tags", "env", "datasets")
# fields a batch's run_update may set
UPDATABLE_RUN_FIELDS = frozenset(
    {
        "status",
        "ended_at",
        "config",
        "summary",
        "tags",
        "notes",
        "seed",
        "env",
        "datasets",
        "exit_code",
        "error",
        "parent_run_id",
        "group",
        "job_type",
        "name",
        "heartbeat_at",
    }
)
# statuses that end a run for good: the batch setting one seals the run into the audit
# chain and freezes it (store/_audit_sql.py)
SEALED_STATUSES = frozenset({"finished", "failed", "killed", "pruned"})
