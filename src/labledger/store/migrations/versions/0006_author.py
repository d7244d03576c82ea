"""Authorship: who made each run.

Revision ID: 0006

``runs.author`` holds the run's author: on a tracking server the token's user (set by
the server, never by the client); on an embedded store the git ``user.email``, else the
OS user. Nullable, since runs recorded before this revision have no author.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("author", sa.String(250), nullable=True))
    op.create_index("ix_runs_author", "runs", ["author"])


def downgrade() -> None:
    op.drop_index("ix_runs_author", table_name="runs")
    op.drop_column("runs", "author")
