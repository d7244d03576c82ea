"""Query support: a partial index over runs that carry explicit summary values.

Revision ID: 0005

Sorting by ``summary.K`` walks ``metric_summary``'s (key, last) index in order and
stops after LIMIT rows; runs whose ``summary`` JSON overrides K are merged in from this
small partial index (most runs have an empty ``summary``), so no query has to parse
every run's JSON. See labledger/query/_plan.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_summary_set",
        "runs",
        ["id"],
        sqlite_where=sa.text("summary != '{}'"),
        postgresql_where=sa.text("summary <> '{}'::jsonb"),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_summary_set", table_name="runs")
