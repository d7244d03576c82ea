"""Metric series in SQL: chunked binary arrays per (run, key), summaries, reads.

Mixed into :class:`~labledger.store.sql.SqlStore`. A series is stored as rows of up to
``CHUNK_POINTS`` points (packed little-endian int64 steps, float64 values, float64
timestamps); ``metric_summary`` keeps count/last/min/max per series, upserted in the
same transaction as the chunks.

Appends only insert: each batch adds its own row(s), so a batch costs the same whatever
the series' length (rewriting an open tail chunk made a 300-point batch 3.5x slower at
the end of a chunk than at its start). Short rows are merged into full chunks by
:meth:`SeriesSqlMixin.compact_series` once a series has gathered ``COMPACT_ROWS`` of
them and when its run ends: inline for the embedded store, in a background thread on
the server (``SqlStore.compact_in_background``), so reads stay a handful of rows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .._exceptions import UsageError
from . import _schema as s
from ._base import History
from ._chunk_stats import stats_of_arrays, unpack_stats
from ._sqla import SaDb
from ._statements import upsert_summaries

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Sequence

__all__ = ["SeriesSqlMixin", "downsample"]


class SeriesSqlMixin:
    """Writing and reading metric series; needs ``dialect``, ``upsert``, ``_tx`` and ``_read``."""

    dialect: str

    def upsert(self, table: sa.Table) -> Any:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _tx(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _write_series(
        self,
        conn: Connection,
        run_id: str,
        key: str,
        st: np.ndarray,
        va: np.ndarray,
        tt: np.ndarray,
        small: dict[tuple[str, str], int],
        out: list[dict[str, Any]] | None = None,
    ) -> None:
        """Append points to a series as new rows (never rewriting an existing one).

        Full chunks of ``CHUNK_POINTS`` points, then one row for the rest; ``small``
        counts the short rows per series so that :meth:`compact_series` can merge them
        later. An append costs the same at the end of a chunk as at its start. With
        ``out``, the rows are added to it for :meth:`_insert_chunks` (one statement for
        every series of a batch) instead of inserted here."""
        cap = s.CHUNK_POINTS
        rows = [
            {
                "run_id": run_id,
                "key": key,
                "n": len(st[i : i + cap]),
                "step_min": int(st[i : i + cap].min()),
                "step_max": int(st[i : i + cap].max()),
                "stats": stats_of_arrays(st[i : i + cap], va[i : i + cap], tt[i : i + cap]),
                "steps": st[i : i + cap].tobytes(),
                "vals": va[i : i + cap].tobytes(),
                "ts": tt[i : i + cap].tobytes(),
            }
            for i in range(0, len(st), cap)
        ]
        if out is not None:
            out.extend(rows)
        else:
            self._insert_chunks(conn, rows)
        if len(st) % cap:
            small[(run_id, key)] = small.get((run_id, key), 0) + 1

    def _insert_chunks(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert chunk rows, every series of a batch in one statement.

        A binary ``COPY`` on PostgreSQL was measured and not kept: no faster, at 5-row
        batches (5 keys x 1,000 points) nor at 2M-point batches (psycopg already sends
        bytea parameters as binary; benchmarks/README.md)."""
        if rows:
            conn.execute(sa.insert(s.metric_chunks), rows)

    def compact_series(self, run_id: str, key: str) -> int:
        """Merge consecutive short rows of a series into chunks of up to ``CHUNK_POINTS``.

        Each merged row takes the smallest id of the rows it replaces, so reading in id
        order keeps the logged order; rows appended meanwhile are untouched. Safe to run
        concurrently with appends and with another compaction (only the rows this
        transaction deleted are merged). Returns the number of rows removed."""
        t = s.metric_chunks
        cap = s.CHUNK_POINTS
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(t.c.id, t.c.n)
                .where(t.c.run_id == run_id, t.c.key == key)
                .order_by(t.c.id)
            ).all()
            groups: list[list[int]] = []
            cur: list[int] = []
            cur_n = 0
            for rid, n in rows:
                if cur and (n >= cap or cur_n + n > cap):
                    groups.append(cur)
                    cur, cur_n = [], 0
                if n < cap:
                    cur.append(int(rid))
                    cur_n += int(n)
            groups.append(cur)
            removed = 0
            for group in groups:
                if len(group) < 2:
                    continue
                got = sorted(
                    conn.execute(
                        sa.delete(t)
                        .where(t.c.id.in_(group))
                        .returning(
                            t.c.id, t.c.n, t.c.step_min, t.c.step_max, t.c.steps, t.c.vals, t.c.ts
                        )
                    ).all(),
                    key=lambda r: int(r[0]),
                )
                if not got:
                    continue
                steps = b"".join(r[4] for r in got)
                vals = b"".join(r[5] for r in got)
                ts = b"".join(r[6] for r in got)
                conn.execute(
                    sa.insert(t).values(
                        id=int(got[0][0]),
                        run_id=run_id,
                        key=key,
                        n=sum(int(r[1]) for r in got),
                        step_min=min(int(r[2]) for r in got),
                        step_max=max(int(r[3]) for r in got),
                        stats=stats_of_arrays(
                            np.frombuffer(steps, "<i8"),
                            np.frombuffer(vals, "<f8"),
                            np.frombuffer(ts, "<f8"),
                        ),
                        steps=steps,
                        vals=vals,
                        ts=ts,
                    )
                )
                removed += len(got) - 1
        return removed

    def _upsert_summaries(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        upsert_summaries(SaDb(conn, self.dialect), rows)

    def metric_keys(self, run_id: str) -> list[str]:
        t = s.metric_summary
        with self._read() as conn:
            return [
                r[0]
                for r in conn.execute(
                    sa.select(t.c.key).where(t.c.run_id == run_id).order_by(t.c.key)
                )
            ]

    def history(self, run_id: str, key: str, max_points: int | None = None) -> History:
        if max_points is not None:
            with self._read() as conn:
                got = _downsampled(conn, self.dialect, run_id, key, max_points)
            if got is not None:
                return got
        t = s.metric_chunks
        rows: Sequence[Any]
        with self._read() as conn:
            if self.dialect == "postgresql":
                rows = _binary_chunks(conn, run_id, key)
            else:
                rows = conn.execute(
                    sa.select(t.c.steps, t.c.vals, t.c.ts)
                    .where(t.c.run_id == run_id, t.c.key == key)
                    .order_by(t.c.id)
                ).all()
        if not rows:
            empty_i = np.empty(0, dtype=np.int64)
            empty_f = np.empty(0, dtype=np.float64)
            return History(run_id, key, empty_i, empty_f, empty_f.copy(), 0)
        steps = np.frombuffer(b"".join(r[0] for r in rows), dtype="<i8")
        vals = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f8")
        ts = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f8")
        if len(steps) > 1 and bool(np.any(steps[1:] < steps[:-1])):
            order = np.argsort(steps, kind="stable")
            steps, vals, ts = steps[order], vals[order], ts[order]
        total = len(steps)
        if max_points is not None and total > max_points:
            steps, vals, ts = downsample(steps, vals, ts, max_points)
        return History(run_id, key, steps, vals, ts, total)


def _downsampled(
    conn: Connection, dialect: str, run_id: str, key: str, max_points: int
) -> History | None:
    """:func:`downsample` of a series, reading only the chunks it needs; None: read it all.

    A bucket's min and max point are the smallest (key, position) among the summaries of
    the chunks it holds whole (``metric_chunks.stats``) and the points of the chunks it
    holds in part, whose values are read (their steps and timestamps only at the points
    kept). The same points as :func:`downsample` over the whole series, which is read
    instead when the series is short, when its chunks are not in step order (the full
    read sorts), or when no chunk can be skipped."""
    t = s.metric_chunks
    meta = conn.execute(
        sa.select(t.c.id, t.c.n, t.c.step_min, t.c.step_max, t.c.stats)
        .where(t.c.run_id == run_id, t.c.key == key)
        .order_by(t.c.id)
    ).all()
    total = sum(int(r[1]) for r in meta)
    if total <= max_points:
        return None
    if max_points < 2:
        raise UsageError("max_points must be at least 2")
    stats = [unpack_stats(r[4]) for r in meta]
    prev: int | None = None
    for r, st in zip(meta, stats, strict=True):
        if (st is not None and not st.sorted) or (prev is not None and int(r[2]) < prev):
            return None  # not in step order: the full read sorts
        prev = int(r[3])
    size = -(-total // (max_points // 2))
    offsets: list[int] = []
    off = 0
    for r in meta:
        offsets.append(off)
        off += int(r[1])
    whole = [
        st is not None and o // size == (o + int(r[1]) - 1) // size
        for r, st, o in zip(meta, stats, offsets, strict=True)
    ]
    if all(not w for w in whole):
        return None
    partial = [int(r[0]) for r, w in zip(meta, whole, strict=True) if not w]
    # SQLite reaches a row's later blobs through the earlier ones' overflow pages: reading
    # the three arrays at once costs about what the values alone do, and saves the lookups
    bare = (
        set(partial)
        if dialect == "sqlite"
        else {int(r[0]) for r, st in zip(meta, stats, strict=True) if st is None}
    )
    arrays = _chunk_columns(conn, dialect, partial, bare)
    lo_best: dict[int, tuple[float, int]] = {}  # bucket -> (key, position)
    hi_best: dict[int, tuple[float, int]] = {}
    known: dict[int, tuple[int, float, float]] = {}  # position -> (step, value, ts)
    where: dict[int, tuple[int, int]] = {}  # position -> (chunk id, index) to look up

    def offer(b: int, lo: float, lo_at: int, hi: float, hi_at: int) -> None:
        if b not in lo_best or (lo, lo_at) < lo_best[b]:
            lo_best[b] = (lo, lo_at)
        if b not in hi_best or (-hi, hi_at) < (-hi_best[b][0], hi_best[b][1]):
            hi_best[b] = (hi, hi_at)

    for r, st, o, w in zip(meta, stats, offsets, whole, strict=True):
        cid, n = int(r[0]), int(r[1])
        if w and st is not None:
            offer(o // size, st.lo, o + st.lo_index, st.hi, o + st.hi_index)
            known[o + st.lo_index] = (st.lo_step, st.lo_value, st.lo_ts)
            known[o + st.hi_index] = (st.hi_step, st.hi_value, st.hi_ts)
            continue
        steps, vals, ts = arrays[cid]
        if steps is not None and len(steps) > 1 and bool(np.any(steps[1:] < steps[:-1])):
            return None
        nan = np.isnan(vals)
        lo_v = np.where(nan, np.inf, vals)
        hi_v = np.where(nan, -np.inf, vals)
        for b in range(o // size, (o + n - 1) // size + 1):
            a, e = max(o, b * size) - o, min(o + n, (b + 1) * size) - o
            il = a + int(lo_v[a:e].argmin())
            ih = a + int(hi_v[a:e].argmax())
            offer(b, float(lo_v[il]), o + il, float(hi_v[ih]), o + ih)
            for i in (il, ih):
                if steps is not None and ts is not None:
                    known[o + i] = (int(steps[i]), float(vals[i]), float(ts[i]))
                else:
                    known[o + i] = (0, float(vals[i]), 0.0)
                    where[o + i] = (cid, i)
    keep = sorted({p for _, p in lo_best.values()} | {p for _, p in hi_best.values()})
    looked = _points_at(conn, dialect, [where[p] for p in keep if p in where])
    out_s = np.empty(len(keep), dtype=np.int64)
    out_v = np.empty(len(keep), dtype=np.float64)
    out_t = np.empty(len(keep), dtype=np.float64)
    for j, p in enumerate(keep):
        step, value, stamp = known[p]
        if p in where:
            step, stamp = looked[where[p]]
        out_s[j], out_v[j], out_t[j] = step, value, stamp
    return History(run_id, key, out_s, out_v, out_t, total)


def _chunk_columns(
    conn: Connection, dialect: str, ids: list[int], bare: set[int]
) -> dict[int, tuple[np.ndarray | None, np.ndarray, np.ndarray | None]]:
    """Chunk id -> (steps, values, timestamps): only the values of chunks with a summary,
    all three of those without one (``bare``: their order is checked from their steps)."""
    out: dict[int, tuple[np.ndarray | None, np.ndarray, np.ndarray | None]] = {}
    if not ids:
        return out
    with_stats = [i for i in ids if i not in bare]
    full = [i for i in ids if i in bare]
    if dialect == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor(binary=True) as cur:
            if with_stats:
                cur.execute("SELECT id, vals FROM metric_chunks WHERE id = ANY(%s)", (with_stats,))
                rows = [(r[0], None, r[1], None) for r in cur.fetchall()]
            else:
                rows = []
            if full:
                cur.execute(
                    "SELECT id, steps, vals, ts FROM metric_chunks WHERE id = ANY(%s)", (full,)
                )
                rows += [tuple(r) for r in cur.fetchall()]
    else:
        t = s.metric_chunks
        rows = []
        for part in range(0, len(with_stats), 500):
            rows += [
                (r[0], None, r[1], None)
                for r in conn.execute(
                    sa.select(t.c.id, t.c.vals).where(t.c.id.in_(with_stats[part : part + 500]))
                )
            ]
        for part in range(0, len(full), 500):
            rows += [
                tuple(r)
                for r in conn.execute(
                    sa.select(t.c.id, t.c.steps, t.c.vals, t.c.ts).where(
                        t.c.id.in_(full[part : part + 500])
                    )
                )
            ]
    for cid, st, va, ts in rows:
        out[int(cid)] = (
            None if st is None else np.frombuffer(st, dtype="<i8"),
            np.frombuffer(va, dtype="<f8"),
            None if ts is None else np.frombuffer(ts, dtype="<f8"),
        )
    return out


def _points_at(
    conn: Connection, dialect: str, places: list[tuple[int, int]]
) -> dict[tuple[int, int], tuple[int, float]]:
    """(chunk id, index) -> (step, timestamp), read as 8-byte slices of the arrays."""
    out: dict[tuple[int, int], tuple[int, float]] = {}
    if not places:
        return out
    if dialect == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor(binary=True) as cur:
            cur.execute(
                "SELECT o.cid, o.i, substring(c.steps from o.i * 8 + 1 for 8), "
                "substring(c.ts from o.i * 8 + 1 for 8) "
                "FROM unnest(%s::bigint[], %s::int[]) AS o(cid, i) "
                "JOIN metric_chunks c ON c.id = o.cid",
                ([c for c, _ in places], [i for _, i in places]),
            )
            rows = cur.fetchall()
    else:
        rows = []
        for part in range(0, len(places), 400):
            chunk = places[part : part + 400]
            marks = ", ".join("(?, ?)" for _ in chunk)
            rows += conn.exec_driver_sql(
                f"WITH o(cid, i) AS (VALUES {marks}) "
                "SELECT o.cid, o.i, substr(c.steps, o.i * 8 + 1, 8), substr(c.ts, o.i * 8 + 1, 8) "
                "FROM o JOIN metric_chunks c ON c.id = o.cid",
                tuple(v for place in chunk for v in place),
            ).all()
    for cid, i, st, ts in rows:
        out[(int(cid), int(i))] = (
            int(np.frombuffer(st, dtype="<i8")[0]),
            float(np.frombuffer(ts, dtype="<f8")[0]),
        )
    return out


def _binary_chunks(conn: Connection, run_id: str, key: str) -> list[Any]:
    """A series' chunk rows (steps, vals, ts) from PostgreSQL in the binary result format:
    bytea arrives as its bytes, not as hex text to decode (a 10M-point series: 240 MB
    of arrays read in 0.5 s instead of 2.5 s)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor(binary=True) as cur:
        cur.execute(
            "SELECT steps, vals, ts FROM metric_chunks WHERE run_id = %s AND key = %s ORDER BY id",
            (run_id, key),
        )
        rows: list[Any] = cur.fetchall()
    return rows


def _series_summary(
    run_id: str, key: str, st: np.ndarray, va: np.ndarray, tt: np.ndarray
) -> dict[str, Any]:
    last = float(va[-1])
    finite = va[~np.isnan(va)]
    return {
        "run_id": run_id,
        "key": key,
        "count": len(va),
        "last": None if math.isnan(last) else last,
        "last_nan": math.isnan(last),
        "last_step": int(st[-1]),
        "last_ts": float(tt[-1]),
        "min": float(finite.min()) if len(finite) else None,
        "max": float(finite.max()) if len(finite) else None,
    }


def downsample(
    steps: np.ndarray, vals: np.ndarray, ts: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reduce to at most ``max_points`` points, keeping each bucket's min and max (so spikes survive).

    The series is cut into ``max_points // 2`` buckets of consecutive points (equal
    sizes, the last one shorter); each bucket contributes the index of its minimum and
    of its maximum, returned in step order. NaN is ignored when a bucket holds anything
    else, and kept when it holds nothing else.
    """
    if max_points < 2:
        raise UsageError("max_points must be at least 2")
    n = len(steps)
    if n <= max_points:
        return steps, vals, ts
    buckets = max_points // 2
    size = -(-n // buckets)  # ceil
    padded = size * buckets
    nan = np.isnan(vals)
    lo = np.full(padded, np.inf)
    np.copyto(lo[:n], vals)
    hi = np.full(padded, -np.inf)
    np.copyto(hi[:n], vals)
    lo[:n][nan] = np.inf
    hi[:n][nan] = -np.inf
    base = np.arange(0, padded, size)
    imin = lo.reshape(buckets, size).argmin(axis=1) + base
    imax = hi.reshape(buckets, size).argmax(axis=1) + base
    keep = np.unique(np.concatenate([imin, imax]))
    keep = keep[keep < n]
    return steps[keep], vals[keep], ts[keep]
