"""Access control: users, API tokens (stored hashed) and per-project roles.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

Double = sa.Float().with_variant(DOUBLE_PRECISION(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(250), primary_key=True),
        sa.Column("created_at", Double, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(250), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("revoked_at", Double, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user"])
    op.create_table(
        "project_roles",
        sa.Column("user", sa.String(250), primary_key=True),
        sa.Column("project", sa.String(250), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("granted_at", Double, nullable=False),
    )


def downgrade() -> None:
    for name in ["project_roles", "api_tokens", "users"]:
        op.drop_table(name)
