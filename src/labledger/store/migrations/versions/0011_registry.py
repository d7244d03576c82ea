"""The model registry: registered models, their versions and aliases.

Revision ID: 0011

A version points at a finished run and one content-addressed artifact version of it
(``artifact_versions.id``); an alias names one version of a model. Tags are JSON maps.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB

revision = "0011"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(JSONB(), "postgresql")
    double = sa.Float().with_variant(DOUBLE_PRECISION(), "postgresql")
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(250), primary_key=True),
        sa.Column("project", sa.String(250), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", json_type, nullable=False),
        sa.Column("author", sa.String(250), nullable=True),
        sa.Column("created_at", double, nullable=False),
        sa.Column("updated_at", double, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(250), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("artifact_version_id", sa.String(32), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", json_type, nullable=False),
        sa.Column("author", sa.String(250), nullable=True),
        sa.Column("created_at", double, nullable=False),
        sa.Column("updated_at", double, nullable=False),
    )
    op.create_index("ix_model_versions_run", "model_versions", ["run_id"])
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(250), primary_key=True),
        sa.Column("alias", sa.String(250), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_aliases")
    op.drop_index("ix_model_versions_run", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_table("registered_models")
