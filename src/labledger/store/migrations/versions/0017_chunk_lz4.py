"""Metric chunks compressed with LZ4, not pglz (PostgreSQL 14+ built with LZ4).

Revision ID: 0017

A chunk row holds three packed arrays (steps, values, timestamps: 24 KB for 1,000
points), over PostgreSQL's 2 KB TOAST threshold, so every insert compresses them. With
the default method (pglz) that compression was most of PostgreSQL's CPU on ingest:
steps and timestamps compress well, and pglz is slow at it. Four threads writing
5-key x 1,000-point batches through ``SqlStore.write_batch`` (1.2M points, background
compaction included; ``benchmarks/bench_chunk_storage.py``) cost PostgreSQL 1.37-1.42 s
of CPU with pglz and 0.39-0.43 s with LZ4, for 32 MB stored instead of 27-28 MB
(uncompressed: the same CPU as LZ4 and 56 MB). Reads of a 10M-point series took the
same time either way (0.40 / 0.38 s as Arrow).

``SET COMPRESSION`` applies to values written from then on: rows already stored keep
pglz (both read alike) until compaction rewrites them. A server without LZ4 support
(PostgreSQL 13 or older, or built without ``--with-lz4``) keeps pglz: the migration
checks ``default_toast_compression``'s allowed values first. SQLite stores are
unchanged (SQLite does not compress).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0001"
branch_labels = None
depends_on = "0014"

COLUMNS = ("steps", "vals", "ts")


def _lz4_available() -> bool:
    row = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        )
        .first()
    )
    return bool(row and row[0])


def _set(method: str) -> None:
    for col in COLUMNS:
        op.execute(f"ALTER TABLE metric_chunks ALTER COLUMN {col} SET COMPRESSION {method}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql" or not _lz4_available():
        return
    _set("lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set("default")
