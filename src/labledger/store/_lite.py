"""The embedded store's write path on the standard library's ``sqlite3``.

Why a second write path beside :class:`~labledger.store.sql.SqlStore`: importing
SQLAlchemy (and numpy, and Alembic for a new store) takes 0.3-1 s, and several
seconds on a loaded machine. While that happened in the writer thread a run killed
early left no trace at all. ``LiteStore`` needs nothing that ``import labledger``
has not loaded already, so ``init()`` registers the run in the store before it
returns, and the writer appends points from its first wake-up on.

It writes exactly the rows SqlStore writes (same tables, same chunk format, same
summary rules, same batch idempotency, the same edit events and the same audit-chain
entry when a batch ends a run, hashed by the rules in ``_audit_core``): the
equivalence is pinned by ``tests/core/test_lite.py``. A batch for a run that has
already ended (frozen fields, edit events) and a late batch replayed by ``labledger
sync`` go to SqlStore. Everything else (reads, artifacts, repro verdicts,
migrations of an older store) goes to a full SqlStore, opened on first use by
attribute delegation. A new store file gets its schema from the snapshot in
``_sqlite_ddl.py`` when that snapshot matches the code's migrations; otherwise (a
migration was added and the snapshot not regenerated: ``python -m
labledger.store._lite``) the caller falls back to SqlStore and Alembic.
"""

from __future__ import annotations

import fcntl
import json
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

from .._exceptions import UsageError
from .._values import encode_json
from ._fields import RUN_JSON_FIELDS, SEALED_STATUSES, UPDATABLE_RUN_FIELDS
from ._locate import code_revisions, sqlite_path

if TYPE_CHECKING:
    from ._base import Batch, MediaItem

__all__ = ["CHUNK_POINTS", "LiteStore", "NeedsMigration", "dump_schema"]

CHUNK_POINTS = 8192  # = _schema.CHUNK_POINTS (checked by the tests)
# labledger_meta rows a migration stamps with the time it ran (not part of the snapshot)
_STAMPED_KEYS = ("audit_since",)
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


def _dumps(value: Any) -> str:
    # SQLAlchemy's JSON type on SQLite stores json.dumps() text: the same here
    return json.dumps(encode_json(value))


def _plain(seq: Any) -> list[Any]:
    """A list of Python numbers (numpy arrays give numpy scalars to list(): sqlite3 binds those as blobs)."""
    if isinstance(seq, list):
        return seq
    tolist = getattr(seq, "tolist", None)
    return list(tolist()) if callable(tolist) else list(seq)


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

    def __init__(self, uri: str, *, busy_ms: int = 60_000, synchronous: str = "FULL") -> None:
        self.uri = uri
        self.path: Path = sqlite_path(uri)
        self._tails: dict[str, tuple[int, bytes, bytes, bytes, int, int, int]] = {}
        self._full: Any = None
        self._full_lock = threading.Lock()
        self._tx_lock = threading.RLock()  # one transaction at a time on the shared connection
        self._busy_ms = busy_ms
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
                    for key in _STAMPED_KEYS:  # as migration 0008 does: when auditing began
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
        if name.startswith("__") or name in ("_con", "_full", "_full_lock", "_tx_lock"):
            raise AttributeError(name)
        return getattr(self.full(), name)

    def full(self) -> Any:
        """The SqlStore for this file (imports SQLAlchemy; opened once, on first use)."""
        with self._full_lock:
            if self._full is None:
                from .sql import SqlStore

                self._full = SqlStore(self.uri)
            return self._full

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
        now = time.time()
        cols: dict[str, Any] = {
            "id": run["id"],
            "project": run["project"],
            "name": run["name"],
            "status": run.get("status", "running"),
            "created_at": run.get("created_at", now),
            "ended_at": run.get("ended_at"),
            "heartbeat_at": run.get("heartbeat_at", now),
            "host": run.get("host"),
            "pid": run.get("pid"),
            "pid_start": run.get("pid_start"),
            "notes": run.get("notes"),
            "seed": run.get("seed"),
            "parent_run_id": run.get("parent_run_id"),
            "author": run.get("author"),
            "group": run.get("group"),
            "job_type": run.get("job_type"),
            "updated_at": now,
        }
        for f in RUN_JSON_FIELDS:
            cols[f] = _dumps(run.get(f) or ([] if f in ("tags", "datasets") else {}))
        names = ", ".join(f'"{c}"' for c in cols)  # "group" is an SQL keyword
        with self._tx() as con:
            con.execute(
                "INSERT INTO projects (name, created_at, settings) VALUES (?, ?, NULL) "
                "ON CONFLICT (name) DO NOTHING",
                (run["project"], now),
            )
            con.execute(
                f"INSERT INTO runs ({names}) VALUES ({', '.join('?' * len(cols))})",
                tuple(cols.values()),
            )

    def write_batch(self, batch: Batch, *, actor: str | None = None, late: bool = False) -> bool:
        if late:
            # a late (spilled) batch is checked against the sealed record: SqlStore's rules
            return bool(self.full().write_batch(batch, actor=actor, late=late))
        self._reopen()
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
                ins = con.execute(
                    "INSERT INTO applied_batches (id, run_id, applied_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (id) DO NOTHING",
                    (batch.id, batch.run_id, time.time()),
                )
                if ins.rowcount == 0:
                    return False
                summaries = []
                for key, (steps, vals, ts) in batch.metrics.items():
                    st = _plain(steps)
                    if not st:
                        continue
                    va, tt = _plain(vals), _plain(ts)
                    self._write_series(con, batch.run_id, key, st, va, tt, pending)
                    summaries.append(_summary(batch.run_id, key, st, va, tt))
                if summaries:
                    con.executemany(_UPSERT_SUMMARY, summaries)
                if batch.media:
                    _write_media(con, batch.run_id, batch.media)
                self._apply_run_update(
                    con, batch.run_id, batch.run_update, batch.heartbeat, cur, actor
                )
                if cur is not None and batch.run_update.get("status") in SEALED_STATUSES:
                    # the batch that ends a run seals it, in the same transaction
                    append_entry(con, str(cur[0]), batch.run_id, "seal")
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
                "UPDATE metric_chunks SET n = ?, step_min = ?, step_max = ?, steps = ?, "
                "vals = ?, ts = ? WHERE id = ?",
                (tn + n, smin2, smax2, nsb, nvb, ntb, cid),
            )
            pending[tkey] = (cid, nsb, nvb, ntb, tn + n, smin2, smax2)
            return
        full = (n // cap) * cap if n % cap else n - cap
        rows = []
        for i in range(0, full, cap):
            part = st[i : i + cap]
            rows.append(
                (
                    run_id,
                    key,
                    cap,
                    min(part),
                    max(part),
                    _pack("q", part),
                    _pack("d", va[i : i + cap]),
                    _pack("d", tt[i : i + cap]),
                )
            )
        if rows:
            con.executemany(_INSERT_CHUNK, rows)
        rst, rva, rtt = st[full:], va[full:], tt[full:]
        smin, smax = min(rst), max(rst)
        bs, bv, bt = _pack("q", rst), _pack("d", rva), _pack("d", rtt)
        cur = con.execute(_INSERT_CHUNK, (run_id, key, len(rst), smin, smax, bs, bv, bt))
        cid = int(cur.lastrowid or 0)
        pending[tkey] = (cid, bs, bv, bt, len(rst), smin, smax)

    def _apply_run_update(
        self,
        con: sqlite3.Connection,
        run_id: str,
        update: dict[str, Any],
        heartbeat: float | None,
        cur: tuple[Any, ...] | None = None,
        actor: str | None = None,
    ) -> None:
        if not update and heartbeat is None:
            return
        unknown = set(update) - UPDATABLE_RUN_FIELDS
        if unknown:
            raise UsageError(f"cannot update run fields {sorted(unknown)}")
        values: dict[str, Any] = {"updated_at": time.time()}
        for k, v in update.items():
            values[k] = _dumps(v) if k in RUN_JSON_FIELDS else v
        if "env" in update:
            row = con.execute("SELECT env FROM runs WHERE id = ?", (run_id,)).fetchone()
            merged = dict(json.loads(row[0]) if row and row[0] else {})
            merged.update(encode_json(update["env"]))
            values["env"] = json.dumps(merged)
        if heartbeat is not None:
            values["heartbeat_at"] = heartbeat
            if "status" not in update:
                con.execute(
                    "UPDATE runs SET status = 'running', ended_at = NULL "
                    "WHERE id = ? AND status = 'crashed'",
                    (run_id,),
                )
        if cur is not None and "notes" in update and update["notes"] != cur[3]:
            # run.notes = ... while the run is going: an edit event, as SqlStore records it
            add_edit(con, run_id, "notes", cur[3], update["notes"], actor or cur[2])
        sets = ", ".join(f'"{k}" = ?' for k in values)
        con.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*values.values(), run_id))

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


def _write_media(con: sqlite3.Connection, run_id: str, media: Sequence[MediaItem]) -> None:
    """The rules of ``MediaSqlMixin._write_media``: bytes once in ``blobs``, a row each."""
    import zlib

    blobs: dict[str, tuple[str, int, bytes]] = {}
    rows = []
    for m in media:
        sha = m.sha256
        if sha not in blobs:
            blobs[sha] = (sha, len(m.data), zlib.compress(m.data, 1))
        meta = _dumps(m.meta)
        rows.append(
            (
                run_id,
                m.key,
                int(m.step),
                int(m.seq),
                m.kind,
                sha,
                len(m.data),
                m.caption,
                meta,
                m.ts,
            )
        )
    con.executemany(
        "INSERT INTO blobs (sha256, size, data) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
        list(blobs.values()),
    )
    con.executemany(
        "INSERT INTO media (run_id, key, step, seq, kind, sha256, size, caption, meta, ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, key, step, seq) DO NOTHING",
        rows,
    )


_INSERT_CHUNK = (
    "INSERT INTO metric_chunks (run_id, key, n, step_min, step_max, steps, vals, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# the rules of SeriesSqlMixin._upsert_summaries: "last" only moves forward in time,
# min/max ignore NULL (all-NaN batches)
_UPSERT_SUMMARY = """
INSERT INTO metric_summary (run_id, key, count, last, last_nan, last_step, last_ts, min, max)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key) DO UPDATE SET
  count = metric_summary.count + excluded.count,
  last = CASE WHEN excluded.last_ts >= metric_summary.last_ts THEN excluded.last
              ELSE metric_summary.last END,
  last_nan = CASE WHEN excluded.last_ts >= metric_summary.last_ts THEN excluded.last_nan
                  ELSE metric_summary.last_nan END,
  last_step = CASE WHEN excluded.last_ts >= metric_summary.last_ts THEN excluded.last_step
                   ELSE metric_summary.last_step END,
  last_ts = CASE WHEN excluded.last_ts >= metric_summary.last_ts THEN excluded.last_ts
                 ELSE metric_summary.last_ts END,
  min = CASE WHEN metric_summary.min IS NULL THEN excluded.min
             WHEN excluded.min IS NULL THEN metric_summary.min
             ELSE min(metric_summary.min, excluded.min) END,
  max = CASE WHEN metric_summary.max IS NULL THEN excluded.max
             WHEN excluded.max IS NULL THEN metric_summary.max
             ELSE max(metric_summary.max, excluded.max) END
"""


def _summary(
    run_id: str, key: str, st: list[int], va: list[float], tt: list[float]
) -> tuple[Any, ...]:
    last = float(va[-1])
    lnan = math.isnan(last)
    # min()/max() skip NaN except as the first element; then filter (like numpy's ~isnan)
    lo: Any = min(va)
    hi: Any = max(va)
    if lo != lo or hi != hi:
        finite = [v for v in va if v == v]
        lo, hi = (min(finite), max(finite)) if finite else (None, None)
    return (
        run_id,
        key,
        len(va),
        None if lnan else last,
        1 if lnan else 0,
        int(st[-1]),
        float(tt[-1]),
        None if lo is None else float(lo),
        None if hi is None else float(hi),
    )


class _Sealed(Exception):
    """The batch's run has ended: the batch goes to SqlStore (internal signal)."""


def add_edit(
    con: sqlite3.Connection, run_id: str, field: str, old: Any, new: Any, author: str | None
) -> None:
    """One ``run_edits`` row, as ``EditSqlMixin._add_edits`` writes it."""
    import uuid  # (with platform, a few ms: imported when a run has an edit, not by init())

    con.execute(
        "INSERT INTO run_edits (id, run_id, field, old, new, author, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            uuid.uuid4().hex,
            run_id,
            field,
            json.dumps({"v": encode_json(old)}),
            json.dumps({"v": encode_json(new)}),
            author,
            time.time(),
        ),
    )


def record_fields(con: sqlite3.Connection, run_id: str, fmt: int | None = None) -> dict[str, str]:
    """The field digests of a run's record: the same rows, in the same order, that
    ``AuditSqlMixin._record_fields`` reads, digested by the same ``_audit_core.Record``
    (in record format ``fmt``, default the current one)."""
    from ._audit_core import FORMAT, JSON_FIELDS, SCALAR_FIELDS, Record

    names = (*SCALAR_FIELDS, *JSON_FIELDS)
    cols = ", ".join(f'"{c}"' for c in names)
    row = con.execute(f"SELECT {cols} FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        return {}
    rec = Record(dict(zip(names, row, strict=True)), FORMAT if fmt is None else fmt)
    edit_cols = ("id", "run_id", "field", "old", "new", "author", "at")
    for e in con.execute(
        f"SELECT {', '.join(edit_cols)} FROM run_edits WHERE run_id = ? ORDER BY at, id",
        (run_id,),
    ):
        rec.edit(dict(zip(edit_cols, e, strict=True)))
    for m in con.execute(
        "SELECT key, count, last, last_nan, last_step, min, max FROM metric_summary "
        "WHERE run_id = ?",
        (run_id,),
    ):
        rec.metric(*m)
    for c in con.execute(
        "SELECT key, steps, vals, ts FROM metric_chunks WHERE run_id = ? ORDER BY key, id",
        (run_id,),
    ):
        rec.chunk(*c)
    for a in con.execute(
        "SELECT id, name, version, kind, sha256 FROM artifact_versions "
        "WHERE run_id = ? ORDER BY name, version",
        (run_id,),
    ):
        rec.artifact(*a)
    if rec.format >= 2:  # the manifest of each version
        rec.files(
            con.execute(
                "SELECT f.version_id, f.path, f.sha256, f.size FROM artifact_files f "
                "JOIN artifact_versions v ON v.id = f.version_id WHERE v.run_id = ?",
                (run_id,),
            )
        )
    for u in con.execute(
        "SELECT version_id FROM artifact_uses WHERE run_id = ? ORDER BY version_id", (run_id,)
    ):
        rec.use(u[0])
    rec.media(
        con.execute(
            "SELECT key, step, seq, kind, sha256, caption FROM media WHERE run_id = ?", (run_id,)
        )
    )
    return rec.fields()


def append_entry(con: sqlite3.Connection, project: str, run_id: str, kind: str) -> str:
    """Hash the run's record as it is in this transaction and chain it (as
    ``AuditSqlMixin._append_entry`` does on SQLite); return the record's hash."""
    from ._audit_core import chain_entry

    head = con.execute(
        "SELECT seq, entry_sha256 FROM audit_log WHERE project = ? ORDER BY seq DESC LIMIT 1",
        (project,),
    ).fetchone()
    row = chain_entry(
        head,
        project=project,
        run_id=run_id,
        kind=kind,
        edit_id=None,
        fields=record_fields(con, run_id),
        now=time.time(),
    )
    cols = tuple(row)
    con.execute(
        f"INSERT INTO audit_log ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        tuple(json.dumps(row[c]) if c == "fields" else row[c] for c in cols),
    )
    return str(row["record_sha256"])


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


def dump_schema(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """(revisions, statements) that recreate a freshly migrated store at ``path``."""
    con = sqlite3.connect(os.fspath(path))
    try:
        stmts = [
            r[0]
            for r in con.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
            )
        ]
        for table in ("labledger_meta", "alembic_version"):
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            for row in con.execute(f"SELECT * FROM {table} ORDER BY 1"):
                if table == "labledger_meta" and row[0] in _STAMPED_KEYS:
                    continue  # set to the store's own creation time by _ensure_schema
                vals = ", ".join("'" + str(v).replace("'", "''") + "'" for v in row)
                stmts.append(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({vals})")
        rev = con.execute("SELECT value FROM labledger_meta WHERE key = 'revisions'").fetchone()
    finally:
        con.close()
    return sorted(rev[0].split(",")), stmts


def _render() -> str:
    import tempfile

    from .sql import SqlStore

    with tempfile.TemporaryDirectory() as tmp:
        SqlStore(f"sqlite:///{tmp}/ledger.db").close()
        revisions, stmts = dump_schema(f"{tmp}/ledger.db")
    body = "".join(f"    {s!r},\n" for s in stmts)
    return (
        '"""Generated by ``python -m labledger.store._lite``: the SQLite schema of a new store.\n\n'
        "What Alembic creates for the revisions below, replayed by LiteStore in one\n"
        'transaction. Regenerate it after adding a migration (a test checks it)."""\n\n'
        '__all__ = ["REVISIONS", "STATEMENTS"]\n\n'
        f"REVISIONS = {revisions!r}\n\n"
        f"STATEMENTS = [\n{body}]\n"
    )


if __name__ == "__main__":
    target = Path(__file__).with_name("_sqlite_ddl.py")
    target.write_text(_render())
    print(f"wrote {target}")
