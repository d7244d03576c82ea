"""Each metric chunk's min and max points, so downsampled reads skip whole chunks.

Revision ID: 0014

``metric_chunks.stats`` (``store/_chunk_stats.py``): NULL for rows written before, which
a downsampled read then reads in full, as it did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0001"
branch_labels = None
depends_on = "0012"


def upgrade() -> None:
    with op.batch_alter_table("metric_chunks") as batch:
        batch.add_column(
            sa.Column(
                "stats",
                sa.LargeBinary().with_variant(sa.dialects.postgresql.BYTEA(), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("metric_chunks") as batch:
        batch.drop_column("stats")
