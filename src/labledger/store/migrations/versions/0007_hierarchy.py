"""Run hierarchy: ``group`` and ``job_type`` beside ``parent_run_id``.

Revision ID: 0007

``runs.group`` gathers runs that belong together (a sweep, an Optuna study, a Hydra
multirun); ``runs.job_type`` says what a run does (``train``, ``eval``, ``trial``).
``parent_run_id`` exists since 0001; it gets an index so a run's children are found
without a scan. All nullable: runs recorded before this revision have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("group", sa.String(250), nullable=True))
    op.add_column("runs", sa.Column("job_type", sa.String(250), nullable=True))
    op.create_index("ix_runs_group", "runs", ["group"])
    op.create_index("ix_runs_parent", "runs", ["parent_run_id"])


def downgrade() -> None:
    op.drop_index("ix_runs_parent", table_name="runs")
    op.drop_index("ix_runs_group", table_name="runs")
    op.drop_column("runs", "job_type")
    op.drop_column("runs", "group")
