"""SqlStore: the one implementation of storage logic, on SQLite or PostgreSQL.

The embedded default and the tracking server both use this class; the HTTP client
speaks the same protocol over the wire.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from .._exceptions import (
    AmbiguousRunError,
    RunNotFoundError,
    SchemaTooNewError,
    StoreUnavailableError,
    StoreUnwritableError,
    UsageError,
)
from .._procinfo import is_this_host, pid_alive
from .._values import decode_json, encode_json
from . import _schema as s
from ._access_sql import AccessSqlMixin
from ._amend import amended_from_edits
from ._artifacts_sql import ArtifactSqlMixin
from ._audit_sql import EDITABLE, EDITABLE_ENV, FROZEN, AuditSqlMixin
from ._base import TERMINAL_STATUSES, Batch, MetricSummary, RunRecord
from ._chunk_stats import stats_of_arrays
from ._edits_sql import EditSqlMixin
from ._export_sql import ExportSqlMixin
from ._fields import RUN_JSON_FIELDS, SEALED_STATUSES, UPDATABLE_RUN_FIELDS
from ._locate import code_revisions, precheck_sqlite, sqlite_path, sqlite_readonly
from ._media_blobs import MediaBytes
from ._media_sql import MediaSqlMixin
from ._mlflow_sql import MlflowSqlMixin
from ._registry_sql import RegistrySqlMixin
from ._repro_rules import REPRO_JOB_TYPE
from ._repro_sql import ReproSqlMixin
from ._series_sql import SeriesSqlMixin, _series_summary, downsample
from ._sqla import SaDb
from ._statements import claim_batch, insert_run, insert_runs, update_run

if TYPE_CHECKING:
    from ..query import Node

__all__ = ["SqlStore", "code_revisions", "downsample"]

log = logging.getLogger("labledger.store")

_HEX_RE = re.compile(r"^[0-9a-f]{1,32}$")
DEFAULT_HEARTBEAT_TIMEOUT = 300.0
COMPACT_ROWS = 32  # short rows a series gathers before they are merged into chunks


def _sqlite_on_connect(dbapi_con: Any, _record: Any) -> None:
    dbapi_con.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
    cur = dbapi_con.cursor()
    cur.execute("PRAGMA busy_timeout = 60000")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = FULL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def _value_rejected(context: sa.engine.ExceptionContext) -> BaseException | None:
    """The driver's "data exception" (a value the database refuses) as ValueRejectedError,
    chained to it: callers of the store (the server's routes) never catch SQLAlchemy's."""
    if isinstance(context.sqlalchemy_exception, sa.exc.DataError):
        from .._exceptions import ValueRejectedError

        reason = (
            str(context.original_exception).splitlines()[0][:200]
            if context.original_exception
            else ""
        )
        return ValueRejectedError(reason or "a value out of range")
    return None


def _sqlite_on_begin(conn: Connection) -> None:
    # Writes (engine option labledger_write) use BEGIN IMMEDIATE: it takes the write
    # lock up front, so concurrent writers queue on busy_timeout instead of failing
    # with "database is locked" on a lock upgrade. Reads use a deferred BEGIN so they
    # never wait for, or block, a writer (WAL).
    if conn.get_execution_options().get("labledger_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _sqlite_ro_on_connect(dbapi_con: Any, _record: Any) -> None:
    dbapi_con.isolation_level = None
    cur = dbapi_con.cursor()
    cur.execute("PRAGMA busy_timeout = 60000")
    cur.execute("PRAGMA query_only = ON")
    cur.close()


def _readonly_engine(path: Path, pool_size: int) -> Engine:
    """An engine that never writes: ``mode=ro``, else ``immutable=1``.

    ``mode=ro`` sees a live WAL, but needs the ``-shm`` file (or a folder it may create
    it in); where neither is possible (a read-only copy of a store whose last writer
    left it checkpointed), ``immutable=1`` reads the main file without any locking.
    """
    import sqlite3
    from urllib.parse import quote

    if not path.is_file():
        from .._exceptions import NoStoreError

        raise NoStoreError(str(path))
    base = "file:" + quote(str(path.resolve()))
    chosen = None
    for flags in ("mode=ro", "mode=ro&immutable=1"):
        try:
            con = sqlite3.connect(f"{base}?{flags}", uri=True, timeout=60)
            try:
                con.execute("select count(*) from sqlite_master").fetchone()
            finally:
                con.close()
        except sqlite3.DatabaseError:
            continue
        chosen = flags
        break
    if chosen is None:
        from .._exceptions import NotAStoreError

        raise NotAStoreError(str(path), "it cannot be opened for reading")
    target = f"{base}?{chosen}"

    def connect() -> Any:
        return sqlite3.connect(target, uri=True, timeout=60, check_same_thread=False)

    engine = sa.create_engine(
        "sqlite://",
        creator=connect,
        poolclass=sa.pool.QueuePool,
        pool_size=pool_size,
        max_overflow=10,
    )
    event.listen(engine, "connect", _sqlite_ro_on_connect)
    return engine


# Every SqlStore of this process, for the fork handler (weak: stores can be collected).
_STORES: weakref.WeakSet[SqlStore] = weakref.WeakSet()
# Pools inherited from the parent by a forked child. Kept referenced, never closed:
# closing a copied SQLite or PostgreSQL connection in the child would disturb the
# parent's (PostgreSQL: a Terminate message on the shared socket).
_INHERITED_POOLS: list[Any] = []


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class SqlStore(
    SeriesSqlMixin,
    ArtifactSqlMixin,
    MediaSqlMixin,
    ReproSqlMixin,
    MlflowSqlMixin,
    RegistrySqlMixin,
    AuditSqlMixin,
    EditSqlMixin,
    AccessSqlMixin,
    ExportSqlMixin,
):
    """Store on SQLAlchemy Core. ``uri`` is ``sqlite:///PATH`` or ``postgresql://…``."""

    def __init__(self, uri: str, *, migrate: bool = True, pool_size: int = 5) -> None:
        self.uri = uri
        # short series rows written by this process, per series (compacted at COMPACT_ROWS)
        self._short_rows: dict[tuple[str, str], int] = {}
        self._compact_lock = threading.Lock()
        self._due: set[tuple[str, str]] = set()
        self._compact_wake = threading.Event()
        self._compactor: threading.Thread | None = None
        self.compact_in_background = False  # the server sets it: no compaction in requests
        self._pid = os.getpid()
        self.readonly = False
        self.media_bytes = MediaBytes(uri)  # where rich results' bytes live
        if uri.startswith("sqlite"):
            self.dialect = "sqlite"
            self.path: Path | None = sqlite_path(uri)
            self.readonly = sqlite_readonly(uri, self.path)
            if self.readonly:
                self.engine: Engine = _readonly_engine(self.path, pool_size)
            else:
                precheck_sqlite(self.path)
                self.engine = sa.create_engine(
                    f"sqlite:///{self.path}",
                    connect_args={"timeout": 60, "check_same_thread": False},
                    poolclass=sa.pool.QueuePool,
                    pool_size=pool_size,
                    max_overflow=10,
                )
                event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            self.dialect = "postgresql"
            self.path = None
            url = uri
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            self.engine = sa.create_engine(
                url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True
            )
        event.listen(self.engine, "handle_error", _value_rejected)
        self._write_engine = self.engine.execution_options(labledger_write=True)
        _STORES.add(self)
        if migrate:
            try:
                self.ensure_schema()
            except BaseException:
                self.engine.dispose()  # a refused store leaves no connection behind
                raise

    # -- lifecycle -------------------------------------------------------------------

    def _after_fork(self) -> None:
        # A forked child must not reuse the parent's connections (SQLAlchemy docs:
        # "Using Connection Pools with Multiprocessing"), nor close them.
        if self._pid == os.getpid():
            return
        _INHERITED_POOLS.append(self.engine.pool)
        self.engine.dispose(close=False)
        self._pid = os.getpid()
        self._short_rows.clear()
        self._compact_lock = threading.Lock()
        self._due = set()
        self._compactor = None

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"SqlStore({self.uri!r})"

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE, waiting up to busy_timeout).

        Starting the transaction is retried on a transient "locked" error; the body is
        not (a failed body is retried by its caller, e.g. the writer with the same batch).
        """
        if self.readonly:
            raise StoreUnwritableError(
                str(self.path),
                "the store is open read-only (no write access to the file or its folder, "
                "or mode=ro/immutable=1 in the URI); reading works, writing needs write access",
            )
        delay = 0.05
        for attempt in range(10):
            conn = self._write_engine.connect()
            try:
                tx = conn.begin()
            except sa.exc.OperationalError as exc:
                conn.close()
                if "locked" in str(exc).lower() and attempt < 9:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                raise
            with conn, tx:
                yield conn
            return

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        return self.engine.connect()

    def _db(self, conn: Connection) -> SaDb:
        """``conn`` as the shared statements' connection (``_statements.Db``)."""
        return SaDb(conn, self.dialect)

    # -- schema ----------------------------------------------------------------------

    def applied_revisions(self) -> set[str] | None:
        """Revisions recorded in the store, or None for an empty store."""
        with self.engine.connect() as conn:
            insp = sa.inspect(conn)
            if not insp.has_table("labledger_meta"):
                if self.dialect == "sqlite" and insp.get_table_names():
                    from .._exceptions import NotAStoreError

                    raise NotAStoreError(
                        str(self.path), "an SQLite database without labledger's tables"
                    )
                return None
            row = conn.execute(sa.select(s.meta.c.value).where(s.meta.c.key == "revisions")).first()
            conn.rollback()
        return set(row[0].split(",")) if row and row[0] else set()

    def ensure_schema(self) -> None:
        """Apply pending migrations; safe when several processes do it at once."""
        known = code_revisions()
        try:
            applied = self.applied_revisions()
        except sa.exc.OperationalError as exc:
            raise StoreUnavailableError(self.uri, str(exc.orig)) from exc
        if applied is not None:
            if applied - known:
                raise SchemaTooNewError(
                    self.uri, ",".join(sorted(applied)), ",".join(sorted(known))
                )
            if known <= applied:
                return
        if self.readonly:
            pending = ",".join(sorted(known - (applied or set())))
            raise StoreUnwritableError(
                str(self.path),
                f"the store is read-only and lacks schema revisions {pending} of this "
                "labledger version (open it once with write access, or read it with the "
                "version that wrote it)",
            )
        with self._migration_lock():
            applied = self.applied_revisions()
            if applied is not None and known <= applied:
                return
            self._run_alembic(known)

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.dialect == "sqlite":
            import fcntl

            assert self.path is not None
            with open(str(self.path) + ".migrate.lock", "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        else:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(7401851)"))
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(7401851)"))
                    conn.commit()

    def _run_alembic(self, known: set[str]) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self._write_engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
            # same transaction as the tables (SQLite has transactional DDL): another
            # process sees the store either empty or complete, never half-made
            self._set_meta(conn, "revisions", ",".join(sorted(known)))
            self._set_meta(conn, "format", "labledger")
            conn.commit()

    def _set_meta(self, conn: Connection, key: str, value: str) -> None:
        updated = conn.execute(
            sa.update(s.meta).where(s.meta.c.key == key).values(value=value)
        ).rowcount
        if not updated:
            conn.execute(sa.insert(s.meta).values(key=key, value=value))

    def upsert(self, table: sa.Table) -> Any:
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table)
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)

    # -- writing ---------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> None:
        with self._tx() as conn:
            values = insert_run(self._db(conn), run, time.time())
            if values["status"] in SEALED_STATUSES:  # recorded after the fact (an import)
                self._append_entry(conn, run["project"], run["id"], "import")

    def create_runs(self, records: Sequence[Mapping[str, Any]], *, actor: str | None = None) -> int:
        """Create many runs in one transaction (importers, the MLflow batch API, benchmarks).

        Each record is what :meth:`create_run` takes, plus optionally ``metrics``:
        ``{key: (steps, values, timestamps)}``, the run's whole series. A record without an
        ``author`` is credited to ``actor``. Runs recorded already ended (an import) are
        chained into the audit trail, with their series, as :meth:`create_run` chains
        them. All or none are created (a duplicate id fails the whole call). Every table
        gets one multi-row statement per call, so a call costs a few round trips, not a
        few per run. Returns the number of runs created."""
        from ._series_sql import _series_summary
        from ._statements import append_entries, upsert_summaries

        rows = [r if r.get("author") or actor is None else {**r, "author": actor} for r in records]
        if not rows:
            return 0
        cap = s.CHUNK_POINTS
        chunks: list[dict[str, Any]] = []
        summaries: list[dict[str, Any]] = []
        for r in rows:
            for key, (steps, vals, ts) in (r.get("metrics") or {}).items():
                st = np.asarray(steps, dtype="<i8")
                va = np.asarray(vals, dtype="<f8")
                tt = np.asarray(ts, dtype="<f8")
                if not len(st):
                    continue
                if len(st) > 1 and bool(np.any(st[1:] < st[:-1])):
                    order = np.argsort(st, kind="stable")
                    st, va, tt = st[order], va[order], tt[order]
                for i in range(0, len(st), cap):
                    part = st[i : i + cap]
                    chunks.append(
                        {
                            "run_id": r["id"],
                            "key": key,
                            "n": len(part),
                            "step_min": int(part.min()),
                            "step_max": int(part.max()),
                            "stats": stats_of_arrays(part, va[i : i + cap], tt[i : i + cap]),
                            "steps": part.tobytes(),
                            "vals": va[i : i + cap].tobytes(),
                            "ts": tt[i : i + cap].tobytes(),
                        }
                    )
                summaries.append(_series_summary(r["id"], key, st, va, tt))
        with self._tx() as conn:
            db = self._db(conn)
            stored = insert_runs(db, rows, time.time())
            if chunks:
                self._insert_chunks(conn, chunks)
            if summaries:
                upsert_summaries(db, summaries)
            sealed = [(v["project"], v["id"]) for v in stored if v["status"] in SEALED_STATUSES]
            if sealed:
                append_entries(db, sealed, "import")
        return len(stored)

    def write_batch(self, batch: Batch, *, actor: str | None = None, late: bool = False) -> bool:
        """Apply ``batch`` at most once (its id); False when it was applied before.

        A run that has ended (finished, failed, killed) is frozen: points and changes to
        its config, environment or status raise RunFinishedError; notes, tags and
        summary changes become edit events by ``actor`` (default: the run's author).
        The batch that ends a run also seals it (hashes its record into the audit chain).
        ``late=True`` (``labledger sync`` replaying a local spill, never the server)
        admits points logged before the run ended, and chains a ``late`` entry.
        """
        return self.write_batches([batch], actor=actor, late=late)[0]

    def write_batches(
        self, batches: Sequence[Batch], *, actor: str | None = None, late: bool = False
    ) -> list[bool]:
        """Apply several batches in one transaction (each at most once, by its id).

        The server's replay route uses it to take many spooled batches per commit."""
        small: dict[tuple[str, str], int] = {}
        ended: set[str] = set()
        out = []
        media = [m for batch in batches for m in batch.media]
        # the bytes first, durable before a row names them
        storage = self.media_bytes.put(media) if media else None
        with self._tx() as conn:
            for batch in batches:
                out.append(self._write_batch_in(conn, batch, small, actor, late, storage))
                if out[-1] and batch.run_update.get("status") in TERMINAL_STATUSES:
                    ended.add(batch.run_id)
        self._after_write(small, ended)
        return out

    def _write_batch_in(
        self,
        conn: Connection,
        batch: Batch,
        small: dict[tuple[str, str], int],
        actor: str | None = None,
        late: bool = False,
        storage: str | None = None,
    ) -> bool:
        if not claim_batch(self._db(conn), batch.id, batch.run_id, time.time()):
            return False
        cur = None
        if batch.metrics or batch.run_update or batch.media:
            r = s.runs
            light = (r.c.id, r.c.project, r.c.status, r.c.author, r.c.notes, r.c.ended_at)
            # the light columns on the hot path; the whole row (env may be large) only
            # for a run that has ended
            cur = conn.execute(sa.select(*light).where(r.c.id == batch.run_id)).mappings().first()
            if cur is not None and cur["status"] in SEALED_STATUSES:
                cur = conn.execute(sa.select(r).where(r.c.id == batch.run_id)).mappings().first()
        update = batch.run_update
        sealed = cur is not None and cur["status"] in SEALED_STATUSES
        imported = False
        if sealed and cur is not None:
            update = _changed(cur, update)
            imported = self._imported(conn, batch.run_id)
            points = batch.point_count()
            if imported or (late and _logged_before(batch, cur["ended_at"])):
                points = 0
            if not imported:
                frozen = {
                    k: v for k, v in update.items() if k != "env" or not set(v) <= EDITABLE_ENV
                }
                self._check_frozen(cur["id"], cur["status"], frozen, points)
        if batch.metrics:
            summaries = []
            chunks: list[dict[str, Any]] = []
            for key, (steps, vals, ts) in batch.metrics.items():
                st = np.asarray(steps, dtype="<i8")
                va = np.asarray(vals, dtype="<f8")
                tt = np.asarray(ts, dtype="<f8")
                if not len(st):
                    continue
                self._write_series(conn, batch.run_id, key, st, va, tt, small, chunks)
                summaries.append(_series_summary(batch.run_id, key, st, va, tt))
            self._insert_chunks(conn, chunks)
            if summaries:
                self._upsert_summaries(conn, summaries)
        if batch.media:
            self._write_media(conn, batch.run_id, batch.media, storage)
        # an imported run takes updates as a running one would (no edit events)
        self._apply_run_update(
            conn, batch.run_id, update, batch.heartbeat, None if imported else cur, actor
        )
        if sealed and cur is not None and (batch.metrics or batch.media or (imported and update)):
            self._append_entry(conn, cur["project"], batch.run_id, "late")
        return True

    # -- compaction of short series rows (see _series_sql) ----------------------------

    def _after_write(self, small: dict[tuple[str, str], int], ended: set[str]) -> None:
        due: set[tuple[str, str]] = set()
        with self._compact_lock:
            for k, n in small.items():
                self._short_rows[k] = self._short_rows.get(k, 0) + n
                if self._short_rows[k] >= COMPACT_ROWS:
                    due.add(k)
            if ended:
                due.update(k for k in self._short_rows if k[0] in ended)
                due.update((r, "") for r in ended)  # "" = every key of the run
            for k in due:
                self._short_rows.pop(k, None)
            if len(self._short_rows) > 100_000:  # forgotten series are compacted at their end
                self._short_rows.clear()
            if not due:
                return
            if self.compact_in_background:
                self._due.update(due)
                if self._compactor is None or not self._compactor.is_alive():
                    self._compactor = threading.Thread(
                        target=self._compact_loop, name="labledger-compact", daemon=True
                    )
                    self._compactor.start()
                self._compact_wake.set()
                return
        for run_id, key in sorted(due):
            self._compact(run_id, key)

    def _compact(self, run_id: str, key: str) -> None:
        try:
            if key:
                self.compact_series(run_id, key)
                return
            for k in self.metric_keys(run_id):
                self.compact_series(run_id, k)
        except Exception:  # compaction is an optimisation: never fail a write for it
            log.warning("compacting %s/%s failed", run_id[:8], key, exc_info=True)

    def _compact_loop(self) -> None:
        while True:
            self._compact_wake.wait(5.0)
            self._compact_wake.clear()
            while True:
                with self._compact_lock:
                    if not self._due:
                        break
                    run_id, key = self._due.pop()
                self._compact(run_id, key)

    def _apply_run_update(
        self,
        conn: Connection,
        run_id: str,
        update: dict[str, Any],
        heartbeat: float | None,
        cur: Any = None,
        actor: str | None = None,
    ) -> None:
        if not update and heartbeat is None:
            return
        unknown = set(update) - UPDATABLE_RUN_FIELDS
        if unknown:
            raise UsageError(f"cannot update run fields {sorted(unknown)}")
        sealed = cur is not None and cur["status"] in SEALED_STATUSES
        if sealed:
            # frozen fields were refused by write_batch: what is left are edits
            edits = {k: update[k] for k in EDITABLE & set(update)}
            if "env" in update:  # only EDITABLE_ENV keys are left (see _changed)
                edits["env"] = update["env"]
            self._apply_edits(conn, cur, edits, actor)
            if heartbeat is not None:
                conn.execute(
                    sa.update(s.runs).where(s.runs.c.id == run_id).values(heartbeat_at=heartbeat)
                )
            return
        update_run(
            self._db(conn),
            run_id,
            update,
            heartbeat,
            notes_before=None if cur is None else cur["notes"],
            editor=None if cur is None else (actor or cur["author"]),
        )
        if cur is not None and update.get("status") in SEALED_STATUSES:
            self._append_entry(conn, cur["project"], run_id, "seal")

    def put_blob(self, data: bytes) -> str:
        """Store ``data`` content-addressed (zlib-compressed); return its sha256. Idempotent."""
        import hashlib
        import zlib

        digest = hashlib.sha256(data).hexdigest()
        with self._tx() as conn:
            ins = self.upsert(s.blobs).values(
                sha256=digest, size=len(data), data=zlib.compress(data, 6)
            )
            conn.execute(ins.on_conflict_do_nothing(index_elements=["sha256"]))
        return digest

    def get_blob(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256`` (verified); NotFoundError when absent."""
        import hashlib
        import zlib

        from .._exceptions import IntegrityError, NotFoundError

        with self._read() as conn:
            row = conn.execute(sa.select(s.blobs.c.data).where(s.blobs.c.sha256 == sha256)).first()
        if row is None:
            raise NotFoundError(f"no blob {sha256[:16]}… in the store")
        data = zlib.decompress(row[0])
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(f"blob {sha256[:16]}", sha256, actual)
        return data

    # -- reading ---------------------------------------------------------------------

    def resolve_run_id(self, ref: str) -> str:
        """A run id from ``ref``: the exact id, else a run's exact (unique) name, else a
        unique id prefix (like git). A name wins over a prefix because a short name such
        as ``b`` or ``cafe`` is also valid hex."""
        ref = ref.strip()
        low = ref.lower()
        runs = s.runs
        with self._read() as conn:
            exact = len(low) == 32 and _HEX_RE.match(low)
            if exact and conn.execute(sa.select(runs.c.id).where(runs.c.id == low)).first():
                return low
            named = [
                str(r[0])
                for r in conn.execute(sa.select(runs.c.id).where(runs.c.name == ref).limit(6))
            ]
            if len(named) == 1:
                return named[0]
            if len(named) > 1:
                raise AmbiguousRunError(ref, named)
            if _HEX_RE.match(low):
                ids = [
                    str(r[0])
                    for r in conn.execute(
                        sa.select(runs.c.id).where(runs.c.id.like(low + "%")).limit(6)
                    )
                ]
                if len(ids) == 1:
                    return ids[0]
                if len(ids) > 1:
                    raise AmbiguousRunError(ref, ids)
        raise RunNotFoundError(ref)

    def get_run(self, ref: str) -> RunRecord:
        run_id = self.resolve_run_id(ref)
        with self._read() as conn:
            row = conn.execute(sa.select(s.runs).where(s.runs.c.id == run_id)).mappings().first()
            if row is None:
                raise RunNotFoundError(ref)
            metrics = self._metric_summaries(conn, [run_id])
        run = self._row_to_run(row, metrics.get(run_id, {}))
        arts = self.list_run_artifacts(run_id)
        run["artifacts"], run["used_artifacts"] = arts["produced"], arts["consumed"]
        run["edits"] = self.run_edits(run_id)
        run["amended"] = (
            amended_from_edits(run["summary"], run["edits"])
            if run["status"] in SEALED_STATUSES
            else {}
        )
        run["record_sha256"] = self.record_sha256(run_id)
        return run

    def _metric_summaries(
        self, conn: Connection, run_ids: Sequence[str]
    ) -> dict[str, dict[str, MetricSummary]]:
        out: dict[str, dict[str, MetricSummary]] = {}
        t = s.metric_summary
        for i in range(0, len(run_ids), 500):
            part = list(run_ids[i : i + 500])
            for r in conn.execute(sa.select(t).where(t.c.run_id.in_(part))).mappings():
                last = math.nan if r["last_nan"] else r["last"]
                out.setdefault(r["run_id"], {})[r["key"]] = {
                    "last": last,
                    "min": r["min"],
                    "max": r["max"],
                    "count": r["count"],
                    "last_step": r["last_step"],
                    "last_ts": r["last_ts"],
                }
        return out

    def _row_to_run(self, row: Any, metrics: dict[str, MetricSummary]) -> RunRecord:
        summary: dict[str, Any] = {k: m["last"] for k, m in sorted(metrics.items())}
        summary.update(decode_json(s.load_json(row["summary"]) or {}))
        created = row["created_at"]
        ended = row["ended_at"]
        end_or_now = (
            ended
            if ended is not None
            else (time.time() if row["status"] == "running" else row["heartbeat_at"])
        )
        return {
            "id": row["id"],
            "project": row["project"],
            "name": row["name"],
            "status": row["status"],
            "created_at": created,
            "ended_at": ended,
            "runtime_s": None if end_or_now is None else max(0.0, end_or_now - created),
            "heartbeat_at": row["heartbeat_at"],
            "config": decode_json(s.load_json(row["config"]) or {}),
            "summary": summary,
            "metrics": metrics,
            "tags": s.load_json(row["tags"]) or [],
            "notes": row["notes"],
            "seed": row["seed"],
            "env": decode_json(s.load_json(row["env"]) or {}),
            "datasets": s.load_json(row["datasets"]) or [],
            "exit_code": row["exit_code"],
            "error": row["error"],
            "host": row["host"],
            "pid": row["pid"],
            "parent_run_id": row["parent_run_id"],
            "group": row["group"],
            "job_type": row["job_type"],
            "author": row["author"],
            # a reproduction (job_type "repro") names its original (store/_repro_rules.py)
            "repro_of": row["parent_run_id"] if row["job_type"] == REPRO_JOB_TYPE else None,
            "amended": {},  # a sealed run's amendments (set by _amendments)
        }

    def list_runs(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        projects: Sequence[str] | None = None,
    ) -> list[RunRecord]:
        from ..query import parse

        node = (parse(filter) if isinstance(filter, str) else filter) if filter else None
        q = self._runs_query(project=project, filter=node, order_by=order_by, projects=projects)
        with self._read() as conn:
            self._flat(conn)
            from ._ranked_sql import (
                fetch_ranked,  # "sort by a metric, top N" without sorting every run
            )

            base = self._runs_query(
                project=project, filter=None, order_by=None, projects=projects
            ).whereclause
            rows = fetch_ranked(
                conn,
                q.whereclause,
                order_by,
                limit,
                offset,
                dialect=self.dialect,
                node=node,
                base=sa.true() if base is None else base,
            )
            if rows is None:
                if limit is not None:
                    q = q.limit(limit)
                if offset:
                    q = q.offset(offset)
                rows = list(conn.execute(q).mappings())
            metrics = self._metric_summaries(conn, [r["id"] for r in rows])
            runs = [self._row_to_run(r, metrics.get(r["id"], {})) for r in rows]
            self._amendments(conn, runs)
        return runs

    def count_runs(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        projects: Sequence[str] | None = None,
        cap: int | None = None,
    ) -> int:
        """How many runs match; with ``cap``, counting stops there (``min(count, cap)``: a
        page shows "10,000+" from ``cap=10_001``), so a count costs at most ``cap`` rows."""
        q = self._runs_query(project=project, filter=filter, order_by=None, projects=projects)
        inner = q.order_by(None).with_only_columns(
            sa.literal(1).label("one"), maintain_column_froms=True
        )
        if cap is not None:
            inner = inner.limit(cap)
        with self._read() as conn:
            self._flat(conn)
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(inner.subquery())).scalar_one()
            )

    def _flat(self, conn: Connection) -> None:
        """Settings for a short read: PostgreSQL's JIT compiles for hundreds of ms on
        a query the planner guesses big, more than the query itself takes with an index;
        parallel workers for a top-N walk of an index cost more than they save on a busy
        machine (filter by author + top 100 at 1M runs: 289 ms with 2 workers, 189 ms
        without, on 2 cores at load 7). Both for this transaction only, in one statement."""
        if self.dialect == "postgresql":
            conn.execute(
                sa.text(
                    "SELECT set_config('jit', 'off', true),"
                    " set_config('max_parallel_workers_per_gather', '0', true)"
                )
            )

    def _runs_query(
        self,
        *,
        project: str | None,
        filter: str | Node | None,
        order_by: str | list[str] | None,
        projects: Sequence[str] | None = None,
    ) -> Any:
        """SELECT over runs with project, filter and ordering applied (see labledger.query).

        ``projects`` restricts to those projects (the server's per-user read permission).
        """
        q = sa.select(s.runs)
        if project is not None:
            q = q.where(s.runs.c.project == project)
        if projects is not None:
            q = q.where(s.runs.c.project.in_(list(projects)))
        if filter:
            from ._filter_sql import compile_filter

            q = q.where(compile_filter(filter, dialect=self.dialect))
        keys = [order_by] if isinstance(order_by, str) else list(order_by or [])
        if keys:
            from ._filter_sql import compile_order_by

            q = q.order_by(*compile_order_by(keys, dialect=self.dialect))
        else:
            q = q.order_by(s.runs.c.created_at.desc(), s.runs.c.id)
        return q

    def projects(self) -> list[dict[str, Any]]:
        r = s.runs
        q = (
            sa.select(
                r.c.project,
                # reproductions (job_type "repro") are counted apart, not as the project's runs
                sa.func.count(
                    sa.case((sa.func.coalesce(r.c.job_type, "") != REPRO_JOB_TYPE, 1))
                ).label("runs"),
                sa.func.count(sa.case((r.c.job_type == REPRO_JOB_TYPE, 1))).label("repro_runs"),
                sa.func.max(r.c.created_at).label("last_run_at"),
            )
            .group_by(r.c.project)
            .order_by(r.c.project)
        )
        with self._read() as conn:
            return [dict(row) for row in conn.execute(q).mappings()]

    def reap_stale_runs(self, heartbeat_timeout: float | None = None) -> list[str]:
        timeout = DEFAULT_HEARTBEAT_TIMEOUT if heartbeat_timeout is None else heartbeat_timeout
        now = time.time()
        r = s.runs
        with self._read() as conn:
            running = conn.execute(
                sa.select(r.c.id, r.c.host, r.c.pid, r.c.pid_start, r.c.heartbeat_at).where(
                    r.c.status == "running"
                )
            ).all()
        dead: list[tuple[str, float | None]] = []
        for run_id, host, pid, token, hb in running:
            if is_this_host(host) and pid is not None:
                if not pid_alive(pid, token):
                    dead.append((run_id, hb))
            elif hb is None or now - hb > timeout:
                dead.append((run_id, hb))
        if dead and self.readonly:
            return []  # a read-only reader cannot mark them; they stay "running" here
        if dead:
            with self._tx() as conn:
                for run_id, hb in dead:
                    conn.execute(
                        sa.update(r)
                        .where(r.c.id == run_id, r.c.status == "running")
                        .values(
                            status="crashed",
                            ended_at=hb or now,
                            updated_at=now,
                            error="the writing process stopped without finishing the run",
                        )
                    )
        return [d[0] for d in dead]


def _changed(cur: Any, update: dict[str, Any]) -> dict[str, Any]:
    """``update`` without the frozen fields that would not change (a replayed final status)."""
    out: dict[str, Any] = {}
    for k, v in update.items():
        if k in FROZEN:
            now = cur[k]
            if k in RUN_JSON_FIELDS:
                now = s.load_json(now)
                v = encode_json(v)
                if k == "env" and isinstance(now, dict) and isinstance(v, dict):
                    changed = {e for e in v if now.get(e) != v[e]}
                    if changed and changed <= EDITABLE_ENV:  # bookkeeping: an edit
                        out["env"] = {e: v[e] for e in changed}
                        continue
                    v = {**now, **v}
            if now == v:
                continue
        out[k] = v
    return out


def _logged_before(batch: Batch, ended_at: float | None) -> bool:
    """Were all of ``batch``'s points logged before the run ended (a spill replayed late)?"""
    if ended_at is None:
        return False
    for _steps, _vals, ts in batch.metrics.values():
        arr = np.asarray(ts, dtype="<f8")
        if len(arr) and float(arr.max()) > ended_at + 1.0:
            return False
    return True
