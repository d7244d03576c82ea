"""MLflow compatibility: objects MLflow has and labledger's own tables do not.

Revision ID: 0009

``mlflow_objects`` holds, per ``(kind, id)``, the MLflow-only facts of an entity as JSON:
``experiment`` (the experiment id of a project, its lifecycle stage, experiment tags,
creation time) and ``model`` (MLflow 3 "logged models": name, source run, status, tags,
params). Runs need no table: an MLflow run is a labledger run (same 32-hex id).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB

revision = "0009"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(JSONB(), "postgresql")
    double = sa.Float().with_variant(DOUBLE_PRECISION(), "postgresql")
    op.create_table(
        "mlflow_objects",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("data", json_type, nullable=False),
        sa.Column("created_at", double, nullable=False),
        sa.Column("updated_at", double, nullable=False),
    )
    op.create_index("ix_mlflow_objects_project", "mlflow_objects", ["kind", "project"])


def downgrade() -> None:
    op.drop_index("ix_mlflow_objects_project", table_name="mlflow_objects")
    op.drop_table("mlflow_objects")
