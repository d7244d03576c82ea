"""Indexes for filters at scale (PostgreSQL): containment on config and tags, trigrams on names.

Revision ID: 0012

The filter compiler (``store/_filter_sql.py``) writes ``config.a = v`` as
``config @> '{"a": v}' AND <the exact test>`` and a tag test as ``tags @> '["t"]'``,
which the two GIN indexes (``jsonb_path_ops``) answer; ``name like "sweep-1*"`` is a
plain ``LIKE`` that the trigram index answers. The trigram index needs the ``pg_trgm``
extension: created when the server offers it and the role may create it, skipped (the
filter still works, scanning) when not. SQLite has no such index types; its stores are
unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.create_index(
        "ix_runs_config_gin",
        "runs",
        ["config"],
        postgresql_using="gin",
        postgresql_ops={"config": "jsonb_path_ops"},
    )
    op.create_index(
        "ix_runs_tags_gin",
        "runs",
        ["tags"],
        postgresql_using="gin",
        postgresql_ops={"tags": "jsonb_path_ops"},
    )
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).first()
    if available is None:
        return
    try:  # a role without CREATE on the database: skip, keep going
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return
    op.create_index(
        "ix_runs_name_trgm",
        "runs",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_runs_name_trgm")
    op.drop_index("ix_runs_tags_gin", table_name="runs")
    op.drop_index("ix_runs_config_gin", table_name="runs")
