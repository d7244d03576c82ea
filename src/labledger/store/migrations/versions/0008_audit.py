"""Trust: edit events and the per-project audit hash chain.

Revision ID: 0008

``run_edits`` keeps one row per edit of a run's notes, tags or summary (who, when,
field, old -> new). ``audit_log`` is an append-only hash chain per project: one entry
when a run ends (the hash of its record) and one per edit; each entry's hash covers the
previous one, so changing or deleting a row behind labledger's back is found by
``labledger audit verify``. ``labledger_meta.audit_since`` is when auditing began:
runs that ended before it have no entry (see docs/trust.md).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None

_DOUBLE = sa.Float().with_variant(sa.dialects.postgresql.DOUBLE_PRECISION(), "postgresql")
_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "run_edits",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("field", sa.String(260), nullable=False),
        sa.Column("old", _JSON, nullable=True),
        sa.Column("new", _JSON, nullable=True),
        sa.Column("author", sa.String(250), nullable=True),
        sa.Column("at", _DOUBLE, nullable=False),
    )
    op.create_index("ix_run_edits_run", "run_edits", ["run_id", "at"])
    op.create_table(
        "audit_log",
        sa.Column("project", sa.String(250), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("edit_id", sa.String(32), nullable=True),
        sa.Column("record_sha256", sa.String(64), nullable=False),
        sa.Column("fields", _JSON, nullable=False),
        sa.Column("prev_sha256", sa.String(64), nullable=False),
        sa.Column("entry_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _DOUBLE, nullable=False),
    )
    op.create_index("ix_audit_log_run", "audit_log", ["run_id", "seq"])
    meta = sa.table("labledger_meta", sa.column("key", sa.String), sa.column("value", sa.Text))
    op.bulk_insert(meta, [{"key": "audit_since", "value": repr(time.time())}])


def downgrade() -> None:
    op.execute("DELETE FROM labledger_meta WHERE key = 'audit_since'")
    op.drop_index("ix_audit_log_run", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_run_edits_run", table_name="run_edits")
    op.drop_table("run_edits")
