"""Artifacts: versions of named artifacts, their files, aliases, and which runs used them.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Double = sa.Float().with_variant(DOUBLE_PRECISION(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "artifact_versions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(250), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("storage", sa.Text, nullable=True),
        sa.Column("meta", Json, nullable=False),
        sa.Column("created_at", Double, nullable=False),
    )
    op.create_index(
        "ux_artifact_versions_name",
        "artifact_versions",
        ["project", "name", "version"],
        unique=True,
    )
    op.create_index("ix_artifact_versions_run", "artifact_versions", ["run_id"])
    op.create_table(
        "artifact_files",
        sa.Column("version_id", sa.String(32), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_artifact_files_sha", "artifact_files", ["sha256"])
    op.create_table(
        "artifact_aliases",
        sa.Column("project", sa.String(250), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("updated_at", Double, nullable=False),
    )
    op.create_index("ix_artifact_aliases_version", "artifact_aliases", ["version_id"])
    op.create_table(
        "artifact_uses",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("version_id", sa.String(32), primary_key=True),
        sa.Column("used_at", Double, nullable=False),
    )
    op.create_index("ix_artifact_uses_version", "artifact_uses", ["version_id"])


def downgrade() -> None:
    for name in ("artifact_uses", "artifact_aliases", "artifact_files", "artifact_versions"):
        op.drop_table(name)
