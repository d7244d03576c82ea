"""Tables of the SQL store (SQLAlchemy Core). Alembic migrations create them.

Metric points live in ``metric_chunks``: each row holds up to CHUNK_POINTS points of
one (run, key) series as packed little-endian arrays (int64 steps, float64 values,
float64 timestamps). One row per chunk instead of one per point makes a million-point
write a few hundred inserts and a million-point read a few hundred blob fetches.
``metric_summary`` keeps count/last/min/max per series, updated in the same transaction.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy import text as sa_text
from sqlalchemy.dialects.postgresql import BYTEA, DOUBLE_PRECISION, JSONB

__all__ = [
    "CHUNK_POINTS",
    "api_tokens",
    "applied_batches",
    "artifact_aliases",
    "artifact_files",
    "artifact_uses",
    "artifact_versions",
    "audit_log",
    "blobs",
    "load_json",
    "media",
    "meta",
    "metadata",
    "metric_chunks",
    "metric_summary",
    "mlflow_objects",
    "model_aliases",
    "model_versions",
    "project_roles",
    "projects",
    "registered_models",
    "repro_verdicts",
    "run_edits",
    "runs",
    "users",
]

CHUNK_POINTS = 8192

metadata = MetaData()

JsonType = JSON().with_variant(JSONB(), "postgresql")
Double = Float().with_variant(DOUBLE_PRECISION(), "postgresql")
Blob = LargeBinary().with_variant(BYTEA(), "postgresql")


def load_json(value: Any) -> Any:
    """A JsonType column value as Python data (decoding it when a driver hands back text)."""
    return json.loads(value) if isinstance(value, str) else value


meta = Table(
    "labledger_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("created_at", Double, nullable=False),
    Column("settings", JsonType, nullable=True),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("project", String(250), nullable=False),
    Column("name", String(250), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("ended_at", Double, nullable=True),
    Column("heartbeat_at", Double, nullable=True),
    Column("host", String(250), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("pid_start", String(64), nullable=True),
    Column("config", JsonType, nullable=False),
    Column("summary", JsonType, nullable=False),  # explicit summary assignments only
    Column("tags", JsonType, nullable=False),
    Column("notes", Text, nullable=True),
    Column("seed", BigInteger, nullable=True),
    Column("env", JsonType, nullable=False),
    Column("datasets", JsonType, nullable=False),
    Column("exit_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("parent_run_id", String(32), nullable=True),
    Column("updated_at", Double, nullable=False),
    Column("author", String(250), nullable=True),  # migration 0006
    Column("group", String(250), nullable=True),  # migration 0007
    Column("job_type", String(250), nullable=True),  # migration 0007
)
Index("ix_runs_project_created", runs.c.project, runs.c.created_at)
Index("ix_runs_status", runs.c.status)
Index("ix_runs_created", runs.c.created_at)
# an author's runs: (author) on SQLite; on PostgreSQL (migration 0016) covering the
# project and the id, so the ranked plan reads an author's run ids from the index alone
Index("ix_runs_author", runs.c.author).ddl_if(dialect="sqlite")
Index("ix_runs_author_project", runs.c.author, runs.c.project, runs.c.id).ddl_if(
    dialect="postgresql"
)
Index("ix_runs_group", runs.c["group"])  # migration 0007
Index("ix_runs_parent", runs.c.parent_run_id)  # migration 0007
# PostgreSQL only (migration 0012): containment (config @> {...}, tags @> [...]) and
# LIKE on names; SQLite has no such index types
Index(
    "ix_runs_config_gin",
    runs.c.config,
    postgresql_using="gin",
    postgresql_ops={"config": "jsonb_path_ops"},
).ddl_if(dialect="postgresql")
Index(
    "ix_runs_tags_gin",
    runs.c.tags,
    postgresql_using="gin",
    postgresql_ops={"tags": "jsonb_path_ops"},
).ddl_if(dialect="postgresql")
Index(
    "ix_runs_name_trgm",
    runs.c.name,
    postgresql_using="gin",
    postgresql_ops={"name": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")
# `name like "prefix*"` as a range in byte order, with a histogram estimate (0015)
Index(
    "ix_runs_name_prefix",
    runs.c.name,
    postgresql_ops={"name": "varchar_pattern_ops"},
).ddl_if(dialect="postgresql")
# runs with explicit summary values (migration 0005; used by labledger.query's ranked plan)
Index(
    "ix_runs_summary_set",
    runs.c.id,
    sqlite_where=sa_text("summary != '{}'"),
    postgresql_where=sa_text("summary <> '{}'::jsonb"),
)

metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(32), nullable=False),
    Column("key", String(250), nullable=False),
    Column("n", Integer, nullable=False),
    Column("step_min", BigInteger, nullable=False),
    Column("step_max", BigInteger, nullable=False),
    # the chunk's min and max points for downsampled reads (_chunk_stats.py, migration
    # 0014); declared before the arrays so that SQLite reads it without their pages
    Column("stats", Blob, nullable=True),
    Column("steps", Blob, nullable=False),
    Column("vals", Blob, nullable=False),
    Column("ts", Blob, nullable=False),
)
Index("ix_chunks_run_key", metric_chunks.c.run_id, metric_chunks.c.key, metric_chunks.c.id)

metric_summary = Table(
    "metric_summary",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("last", Double, nullable=True),  # NULL when the last value is NaN (SQLite has no NaN)
    Column("last_nan", Boolean, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("last_ts", Double, nullable=False),
    Column("min", Double, nullable=True),  # min/max ignore NaN; NULL when all values are NaN
    Column("max", Double, nullable=True),
)
# a key's values in order: (key, last) on SQLite; on PostgreSQL (migration 0016) with the
# run id, so a walk in sort order yields each entry's run without reading the table
Index("ix_metric_summary_key", metric_summary.c.key, metric_summary.c.last).ddl_if(dialect="sqlite")
Index(
    "ix_metric_summary_key_run",
    metric_summary.c.key,
    metric_summary.c.last,
    metric_summary.c.run_id,
).ddl_if(dialect="postgresql")

applied_batches = Table(
    "applied_batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("applied_at", Double, nullable=False),
)

# Small content-addressed texts that belong to runs (git patches, script snapshots),
# zlib-compressed. Large files go to the artifact store instead.
blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", Blob, nullable=False),
)

# One row per `labledger repro` attempt (migration 0004): the verdict is linked to both
# the original run and its reproduction (NULL when the attempt stopped before running).
repro_verdicts = Table(
    "repro_verdicts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("original_run_id", String(32), nullable=False),
    Column("repro_run_id", String(32), nullable=True),
    Column("verdict", String(40), nullable=False),
    Column("reason", Text, nullable=True),
    Column("tolerance", Double, nullable=True),
    Column("details", JsonType, nullable=False),
    Column("created_at", Double, nullable=False),
)
Index("ix_repro_verdicts_original", repro_verdicts.c.original_run_id, repro_verdicts.c.created_at)
Index("ix_repro_verdicts_repro", repro_verdicts.c.repro_run_id)

# Artifacts (migration 0002): one row per version of a named artifact within a project;
# its files (the manifest) point at content-addressed blobs kept outside the database
# (see labledger.artifacts). Aliases name versions; uses record which run consumed which.
artifact_versions = Table(
    "artifact_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("project", String(250), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("storage", Text, nullable=True),
    Column("meta", JsonType, nullable=False),
    Column("created_at", Double, nullable=False),
)
Index(
    "ux_artifact_versions_name",
    artifact_versions.c.project,
    artifact_versions.c.name,
    artifact_versions.c.version,
    unique=True,
)
Index("ix_artifact_versions_run", artifact_versions.c.run_id)

artifact_files = Table(
    "artifact_files",
    metadata,
    Column("version_id", String(32), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
)
Index("ix_artifact_files_sha", artifact_files.c.sha256)

artifact_aliases = Table(
    "artifact_aliases",
    metadata,
    Column("project", String(250), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version_id", String(32), nullable=False),
    Column("updated_at", Double, nullable=False),
)
Index("ix_artifact_aliases_version", artifact_aliases.c.version_id)

artifact_uses = Table(
    "artifact_uses",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("version_id", String(32), primary_key=True),
    Column("used_at", Double, nullable=False),
)
Index("ix_artifact_uses_version", artifact_uses.c.version_id)

# Access control (migration 0003): tokens are stored as the sha256 of the token text.
users = Table(
    "users",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("created_at", Double, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user", String(250), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double, nullable=True),
    Column("note", Text, nullable=True),
)
Index("ix_api_tokens_user", api_tokens.c.user)

project_roles = Table(
    "project_roles",
    metadata,
    Column("user", String(250), primary_key=True),
    Column("project", String(250), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("granted_at", Double, nullable=False),
)

# Trust (migration 0008): one row per edit of a run's notes, tags or summary, and the
# per-project audit hash chain (see store/_audit_sql.py and docs/trust.md).
run_edits = Table(
    "run_edits",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("field", String(260), nullable=False),
    Column("old", JsonType, nullable=True),
    Column("new", JsonType, nullable=True),
    Column("author", String(250), nullable=True),
    Column("at", Double, nullable=False),
)
Index("ix_run_edits_run", run_edits.c.run_id, run_edits.c.at)

audit_log = Table(
    "audit_log",
    metadata,
    Column("project", String(250), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # "seal" (the run ended), "edit", "late" (sync)
    Column("edit_id", String(32), nullable=True),
    Column("record_sha256", String(64), nullable=False),
    Column("fields", JsonType, nullable=False),  # field -> sha256, so verify can name the field
    Column("prev_sha256", String(64), nullable=False),
    Column("entry_sha256", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
)
Index("ix_audit_log_run", audit_log.c.run_id, audit_log.c.seq)

# MLflow-only facts (migration 0009): experiment ids and lifecycle of projects, MLflow 3
# logged models. Keyed by (kind, id); ``data`` is the object's JSON.
mlflow_objects = Table(
    "mlflow_objects",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("project", String(250), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("data", JsonType, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)
Index("ix_mlflow_objects_project", mlflow_objects.c.kind, mlflow_objects.c.project)


# Rich results (migration 0010): images, tables, confusion matrices, curves, histograms
# and texts logged with ``run.log``; one row per logged value, its bytes in the artifact
# blob store named by ``storage`` (older rows: in ``blobs``; content-addressed: identical
# bytes are stored once). ``seq`` orders values logged
# under one key at one step.
media = Table(
    "media",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("caption", Text, nullable=True),
    Column("meta", JsonType, nullable=False),
    Column("ts", Double, nullable=False),
    # the artifact blob store holding the bytes (migration 0013); NULL: in ``blobs``
    Column("storage", String(1000), nullable=True),
)

# The model registry (migration 0011): a registered model names versions, each one a
# finished run's content-addressed artifact version; aliases point at one version.
registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("project", String(250), nullable=True),  # the project of its first version
    Column("description", Text, nullable=True),
    Column("tags", JsonType, nullable=False),
    Column("author", String(250), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("artifact_version_id", String(32), nullable=False),
    Column("source", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("tags", JsonType, nullable=False),
    Column("author", String(250), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)
Index("ix_model_versions_run", model_versions.c.run_id)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("alias", String(250), primary_key=True),
    Column("version", Integer, nullable=False),
)
