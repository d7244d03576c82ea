"""Two covering B-trees (PostgreSQL): a leaderboard filtered by author stays flat at 1M runs.

Revision ID: 0016

``author = "user7" ORDER BY -summary.val_acc LIMIT 100`` (2% of a million runs) is read in
the ranked plan's hashed-set form (``store/_ranked_sql.py``, SEMI): the matching runs' ids
are read once into a hashed set, then the sort key's index is walked and each entry's
run id tested against it. With these two indexes neither read touches a table page:

- ``ix_runs_author_project`` ``(author, project, id)`` replaces ``ix_runs_author``
  ``(author)``: the ids of an author's runs in a project, an index-only scan;
- ``ix_metric_summary_key_run`` ``(key, last, run_id)`` replaces
  ``ix_metric_summary_key`` ``(key, last)``: the walk in sort order yields each entry's
  run id from the index.

At 1M runs with cold caches (PostgreSQL restarted, the OS cache dropped): 24.5 ms and
626 buffers, against 458 ms and 17,854 buffers for the sort key's walk probing 4,450
runs (benchmarks/README.md). Both replace an index with the same leading columns, so
every read the old one served is served. SQLite stores are unchanged (SQLite's ranked
plan keeps the sort key's walk).
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0001"
branch_labels = None
depends_on = "0006"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index("ix_runs_author_project", "runs", ["author", "project", "id"])
    op.drop_index("ix_runs_author", table_name="runs")
    op.create_index("ix_metric_summary_key_run", "metric_summary", ["key", "last", "run_id"])
    op.drop_index("ix_metric_summary_key", table_name="metric_summary")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index("ix_metric_summary_key", "metric_summary", ["key", "last"])
    op.drop_index("ix_metric_summary_key_run", table_name="metric_summary")
    op.create_index("ix_runs_author", "runs", ["author"])
    op.drop_index("ix_runs_author_project", table_name="runs")
