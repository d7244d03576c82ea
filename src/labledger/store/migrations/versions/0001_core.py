"""Core tables: meta, projects, runs, metric chunks and summaries, applied batches.

Revision ID: 0001

Migrations spell their tables out instead of reusing ``_schema``, so a later change to
``_schema`` (made together with its own migration) never changes what this one does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, DOUBLE_PRECISION, JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Double = sa.Float().with_variant(DOUBLE_PRECISION(), "postgresql")
Blob = sa.LargeBinary().with_variant(BYTEA(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "labledger_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "projects",
        sa.Column("name", sa.String(250), primary_key=True),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("settings", Json, nullable=True),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(250), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("ended_at", Double, nullable=True),
        sa.Column("heartbeat_at", Double, nullable=True),
        sa.Column("host", sa.String(250), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("pid_start", sa.String(64), nullable=True),
        sa.Column("config", Json, nullable=False),
        sa.Column("summary", Json, nullable=False),
        sa.Column("tags", Json, nullable=False),
        sa.Column("notes", sa.Text, nullable=True),
        sa.Column("seed", sa.BigInteger, nullable=True),
        sa.Column("env", Json, nullable=False),
        sa.Column("datasets", Json, nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("parent_run_id", sa.String(32), nullable=True),
        sa.Column("updated_at", Double, nullable=False),
    )
    op.create_index("ix_runs_project_created", "runs", ["project", "created_at"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_created", "runs", ["created_at"])
    op.create_table(
        "metric_chunks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("step_min", sa.BigInteger, nullable=False),
        sa.Column("step_max", sa.BigInteger, nullable=False),
        sa.Column("steps", Blob, nullable=False),
        sa.Column("vals", Blob, nullable=False),
        sa.Column("ts", Blob, nullable=False),
    )
    op.create_index("ix_chunks_run_key", "metric_chunks", ["run_id", "key", "id"])
    op.create_table(
        "metric_summary",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("last", Double, nullable=True),
        sa.Column("last_nan", sa.Boolean, nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("last_ts", Double, nullable=False),
        sa.Column("min", Double, nullable=True),
        sa.Column("max", Double, nullable=True),
    )
    op.create_index("ix_metric_summary_key", "metric_summary", ["key", "last"])
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("data", Blob, nullable=False),
    )
    op.create_table(
        "applied_batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("applied_at", Double, nullable=False),
    )


def downgrade() -> None:
    for name in [
        "applied_batches",
        "blobs",
        "metric_summary",
        "metric_chunks",
        "runs",
        "projects",
        "labledger_meta",
    ]:
        op.drop_table(name)
