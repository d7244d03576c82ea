"""Rich results: one row per image, table, confusion matrix, curve, histogram or text.

Revision ID: 0010

The bytes live in ``blobs`` (content-addressed); a row names the run, key, step and
position (``seq``) within that key and step, its kind, the blob's sha256 and size, an
optional caption and the kind's metadata (width and height of an image, columns of a
table, ...). The primary key is the row's place, so a replayed batch cannot add it twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB

revision = "0010"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(JSONB(), "postgresql")
    double = sa.Float().with_variant(DOUBLE_PRECISION(), "postgresql")
    op.create_table(
        "media",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("step", sa.BigInteger, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("caption", sa.Text, nullable=True),
        sa.Column("meta", json_type, nullable=False),
        sa.Column("ts", double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("media")
