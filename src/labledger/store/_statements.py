"""The SQL both write paths run: one set of statements for SQLite and PostgreSQL.

:class:`~labledger.store.sql.SqlStore` (SQLAlchemy, SQLite or PostgreSQL) and
:class:`~labledger.store._lite.LiteStore` (the embedded fast path on stdlib ``sqlite3``)
insert runs, upsert metric summaries, write edit rows, read a run's audit record and
append to the audit chain through the functions here, over a :class:`Db`: a small
connection adapter that executes SQL text with named parameters (``:name``), a style
that ``sqlite3`` and SQLAlchemy's ``text()`` both accept. ``LiteDb`` adapts a
``sqlite3`` connection; SqlStore adapts its SQLAlchemy connection (``SaDb`` in
``sql.py``). Where the two dialects differ (``min``/``least``, the row lock that orders
chain appends on PostgreSQL) the statement is chosen by ``Db.dialect``.

Values are bound as the stored form: JSON columns as ``json.dumps`` text (what
SQLAlchemy's JSON type writes; PostgreSQL casts the text to ``jsonb``), booleans as
``bool``. Rows read back are plain tuples, JSON columns as text on SQLite and as
decoded values on PostgreSQL (``_audit_core.load_json`` takes both).

Standard library only: the embedded write path imports it on ``init()``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .._exceptions import UsageError
from .._values import encode_json
from ._fields import RUN_JSON_FIELDS, UPDATABLE_RUN_FIELDS

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "INSERT_CHUNK",
    "Db",
    "LiteDb",
    "add_edits",
    "append_entries",
    "append_entry",
    "claim_batch",
    "dumps",
    "insert_run",
    "insert_runs",
    "record_fields",
    "update_run",
    "upsert_summaries",
    "write_media",
]

_IN = 500  # ids per IN (...) query
# the run columns create_run writes besides the JSON documents
_RUN_SCALARS = (
    "id",
    "project",
    "name",
    "status",
    "created_at",
    "ended_at",
    "heartbeat_at",
    "host",
    "pid",
    "pid_start",
    "notes",
    "seed",
    "parent_run_id",
    "author",
    "group",
    "job_type",
    "updated_at",
)


class Db(Protocol):
    """A connection inside a transaction that runs this module's SQL text."""

    dialect: str  # "sqlite" or "postgresql"

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> Iterable[Sequence[Any]]:
        """Execute one statement; its result rows (streamed where the driver can)."""
        ...

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> Sequence[Any] | None:
        """Execute one statement; its first row or None."""
        ...

    def many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        """Execute one statement once per parameter set."""
        ...


class LiteDb:
    """A :class:`Db` over a stdlib ``sqlite3`` connection (the embedded write path)."""

    dialect = "sqlite"

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> Iterable[Sequence[Any]]:
        return self.con.execute(sql, params or {})

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> Sequence[Any] | None:
        row: Sequence[Any] | None = self.con.execute(sql, params or {}).fetchone()
        return row

    def many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        self.con.executemany(sql, params)


def dumps(value: Any) -> str:
    """A JSON column's stored text (SQLAlchemy's JSON type writes ``json.dumps`` too)."""
    return json.dumps(encode_json(value))


def _in(name: str, ids: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """``:name0, :name1, …`` for an IN list, and its parameters."""
    params = {f"{name}{i}": v for i, v in enumerate(ids)}
    return ", ".join(f":{k}" for k in params), params


# -- runs ----------------------------------------------------------------------------

_PROJECT_EXISTS = "SELECT 1 FROM projects WHERE name = :name"
_INSERT_PROJECT = (
    "INSERT INTO projects (name, created_at, settings) VALUES (:name, :created_at, NULL) "
    "ON CONFLICT (name) DO NOTHING"
)
_INSERT_RUN = "INSERT INTO runs ({cols}) VALUES ({params})"


def _run_values(run: Mapping[str, Any], now: float) -> dict[str, Any]:
    values: dict[str, Any] = {c: run.get(c) for c in _RUN_SCALARS}
    values["status"] = run.get("status", "running")
    values["created_at"] = run.get("created_at", now)
    values["heartbeat_at"] = run.get("heartbeat_at", now)
    values["updated_at"] = now
    for f in RUN_JSON_FIELDS:
        values[f] = dumps(run.get(f) or ([] if f in ("tags", "datasets") else {}))
    return values


def _insert_run_sql(values: Mapping[str, Any]) -> str:
    cols = ", ".join(f'"{c}"' for c in values)  # "group" is an SQL keyword
    params = ", ".join(f":{c}" for c in values)
    return _INSERT_RUN.format(cols=cols, params=params)


def insert_runs(db: Db, runs: Sequence[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
    """Insert many run records in one statement per table (new projects first); return
    the stored values, in order. The bulk path of importers and scale benchmarks."""
    rows = [_run_values(r, now) for r in runs]
    if not rows:
        return rows
    projects = sorted({v["project"] for v in rows})
    db.many(_INSERT_PROJECT, [{"name": p, "created_at": now} for p in projects])
    db.many(_insert_run_sql(rows[0]), rows)
    return rows


def insert_run(db: Db, run: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Insert the run record (and its project when new); return the stored values."""
    values = _run_values(run, now)
    if db.one(_PROJECT_EXISTS, {"name": values["project"]}) is None:
        db.one(_INSERT_PROJECT, {"name": values["project"], "created_at": now})
    db.one(_insert_run_sql(values), values)
    return values


_RUN_ENV = "SELECT env FROM runs WHERE id = :id"
# a run wrongly declared crashed (e.g. a long network outage) comes back to life
_REVIVE = (
    "UPDATE runs SET status = 'running', ended_at = NULL WHERE id = :id AND status = 'crashed'"
)
_UPDATE_RUN = "UPDATE runs SET {sets} WHERE id = :id"


def update_run(
    db: Db,
    run_id: str,
    update: Mapping[str, Any],
    heartbeat: float | None,
    *,
    notes_before: Any = None,
    editor: str | None = None,
) -> None:
    """Apply a batch's ``run_update`` and heartbeat to a run that has not ended.

    ``env`` is merged into the stored one; a heartbeat revives a run marked crashed.
    With ``editor`` (the batch's actor, else the run's author), a notes change is an
    edit event (``run.notes = ...`` while the run goes), as later edits are."""
    if not update and heartbeat is None:
        return
    unknown = set(update) - UPDATABLE_RUN_FIELDS
    if unknown:
        raise UsageError(f"cannot update run fields {sorted(unknown)}")
    values: dict[str, Any] = {"updated_at": time.time()}
    for k, v in update.items():
        values[k] = dumps(v) if k in RUN_JSON_FIELDS else v
    if "env" in update:
        from ._audit_core import load_json

        row = db.one(_RUN_ENV, {"id": run_id})
        merged = dict((load_json(row[0]) if row else None) or {})
        merged.update(encode_json(update["env"]))
        values["env"] = json.dumps(merged)
    if heartbeat is not None:
        values["heartbeat_at"] = heartbeat
        if "status" not in update:
            db.one(_REVIVE, {"id": run_id})
    if editor is not None and "notes" in update and update["notes"] != notes_before:
        add_edits(db, run_id, [("notes", notes_before, update["notes"])], editor)
    sets = ", ".join(f'"{k}" = :{k}' for k in values)
    db.one(_UPDATE_RUN.format(sets=sets), {**values, "id": run_id})


# -- batches and series --------------------------------------------------------------

# RETURNING, not rowcount: psycopg 3 reports rowcount -1 for ON CONFLICT DO NOTHING,
# which made every retried batch look new on PostgreSQL (stored twice)
_CLAIM_BATCH = (
    "INSERT INTO applied_batches (id, run_id, applied_at) VALUES (:id, :run_id, :at) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)


def claim_batch(db: Db, batch_id: str, run_id: str, now: float) -> bool:
    """Record ``batch_id`` as applied; False when it was applied before."""
    return db.one(_CLAIM_BATCH, {"id": batch_id, "run_id": run_id, "at": now}) is not None


INSERT_CHUNK = (
    "INSERT INTO metric_chunks (run_id, key, n, step_min, step_max, stats, steps, vals, ts) "
    "VALUES (:run_id, :key, :n, :step_min, :step_max, :stats, :steps, :vals, :ts)"
)

# "last" is the most recently logged value: a batch replayed late (from a spool) must not
# overwrite a newer one; min/max ignore NULL (all-NaN batches). SET expressions all read
# the row's old values.
_UPSERT_SUMMARY = """
INSERT INTO metric_summary (run_id, key, count, last, last_nan, last_step, last_ts, min, max)
VALUES (:run_id, :key, :count, :last, :last_nan, :last_step, :last_ts, :min, :max)
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
             ELSE {least}(metric_summary.min, excluded.min) END,
  max = CASE WHEN metric_summary.max IS NULL THEN excluded.max
             WHEN excluded.max IS NULL THEN metric_summary.max
             ELSE {greatest}(metric_summary.max, excluded.max) END
"""
_UPSERT_SUMMARY_BY_DIALECT = {
    "sqlite": _UPSERT_SUMMARY.format(least="min", greatest="max"),
    "postgresql": _UPSERT_SUMMARY.format(least="least", greatest="greatest"),
}


def upsert_summaries(db: Db, rows: Sequence[Mapping[str, Any]]) -> None:
    """Fold one batch's per-series summaries (``run_id, key, count, last, last_nan,
    last_step, last_ts, min, max``) into ``metric_summary``."""
    if rows:
        db.many(_UPSERT_SUMMARY_BY_DIALECT[db.dialect], rows)


# -- rich results (media) -------------------------------------------------------------

_INSERT_MEDIA = (
    "INSERT INTO media (run_id, key, step, seq, kind, sha256, size, caption, meta, ts, storage) "
    "VALUES (:run_id, :key, :step, :seq, :kind, :sha256, :size, :caption, :meta, :ts, :storage) "
    "ON CONFLICT (run_id, key, step, seq) DO NOTHING"
)


def write_media(db: Db, run_id: str, media: Sequence[Any], storage: str | None) -> None:
    """One batch's rich results (``MediaItem``): one ``media`` row each (a row already
    there, from a replayed batch, is kept). Their bytes are in the artifact blob store
    ``storage`` by now (``_media_blobs.MediaBytes.put``, before the transaction)."""
    if not media:
        return
    rows = [
        {
            "run_id": run_id,
            "key": m.key,
            "step": int(m.step),
            "seq": int(m.seq),
            "kind": m.kind,
            "sha256": m.sha256,
            "size": len(m.data),
            "caption": m.caption,
            "meta": dumps(m.meta),
            "ts": float(m.ts),
            "storage": storage,
        }
        for m in media
    ]
    db.many(_INSERT_MEDIA, rows)


# -- edit events ---------------------------------------------------------------------

_INSERT_EDIT = (
    "INSERT INTO run_edits (id, run_id, field, old, new, author, at) "
    "VALUES (:id, :run_id, :field, :old, :new, :author, :at)"
)


def add_edits(
    db: Db,
    run_id: str,
    changes: Iterable[tuple[str, Any, Any]],
    author: str | None,
    now: float | None = None,
    *,
    reason: str | None = None,
    amend: bool = False,
) -> list[dict[str, Any]]:
    """One ``run_edits`` row per ``(field, old, new)`` that changes; the rows as stored.

    ``old``/``new`` are wrapped (``{"v": value}``): a bare JSON string would read back
    ambiguously. With ``amend`` (the run is sealed) a ``summary.KEY`` change is an
    amendment: its ``new`` document is marked (``_amend.AMEND_MARK``); ``reason`` is kept
    in ``new`` too."""
    import uuid  # (with platform, a few ms: imported when a run has an edit, not by init())

    from ._amend import AMEND_MARK

    at = time.time() if now is None else now
    rows = []
    for field, old, new in changes:
        if old == new:
            continue
        doc: dict[str, Any] = {"v": encode_json(new)}
        if amend and field.startswith("summary."):
            doc[AMEND_MARK] = True
        if reason:
            doc["reason"] = reason
        rows.append(
            {
                "id": uuid.uuid4().hex,
                "run_id": run_id,
                "field": field,
                "old": json.dumps({"v": encode_json(old)}),
                "new": json.dumps(doc),
                "author": author,
                "at": at,
            }
        )
    if rows:
        db.many(_INSERT_EDIT, rows)
    return rows


# -- the audit record and chain ------------------------------------------------------

_EDIT_COLS = ("id", "run_id", "field", "old", "new", "author", "at")


def record_fields(
    db: Db, run_ids: Sequence[str], formats: Mapping[str, int] | None = None
) -> dict[str, dict[str, str]]:
    """Field digests of each run's record, read from its rows in this transaction (a few
    queries per 500 runs) and digested by ``_audit_core.Record``.

    ``formats``: the record format to hash a run in (its stored record's; default the
    current one), so a record sealed in an older format still verifies."""
    from ._audit_core import FORMAT, JSON_FIELDS, SCALAR_FIELDS, Record

    fmt = formats or {}
    if db.dialect == "postgresql":
        # plan these IN (…500 ids) reads with their values, for this transaction:
        # psycopg prepares a statement on its sixth execution and PostgreSQL then kept a
        # generic plan made while ``runs`` was small for the connection's life; bulk
        # creation (which reads back what it chains) fell from 3,100 to 640 runs/s
        # between 20k and 60k runs. Not for every statement: planning each export page's
        # IN list made `export` 17% slower (benchmarks/README.md).
        db.one("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")

    names = (*SCALAR_FIELDS, *JSON_FIELDS)
    cols = ", ".join(f'"{c}"' for c in names)
    out: dict[str, dict[str, str]] = {}
    for i in range(0, len(run_ids), _IN):
        marks, p = _in("r", run_ids[i : i + _IN])
        recs = {
            row[0]: Record(dict(zip(names, row[1:], strict=True)), fmt.get(row[0], FORMAT))
            for row in db.rows(f"SELECT id, {cols} FROM runs WHERE id IN ({marks})", p)
        }
        if not recs:
            continue
        marks, p = _in("r", [r for r in recs])
        for e in db.rows(
            f"SELECT {', '.join(_EDIT_COLS)} FROM run_edits WHERE run_id IN ({marks}) "
            "ORDER BY run_id, at, id",
            p,
        ):
            recs[e[1]].edit(dict(zip(_EDIT_COLS, e, strict=True)))
        for m in db.rows(
            "SELECT run_id, key, count, last, last_nan, last_step, min, max "
            f"FROM metric_summary WHERE run_id IN ({marks})",
            p,
        ):
            recs[m[0]].metric(*m[1:])
        for c in db.rows(  # streamed: a long series is never all in memory
            f"SELECT run_id, key, steps, vals, ts FROM metric_chunks WHERE run_id IN ({marks}) "
            "ORDER BY run_id, key, id",
            p,
        ):
            recs[c[0]].chunk(c[1], bytes(c[2]), bytes(c[3]), bytes(c[4]))
        for a in db.rows(
            "SELECT run_id, id, name, version, kind, sha256 FROM artifact_versions "
            f"WHERE run_id IN ({marks}) ORDER BY run_id, name, version",
            p,
        ):
            recs[a[0]].artifact(*a[1:])
        manifests = [r for r, rec in recs.items() if rec.format >= 2]
        if manifests:  # the manifest of each version (record format 2)
            by_run: dict[str, list[Any]] = {}
            fmarks, fp = _in("m", manifests)
            for f in db.rows(
                "SELECT v.run_id, f.version_id, f.path, f.sha256, f.size FROM artifact_files f "
                f"JOIN artifact_versions v ON v.id = f.version_id WHERE v.run_id IN ({fmarks})",
                fp,
            ):
                by_run.setdefault(f[0], []).append(f[1:])
            for rid, files in by_run.items():
                recs[rid].files(files)
        for u in db.rows(
            f"SELECT run_id, version_id FROM artifact_uses WHERE run_id IN ({marks}) "
            "ORDER BY run_id, version_id",
            p,
        ):
            recs[u[0]].use(u[1])
        by_run_media: dict[str, list[Any]] = {}
        for row in db.rows(
            "SELECT run_id, key, step, seq, kind, sha256, caption FROM media "
            f"WHERE run_id IN ({marks})",
            p,
        ):
            by_run_media.setdefault(row[0], []).append(row[1:])
        for rid, media_rows in by_run_media.items():  # only runs with rich results
            recs[rid].media(media_rows)
        for run_id in run_ids[i : i + _IN]:
            if run_id in recs:
                out[run_id] = recs[run_id].fields()
    return out


_LOCK_PROJECT = "SELECT name FROM projects WHERE name = :project FOR UPDATE"
_CHAIN_HEAD = (
    "SELECT seq, entry_sha256 FROM audit_log WHERE project = :project ORDER BY seq DESC LIMIT 1"
)
_AUDIT_COLS = (
    "project",
    "seq",
    "run_id",
    "kind",
    "edit_id",
    "record_sha256",
    "fields",
    "prev_sha256",
    "entry_sha256",
    "created_at",
)
_INSERT_ENTRY = (
    f"INSERT INTO audit_log ({', '.join(_AUDIT_COLS)}) "
    f"VALUES ({', '.join(':' + c for c in _AUDIT_COLS)})"
)


def append_entry(db: Db, project: str, run_id: str, kind: str, edit_id: str | None = None) -> str:
    """Hash ``run_id``'s record as it is in this transaction and chain it after the
    project's newest entry; return the record's hash."""
    from ._audit_core import chain_entry

    if db.dialect == "postgresql":
        # one appender per project at a time: the row lock orders concurrent finishes
        # (SQLite: the write transaction is the lock)
        db.one(_LOCK_PROJECT, {"project": project})
    head = db.one(_CHAIN_HEAD, {"project": project})
    row = chain_entry(
        head,
        project=project,
        run_id=run_id,
        kind=kind,
        edit_id=edit_id,
        fields=record_fields(db, [run_id]).get(run_id, {}),
        now=time.time(),
    )
    db.one(_INSERT_ENTRY, {**row, "fields": json.dumps(row["fields"])})
    return str(row["record_sha256"])


def append_entries(db: Db, runs: Sequence[tuple[str, str]], kind: str) -> None:
    """:func:`append_entry` for many ``(project, run_id)`` in order: each project locked
    and its head read once, the records read in bulk (a few queries per 500 runs)."""
    from ._audit_core import chain_entry

    by_project: dict[str, list[str]] = {}
    for project, run_id in runs:
        by_project.setdefault(project, []).append(run_id)
    for project, ids in sorted(by_project.items()):
        if db.dialect == "postgresql":
            db.one(_LOCK_PROJECT, {"project": project})
        head = db.one(_CHAIN_HEAD, {"project": project})
        now = time.time()
        rows = []
        for i in range(0, len(ids), _IN):
            part = ids[i : i + _IN]
            fields = record_fields(db, part)
            for run_id in part:
                row = chain_entry(
                    head,
                    project=project,
                    run_id=run_id,
                    kind=kind,
                    edit_id=None,
                    fields=fields.get(run_id, {}),
                    now=now,
                )
                head = (row["seq"], row["entry_sha256"])
                rows.append({**row, "fields": json.dumps(row["fields"])})
        db.many(_INSERT_ENTRY, rows)
