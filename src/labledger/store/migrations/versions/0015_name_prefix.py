"""A B-tree over run names in pattern order (PostgreSQL): ``name like "prefix*"`` as a range.

Revision ID: 0015

``name like "sweep-17*"`` compiles to ``name LIKE 'sweep-17%'``. The trigram index of
0012 answers it by intersecting the posting lists of every trigram of the pattern, and
the common ones (``swe``, ``eep``, ...) list nearly every run: 13-18 ms at 350,000
runs, growing with the table. This index (``varchar_pattern_ops``: byte order, whatever
the database's collation) turns a pattern with a literal prefix into the range
``name ~>=~ 'sweep-17' AND name ~<~ 'sweep-18'`` (1.2 ms, 45 pages, at 350,000 runs),
and gives the planner a row estimate from the column's histogram (11,152 for 11,111
matches, where the trigram estimate said 33), which the ranked plan uses to choose the
index that drives it. Patterns with no literal prefix (``"*-17"``) keep the trigram
index. SQLite stores are unchanged.
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        "ix_runs_name_prefix",
        "runs",
        ["name"],
        postgresql_ops={"name": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_runs_name_prefix", table_name="runs")
