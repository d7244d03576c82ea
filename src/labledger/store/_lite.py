"""The embedded store's write path: SqlStore's statements on a stdlib ``sqlite3`` connection.

Why not SqlStore itself on this path: importing SQLAlchemy (and numpy, and Alembic for
a new store) takes 0.3-1 s, and several seconds on a loaded machine. While that
happened in the writer thread a run killed early left no trace at all. ``LiteStore``
needs nothing that ``import labledger`` has not loaded already, so ``init()``
registers the run in the store before it returns, and the writer appends points from
its first wake-up on.

It is a connection adapter, not a second implementation: the run insert, batch claim,
summary upsert, live run update, edit rows, audit record read and chain append are the
statements of ``_statements`` that SqlStore runs too (through ``_statements.LiteDb``
here). What is its own is the connection (pragmas, ``BEGIN IMMEDIATE`` under a lock
shared by the writer and capture threads, fork safety) and the open tail chunk kept in
memory. ``tests/core/test_lite.py`` writes the same batches through both and compares
rows. A batch for a run that has already ended (frozen fields, edit events) and a late
batch replayed by ``labledger sync`` go to SqlStore. Everything else (reads, artifacts,
repro verdicts, migrations of an older store) goes to a full SqlStore, opened on first
use by attribute delegation. A new store file gets its schema from the snapshot in
``_sqlite_ddl.py`` (generated from ``_schema.py`` by ``python -m
labledger.store._gen_ddl``) when that snapshot is at the code's migrations; otherwise (a
migration was added and the snapshot not regenerated) the caller falls back to
SqlStore and Alembic.
"""

from __future__ import annotations

import fcntl
import math
import os
import sqlite3
import sys
import threading
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._chunk_stats import stats_of_lists
from ._fields import SEALED_STATUSES
from ._locate import code_revisions, sqlite_path
from ._media_blobs import MediaBytes
from ._statements import (
    INSERT_CHUNK,
    LiteDb,
    append_entry,
    claim_batch,
    insert_run,
    update_run,
    upsert_summaries,
    write_media,
)

if TYPE_CHECKING:
    from ._base import Batch

__all__ = ["CHUNK_POINTS", "STAMPED_KEYS", "LiteStore", "NeedsMigration"]

CHUNK_POINTS = 8192  # = _schema.CHUNK_POINTS (checked by the tests)
# labledger_meta rows a migration stamps with the time it ran (not part of the snapshot)
STAMPED_KEYS = ("audit_since",)
_LITTLE = sys.byteorder == "little"
# Connections inherited by a forked child: kept referenced, never closed (closing a
# copied SQLite connection would drop the parent's POSIX locks on the file).
_INHERITED: list[sqlite3.Connection] = []
_LIVE: list[LiteStore] = []


def _after_fork_in_child() -> None:
    for store in list(_LIVE):
        if store._con is not None:
            _INHERITED.append(store._con)
            store._con = None
    _LIVE.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


class NeedsMigration(Exception):
    """The store file needs Alembic (an older schema, or a stale schema snapshot)."""


def _plain(seq: Any) -> list[Any]:
    """A list of Python numbers (numpy arrays give numpy scalars to list(): sqlite3 binds those as blobs)."""
    if isinstance(seq, list):
        return seq
    tolist = getattr(seq, "tolist", None)
    return list(tolist()) if callable(tolist) else list(seq)


def _unpack(kind: str, data: bytes) -> list[Any]:
    a = array(kind, data)
    if not _LITTLE:
        a.byteswap()
    return a.tolist()


def _pack(kind: str, values: Sequence[float] | Sequence[int]) -> bytes:
    a = array(kind, values)
    if not _LITTLE:
        a.byteswap()
    return a.tobytes()


class LiteStore:
    """Registration and batch writes for ``sqlite:///PATH`` with stdlib ``sqlite3``.

    ``busy_ms`` bounds how long a write waits for another process's write lock
    (``init()`` uses a short bound and leaves a busy store to the writer thread).
    Any attribute it does not have is served by a full SqlStore opened on first use.
    """

    points_as_lists = True  # the ListPoints role: the writer hands it lists, not numpy

    def __init__(self, uri: str, *, busy_ms: int = 60_000, synchronous: str = "FULL") -> None:
        self.uri = uri
        self.path: Path = sqlite_path(uri)
        self._tails: dict[str, tuple[int, bytes, bytes, bytes, int, int, int]] = {}
        self._full: Any = None
        self._full_lock = threading.Lock()
        self._tx_lock = threading.RLock()  # one transaction at a time on the shared connection
        self._busy_ms = busy_ms
        if "media_bytes" not in self.__dict__:  # kept when _reopen() runs __init__ again
            self.media_bytes = MediaBytes(uri)  # where rich results' bytes live
        con = sqlite3.connect(
            str(self.path), timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            con.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute(f"PRAGMA synchronous = {'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
            con.execute("PRAGMA foreign_keys = ON")
            self._con: sqlite3.Connection | None = con
            self._ensure_schema()
        except BaseException:
            con.close()
            raise
        _LIVE.append(self)

    # -- schema ----------------------------------------------------------------------

    def _applied(self) -> set[str] | None:
        con = self._c
        names = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        if "labledger_meta" not in names:
            if names:
                raise NeedsMigration("not a labledger store")  # SqlStore says so clearly
            return None
        row = con.execute("select value from labledger_meta where key = 'revisions'").fetchone()
        return set(row[0].split(",")) if row and row[0] else set()

    def _ensure_schema(self) -> None:
        known = code_revisions()
        applied = self._applied()
        if applied is not None:
            if applied != known:
                raise NeedsMigration(f"store at {sorted(applied)}, code at {sorted(known)}")
            return
        from ._sqlite_ddl import REVISIONS, STATEMENTS

        if set(REVISIONS) != known:
            raise NeedsMigration("the schema snapshot is older than the migrations")
        # the same lock file as SqlStore's migrations: one creator at a time
        with open(str(self.path) + ".migrate.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                if self._applied() is not None:
                    return self._ensure_schema()
                con = self._c
                con.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in STATEMENTS:
                        con.execute(stmt)
                    for key in STAMPED_KEYS:  # as migration 0008 does: when auditing began
                        con.execute(
                            "INSERT INTO labledger_meta (key, value) VALUES (?, ?)",
                            (key, repr(time.time())),
                        )
                    con.execute("COMMIT")
                except BaseException:
                    if con.in_transaction:
                        con.execute("ROLLBACK")
                    raise
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return None

    # -- plumbing --------------------------------------------------------------------

    @property
    def _c(self) -> sqlite3.Connection:
        if self._con is None:
            raise RuntimeError("this LiteStore was closed or inherited across fork")
        return self._con

    def _tx(self) -> _Tx:
        return _Tx(self._c, self._tx_lock)

    def __getattr__(self, name: str) -> Any:
        # everything but writing: a full SqlStore, opened on first use
        if name.startswith("__") or name in (
            "_con",
            "_full",
            "_full_lock",
            "_tx_lock",
            "media_bytes",
        ):
            raise AttributeError(name)
        return getattr(self.full(), name)

    def full(self) -> Any:
        """The SqlStore for this file (imports SQLAlchemy; opened once, on first use)."""
        with self._full_lock:
            if self._full is None:
                from .sql import SqlStore

                self._full = SqlStore(self.uri)
                self._full.media_bytes = self.media_bytes
            return self._full

    def use_artifacts(self, artifacts_uri: str | None = None, blobs: Any = None) -> None:
        """Keep the bytes of rich results in ``artifacts_uri`` (or the open blob store ``blobs``)."""
        self.media_bytes.use(artifacts_uri, blobs)

    def close(self) -> None:
        """Close the connection (reconnects on the next write) and the SqlStore's pool."""
        con, self._con = self._con, None
        if con is not None:
            con.close()
            if self in _LIVE:
                _LIVE.remove(self)
        if self._full is not None:
            self._full.close()

    def set_busy(self, busy_ms: int) -> None:
        """How long later writes wait for another process's write lock; later commits fsync.

        (init() registers with ``synchronous=NORMAL``: durable against a killed process
        at once, against power loss with the writer's first commit, 0.1 s later, whose
        fsync of the WAL covers every earlier frame.)"""
        with self._tx_lock:
            self._c.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
            self._c.execute("PRAGMA synchronous = FULL")
        self._busy_ms = busy_ms

    def _reopen(self) -> None:
        if self._con is None:
            self.__init__(self.uri, busy_ms=self._busy_ms)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"LiteStore({self.uri!r})"

    # -- writing ---------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> None:
        self._reopen()
        with self._tx() as con:
            insert_run(LiteDb(con), run, time.time())

    def write_batch(self, batch: Batch, *, actor: str | None = None, late: bool = False) -> bool:
        if late:
            # a late (spilled) batch is checked against the sealed record: SqlStore's rules
            return bool(self.full().write_batch(batch, actor=actor, late=late))
        self._reopen()
        # the bytes first, durable before a row names them
        storage = self.media_bytes.put(batch.media) if batch.media else None
        pending: dict[str, tuple[int, bytes, bytes, bytes, int, int, int]] = {}
        try:
            with self._tx() as con:
                cur: tuple[Any, ...] | None = None
                if batch.metrics or batch.run_update or batch.media:
                    cur = con.execute(
                        "SELECT project, status, author, notes FROM runs WHERE id = ?",
                        (batch.run_id,),
                    ).fetchone()
                    if cur is not None and cur[1] in SEALED_STATUSES:
                        # the run has ended: frozen fields, edit events and their chain
                        # entries are SqlStore's (store/_audit_sql.py, _edits_sql.py)
                        raise _Sealed
                db = LiteDb(con)
                if not claim_batch(db, batch.id, batch.run_id, time.time()):
                    return False
                summaries = []
                for key, (steps, vals, ts) in batch.metrics.items():
                    st = _plain(steps)
                    if not st:
                        continue
                    va, tt = _plain(vals), _plain(ts)
                    self._write_series(con, batch.run_id, key, st, va, tt, pending)
                    summaries.append(_summary(batch.run_id, key, st, va, tt))
                upsert_summaries(db, summaries)
                write_media(db, batch.run_id, batch.media, storage)
                update_run(
                    db,
                    batch.run_id,
                    batch.run_update,
                    batch.heartbeat,
                    notes_before=None if cur is None else cur[3],
                    editor=None if cur is None else (actor or cur[2]),
                )
                if cur is not None and batch.run_update.get("status") in SEALED_STATUSES:
                    # the batch that ends a run seals it, in the same transaction
                    append_entry(db, str(cur[0]), batch.run_id, "seal")
        except _Sealed:
            return bool(self.full().write_batch(batch, actor=actor, late=late))
        self._tails.update(pending)
        if len(self._tails) > 4096:
            for k in list(self._tails)[: len(self._tails) - 2048]:
                del self._tails[k]
        return True

    def _write_series(
        self,
        con: sqlite3.Connection,
        run_id: str,
        key: str,
        st: list[int],
        va: list[float],
        tt: list[float],
        pending: dict[str, tuple[int, bytes, bytes, bytes, int, int, int]],
    ) -> None:
        cap = CHUNK_POINTS
        tkey = run_id + "\x00" + key
        tail = pending.get(tkey) or self._tails.get(tkey)
        n = len(st)
        if tail is not None and tail[4] + n <= cap:
            cid, tsb, tvb, ttb, tn, smin, smax = tail
            nsb = tsb + _pack("q", st)
            nvb = tvb + _pack("d", va)
            ntb = ttb + _pack("d", tt)
            smin2, smax2 = min(smin, min(st)), max(smax, max(st))
            con.execute(
                "UPDATE metric_chunks SET n = ?, step_min = ?, step_max = ?, stats = NULL, "
                "steps = ?, vals = ?, ts = ? WHERE id = ?",
                (tn + n, smin2, smax2, nsb, nvb, ntb, cid),
            )
            pending[tkey] = (cid, nsb, nvb, ntb, tn + n, smin2, smax2)
            return
        if tail is not None:  # the open tail is closed: its summary for downsampled reads
            con.execute(
                "UPDATE metric_chunks SET stats = ? WHERE id = ?",
                (
                    stats_of_lists(
                        _unpack("q", tail[1]), _unpack("d", tail[2]), _unpack("d", tail[3])
                    ),
                    tail[0],
                ),
            )
        full = (n // cap) * cap if n % cap else n - cap
        rows = []
        for i in range(0, full, cap):
            part = st[i : i + cap]
            rows.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "n": cap,
                    "step_min": min(part),
                    "step_max": max(part),
                    "stats": stats_of_lists(part, va[i : i + cap], tt[i : i + cap]),
                    "steps": _pack("q", part),
                    "vals": _pack("d", va[i : i + cap]),
                    "ts": _pack("d", tt[i : i + cap]),
                }
            )
        if rows:
            con.executemany(INSERT_CHUNK, rows)
        rst, rva, rtt = st[full:], va[full:], tt[full:]
        smin, smax = min(rst), max(rst)
        bs, bv, bt = _pack("q", rst), _pack("d", rva), _pack("d", rtt)
        cur = con.execute(
            INSERT_CHUNK,
            {
                "run_id": run_id,
                "key": key,
                "n": len(rst),
                "step_min": smin,
                "step_max": smax,
                "stats": None,  # the open tail: summarised when closed
                "steps": bs,
                "vals": bv,
                "ts": bt,
            },
        )
        cid = int(cur.lastrowid or 0)
        pending[tkey] = (cid, bs, bv, bt, len(rst), smin, smax)

    def put_blob(self, data: bytes) -> str:
        """Store ``data`` content-addressed (zlib-compressed); return its sha256. Idempotent."""
        import hashlib
        import zlib

        self._reopen()
        digest = hashlib.sha256(data).hexdigest()
        with self._tx() as con:
            con.execute(
                "INSERT INTO blobs (sha256, size, data) VALUES (?, ?, ?) "
                "ON CONFLICT (sha256) DO NOTHING",
                (digest, len(data), zlib.compress(data, 6)),
            )
        return digest


def _summary(
    run_id: str, key: str, st: list[int], va: list[float], tt: list[float]
) -> dict[str, Any]:
    last = float(va[-1])
    lnan = math.isnan(last)
    # min()/max() skip NaN except as the first element; then filter (like numpy's ~isnan)
    lo: Any = min(va)
    hi: Any = max(va)
    if lo != lo or hi != hi:
        finite = [v for v in va if v == v]
        lo, hi = (min(finite), max(finite)) if finite else (None, None)
    return {
        "run_id": run_id,
        "key": key,
        "count": len(va),
        "last": None if lnan else last,
        "last_nan": lnan,
        "last_step": int(st[-1]),
        "last_ts": float(tt[-1]),
        "min": None if lo is None else float(lo),
        "max": None if hi is None else float(hi),
    }


class _Sealed(Exception):
    """The batch's run has ended: the batch goes to SqlStore (internal signal)."""


class _Tx:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection.

    The connection is shared by the writer thread and the capture thread (blobs), so a
    transaction holds the store's lock: two threads must never interleave BEGINs on one
    connection. A failed COMMIT is rolled back, so the next transaction can begin."""

    def __init__(self, con: sqlite3.Connection, lock: threading.RLock) -> None:
        self.con = con
        self.lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            if self.con.in_transaction:  # left open by an interrupted transaction
                self.con.execute("ROLLBACK")
            self.con.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.con

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                try:
                    self.con.execute("COMMIT")
                except BaseException:
                    if self.con.in_transaction:
                        self.con.execute("ROLLBACK")
                    raise
            elif self.con.in_transaction:
                self.con.execute("ROLLBACK")
        finally:
            self.lock.release()
