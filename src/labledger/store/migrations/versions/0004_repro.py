"""Reproduction verdicts: one row per ``labledger repro`` attempt, linking both runs.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Double = sa.Float().with_variant(DOUBLE_PRECISION(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "repro_verdicts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("original_run_id", sa.String(32), nullable=False),
        sa.Column("repro_run_id", sa.String(32), nullable=True),
        sa.Column("verdict", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("tolerance", Double, nullable=True),
        sa.Column("details", Json, nullable=False),
        sa.Column("created_at", Double, nullable=False),
    )
    op.create_index(
        "ix_repro_verdicts_original", "repro_verdicts", ["original_run_id", "created_at"]
    )
    op.create_index("ix_repro_verdicts_repro", "repro_verdicts", ["repro_run_id"])


def downgrade() -> None:
    op.drop_table("repro_verdicts")
