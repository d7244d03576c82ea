"""Each metric chunk's min and max points, so downsampled reads skip whole chunks.

Revision ID: 0014

``metric_chunks.stats`` (``store/_chunk_stats.py``): NULL for rows written before, which
a downsampled read then reads in full, as it did. On SQLite the column goes before the
arrays (the table is copied once): SQLite reaches a column that follows large blobs
through their overflow pages, so a summary placed after them would cost a read of the
whole series.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0001"
branch_labels = None
depends_on = "0012"


def upgrade() -> None:
    column = sa.Column(
        "stats", sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"), nullable=True
    )
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("metric_chunks", recreate="always") as batch:
            batch.add_column(column, insert_before="steps")
    else:
        op.add_column("metric_chunks", column)


def downgrade() -> None:
    with op.batch_alter_table("metric_chunks") as batch:
        batch.drop_column("stats")
