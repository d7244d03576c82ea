"""Downsampled reads that skip chunks give exactly the points of a full read.

``history(..., max_points=N)`` decides the buckets that hold whole chunks from the
chunks' summaries (``metric_chunks.stats``) and reads the others; these tests compare
it, point for point, with :func:`downsample` over the whole series, on series shaped to
hit every path: NaN and infinities, ties, chunks with and without a summary (the embedded
store's open tail, rows from before migration 0014), steps out of order."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from labledger.store import Batch, LiteStore
from labledger.store import _schema as schema
from labledger.store._series_sql import downsample
from labledger.store.sql import SqlStore


def _run(store: Any) -> str:
    rid = uuid.uuid4().hex
    store.create_run({"id": rid, "project": "ds", "name": "d", "created_at": time.time()})
    return rid


def _values(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vals = rng.standard_normal(n).round(1)  # many ties
    vals[rng.integers(0, n, n // 50)] = np.nan
    vals[rng.integers(0, n, 5)] = np.inf
    vals[rng.integers(0, n, 5)] = -np.inf
    vals[5000:14000] = np.nan  # whole chunks of NaN
    return np.asarray(vals, dtype=np.float64)


def _full(store: SqlStore, rid: str, key: str, max_points: int) -> tuple[Any, ...]:
    h = store.history(rid, key)
    return downsample(h.steps, h.values, h.timestamps, max_points)


def _same(store: SqlStore, rid: str, key: str, max_points: int) -> None:
    got = store.history(rid, key, max_points=max_points)
    want = _full(store, rid, key, max_points)
    assert got.steps.tolist() == want[0].tolist()
    assert got.values.tobytes() == want[1].tobytes()
    assert got.timestamps.tobytes() == want[2].tobytes()
    assert got.total == len(store.history(rid, key).steps)


def _write(store: Any, rid: str, key: str, steps: Any, vals: Any, per: int) -> None:
    for i in range(0, len(steps), per):
        s = np.asarray(steps[i : i + per], dtype=np.int64)
        v = np.asarray(vals[i : i + per], dtype=np.float64)
        t = s.astype(np.float64) / 7.0
        if isinstance(store, LiteStore):
            store.write_batch(
                Batch(run_id=rid, metrics={key: (s.tolist(), v.tolist(), t.tolist())})
            )
        else:
            store.write_batch(Batch(run_id=rid, metrics={key: (s, v, t)}))


@pytest.mark.parametrize("any_store_uri", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("per", [300, 8192 * 3 + 17])
def test_skipping_chunks_keeps_every_point_of_the_full_read(
    any_store_uri: str, per: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labledger.store import _series_sql

    read: list[int] = []
    columns = _series_sql._chunk_columns

    def counted(conn: Any, dialect: str, ids: list[int], bare: set[int]) -> Any:
        read.append(len(ids))
        return columns(conn, dialect, ids, bare)

    monkeypatch.setattr(_series_sql, "_chunk_columns", counted)
    store = SqlStore(any_store_uri)
    try:
        rid = _run(store)
        n = 120_000
        _write(store, rid, "loss", np.arange(n) * 3, _values(n, per), per)
        store.compact_series(rid, "loss")
        t = schema.metric_chunks
        with store._read() as conn:
            unsummarised = conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.stats.is_(None))
            ).scalar()
            chunks = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
        assert unsummarised == 0
        for max_points in (2, 3, 10, 101, 1000, 4096, 50_000, 119_999):
            _same(store, rid, "loss", max_points)
        read.clear()
        store.history(rid, "loss", max_points=6)  # 3 buckets: the chunks at 2 edges
        assert read == [2]
        assert (chunks or 0) >= 14
    finally:
        store.close()


def test_the_embedded_store_summarises_closed_chunks_and_reads_its_open_tail(tmp_path: Any) -> None:
    uri = f"sqlite:///{tmp_path / 'store' / 'ledger.db'}"
    SqlStore(uri).close()  # create the store
    lite = LiteStore(uri)
    rid = _run(lite)
    n = 50_000
    _write(lite, rid, "loss", np.arange(n), _values(n, 3), 700)
    lite.close()
    store = SqlStore(uri)
    try:
        t = schema.metric_chunks
        with store._read() as conn:
            nulls = conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.stats.is_(None))
            ).scalar()
        assert nulls == 1  # only the open tail
        for max_points in (2, 50, 1000, 9999):
            _same(store, rid, "loss", max_points)
    finally:
        store.close()


def test_chunks_without_a_summary_or_out_of_order_are_read(tmp_path: Any) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        rid = _run(store)
        n = 60_000
        _write(store, rid, "a", np.arange(n), _values(n, 1), 8192)
        with store._tx() as conn:  # rows written before migration 0014 have none
            t = schema.metric_chunks
            ids = [r[0] for r in conn.execute(sa.select(t.c.id).where(t.c.key == "a"))]
            conn.execute(sa.update(t).where(t.c.id.in_(ids[::2])).values(stats=None))
        for max_points in (2, 64, 1000):
            _same(store, rid, "a", max_points)
        steps = np.concatenate([np.arange(30_000, 60_000), np.arange(30_000)])  # logged late
        _write(store, rid, "b", steps, _values(n, 2), 8192)
        shuffled = np.random.default_rng(4).permutation(n)  # out of order inside chunks
        _write(store, rid, "c", shuffled, _values(n, 5), 8192)
        for key in ("b", "c"):
            for max_points in (2, 64, 1000):
                _same(store, rid, key, max_points)
        with pytest.raises(Exception, match="at least 2"):
            store.history(rid, "a", max_points=1)
    finally:
        store.close()


def test_postgresql_chunks_are_lz4_compressed_and_read_back_exactly(pg_uri: str) -> None:
    """Migration 0017: on a PostgreSQL built with LZ4 the chunk arrays are stored with it
    (pglz was most of PostgreSQL's CPU on ingest); what is read back is what was
    written, bit for bit, before and after compaction rewrites the rows."""
    store = SqlStore(pg_uri)
    try:
        with store.engine.begin() as conn:
            lz4 = conn.execute(
                sa.text(
                    "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                    "WHERE name = 'default_toast_compression'"
                )
            ).scalar()
            methods = dict(
                conn.execute(
                    sa.text(
                        "SELECT attname, attcompression FROM pg_attribute "
                        "WHERE attrelid = 'metric_chunks'::regclass "
                        "AND attname IN ('steps', 'vals', 'ts')"
                    )
                ).all()
            )
        assert set(methods) == {"steps", "vals", "ts"}
        if lz4:  # "l": LZ4; a server without it keeps the default
            assert set(methods.values()) == {"l"}
        rid = _run(store)
        steps = np.arange(40_000, dtype=np.int64)
        vals = _values(40_000, 3)
        _write(store, rid, "loss", steps, vals, 1_000)  # 40 short rows: compacted
        store.compact_series(rid, "loss")
        h = store.history(rid, "loss")
        assert h.steps.tolist() == steps.tolist()
        assert h.values.tobytes() == vals.tobytes()
        assert h.timestamps.tobytes() == (steps.astype(np.float64) / 7.0).tobytes()
        if lz4:
            with store.engine.begin() as conn:
                used = {
                    r[0]
                    for r in conn.execute(
                        sa.text(
                            "SELECT DISTINCT pg_column_compression(steps) FROM metric_chunks "
                            "WHERE run_id = :r"
                        ),
                        {"r": rid},
                    )
                }
            assert used == {"lz4"}
    finally:
        store.close()
