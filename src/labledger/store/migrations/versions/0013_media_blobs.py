"""Rich results' bytes in the artifact blob store: each ``media`` row names where.

Revision ID: 0013

The bytes of a rich result logged from now on live in an artifact blob store (a
directory or ``s3://``), not in ``blobs``; ``storage`` is that store's URI, so a reader
that opens the database directly (``labledger media get --store …``) finds the bytes a
server or ``init(artifacts=…)`` put elsewhere than the default. NULL for rows written
before: their bytes are in ``blobs``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0001"
branch_labels = None
depends_on = "0010"


def upgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("storage", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.drop_column("storage")
