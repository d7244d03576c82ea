"""Series appends only insert rows; short rows are merged later without changing what reads see."""

from __future__ import annotations

import time
import uuid

import numpy as np
import sqlalchemy as sa

from labledger.store import Batch
from labledger.store import _schema as s
from labledger.store.sql import COMPACT_ROWS, SqlStore


def _run(store: SqlStore) -> str:
    rid = uuid.uuid4().hex
    store.create_run({"id": rid, "project": "p", "name": "r-" + rid[:6]})
    return rid


def _batch(rid: str, start: int, n: int, **update: object) -> Batch:
    steps = np.arange(start, start + n, dtype=np.int64)
    return Batch(
        run_id=rid,
        metrics={"loss": (steps, steps * 0.5, np.full(n, time.time()))},
        run_update=dict(update),
    )


def _rows(store: SqlStore, rid: str) -> list[tuple[int, int]]:
    t = s.metric_chunks
    with store.engine.connect() as conn:
        return [
            (int(r[0]), int(r[1]))
            for r in conn.execute(
                sa.select(t.c.id, t.c.n).where(t.c.run_id == rid).order_by(t.c.id)
            )
        ]


def test_appends_insert_rows_and_short_rows_are_compacted(any_store_uri: str) -> None:
    store = SqlStore(any_store_uri)
    try:
        rid = _run(store)
        n = 0
        for _ in range(COMPACT_ROWS * 3 + 5):  # 300-point batches, like a client's writer
            store.write_batch(_batch(rid, n, 300))
            n += 300
        rows = _rows(store, rid)
        # compaction kept the row count far below one row per batch
        assert len(rows) < COMPACT_ROWS * 2, rows
        assert all(k <= s.CHUNK_POINTS for _, k in rows)
        h = store.history(rid, "loss")
        assert h.total == n
        assert np.array_equal(h.steps, np.arange(n))
        assert np.array_equal(h.values, np.arange(n) * 0.5)
        # the run's end merges what is left
        store.write_batch(_batch(rid, n, 7, status="finished"))
        n += 7
        rows = _rows(store, rid)
        assert sum(k for _, k in rows) == n
        assert len(rows) <= n // s.CHUNK_POINTS + 2, rows
        assert np.array_equal(store.history(rid, "loss").steps, np.arange(n))
    finally:
        store.close()


def test_compaction_keeps_the_logged_order_of_out_of_order_steps(any_store_uri: str) -> None:
    store = SqlStore(any_store_uri)
    try:
        rid = _run(store)
        # the same steps logged twice (a resumed run): reads keep logging order per step
        for rep in range(2):
            for i in range(10):
                steps = np.arange(i * 10, i * 10 + 10, dtype=np.int64)
                vals = steps + rep * 1000.0
                store.write_batch(Batch(run_id=rid, metrics={"x": (steps, vals, np.zeros(10))}))
        before = store.history(rid, "x")
        assert store.compact_series(rid, "x") == 19
        after = store.history(rid, "x")
        assert np.array_equal(before.steps, after.steps)
        assert np.array_equal(before.values, after.values)
        assert after.values[0] == 0.0 and after.values[1] == 1000.0
        assert store.compact_series(rid, "x") == 0  # idempotent
    finally:
        store.close()
