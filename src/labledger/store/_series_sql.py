"""Metric series in SQL: chunked binary arrays per (run, key), summaries, reads.

Mixed into :class:`~labledger.store.sql.SqlStore`. A series is stored as rows of up to
``CHUNK_POINTS`` points (packed little-endian int64 steps, float64 values, float64
timestamps); ``metric_summary`` keeps count/last/min/max per series, upserted in the
same transaction as the chunks.
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

if TYPE_CHECKING:
    import contextlib

__all__ = ["SeriesSqlMixin", "downsample"]

_Tail = tuple[int, bytes, bytes, bytes, int, int, int]


class SeriesSqlMixin:
    """Writing and reading metric series; needs ``dialect``, ``upsert``, ``_read`` and ``_tails``."""

    dialect: str
    _tails: dict[tuple[str, str], _Tail]

    def upsert(self, table: sa.Table) -> Any:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _write_series(
        self,
        conn: Connection,
        run_id: str,
        key: str,
        st: np.ndarray,
        va: np.ndarray,
        tt: np.ndarray,
        pending: dict[tuple[str, str], tuple[int, bytes, bytes, bytes, int, int, int]],
    ) -> None:
        """Append points to a series: grow this process's open tail chunk, else add chunks."""
        cap = s.CHUNK_POINTS
        tkey = (run_id, key)
        tail = pending.get(tkey) or self._tails.get(tkey)
        n = len(st)
        if tail is not None and tail[4] + n <= cap:
            cid, tsb, tvb, ttb, tn, smin, smax = tail
            nsb, nvb, ntb = tsb + st.tobytes(), tvb + va.tobytes(), ttb + tt.tobytes()
            smin2, smax2 = min(smin, int(st.min())), max(smax, int(st.max()))
            conn.execute(
                sa.update(s.metric_chunks)
                .where(s.metric_chunks.c.id == cid)
                .values(n=tn + n, step_min=smin2, step_max=smax2, steps=nsb, vals=nvb, ts=ntb)
            )
            pending[tkey] = (cid, nsb, nvb, ntb, tn + n, smin2, smax2)
            return
        full = (n // cap) * cap if n % cap else n - cap
        rows = [
            {
                "run_id": run_id,
                "key": key,
                "n": cap,
                "step_min": int(st[i : i + cap].min()),
                "step_max": int(st[i : i + cap].max()),
                "steps": st[i : i + cap].tobytes(),
                "vals": va[i : i + cap].tobytes(),
                "ts": tt[i : i + cap].tobytes(),
            }
            for i in range(0, full, cap)
        ]
        if rows:
            conn.execute(sa.insert(s.metric_chunks), rows)
        rst, rva, rtt = st[full:], va[full:], tt[full:]
        smin, smax = int(rst.min()), int(rst.max())
        cid = conn.execute(
            sa.insert(s.metric_chunks)
            .values(
                run_id=run_id,
                key=key,
                n=len(rst),
                step_min=smin,
                step_max=smax,
                steps=rst.tobytes(),
                vals=rva.tobytes(),
                ts=rtt.tobytes(),
            )
            .returning(s.metric_chunks.c.id)
        ).scalar_one()
        pending[tkey] = (cid, rst.tobytes(), rva.tobytes(), rtt.tobytes(), len(rst), smin, smax)

    def _upsert_summaries(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        t = s.metric_summary
        ins = self.upsert(t)
        ex = ins.excluded
        least = sa.func.min if self.dialect == "sqlite" else sa.func.least
        greatest = sa.func.max if self.dialect == "sqlite" else sa.func.greatest

        def combine(fn: Any, old: Any, new: Any) -> Any:
            return sa.case((old.is_(None), new), (new.is_(None), old), else_=fn(old, new))

        # "last" is the most recently logged value: a batch replayed late (from a spool)
        # must not overwrite a newer one. SET expressions all read the row's old values.
        newer = ex.last_ts >= t.c.last_ts

        def latest(col: str) -> Any:
            return sa.case((newer, ex[col]), else_=t.c[col])

        stmt = ins.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={
                "count": t.c.count + ex["count"],
                "last": latest("last"),
                "last_nan": latest("last_nan"),
                "last_step": latest("last_step"),
                "last_ts": latest("last_ts"),
                "min": combine(least, t.c.min, ex["min"]),
                "max": combine(greatest, t.c.max, ex["max"]),
            },
        )
        conn.execute(stmt, rows)

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
        t = s.metric_chunks
        with self._read() as conn:
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
