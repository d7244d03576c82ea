"""Export reads in SQL: the columns an export needs, every metric's last value in one query.

Mixed into :class:`~labledger.store.sql.SqlStore` (the :class:`~labledger.store.RunExport`
role). ``labledger export`` and ``Ledger.export`` turn these records into rows
(``analysis/_export.py``); a store without the role (the tracking server's client) is
read through ``list_runs`` instead.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._values import decode_json
from . import _schema as s
from ._fields import SEALED_STATUSES

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from sqlalchemy.engine import Connection

    from ..query import Node
    from ._base import ExportRecord

__all__ = ["ExportSqlMixin"]


class ExportSqlMixin:
    """The export read of the SQL store (see the module docstring)."""

    if TYPE_CHECKING:
        dialect: str

        def _read(self) -> contextlib.AbstractContextManager[Connection]: ...

        def _amendments(
            self,
            conn: Connection,
            runs: list[dict[str, Any]],
            every: dict[str, list[dict[str, Any]]] | None = None,
        ) -> None: ...

        def _summary_amendments(
            self, conn: Connection, run_ids: list[str] | None = None
        ) -> dict[str, list[dict[str, Any]]]: ...

        def _runs_query(
            self,
            *,
            project: str | None,
            filter: str | Node | None,
            order_by: str | list[str] | None,
            projects: Sequence[str] | None = None,
        ) -> Any: ...

    def export_records(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
    ) -> list[ExportRecord]:
        """The runs ``list_runs`` would give, narrowed to what an export needs (of the env only
        the git commit, dirty flag and patch digest), with every series' last value. Without
        ``order_by`` and ``limit``: :meth:`iter_export_records`, pages of runs; with them,
        one page (the store's query with that order and limit)."""
        if order_by is None and limit is None:
            return list(self.iter_export_records(project=project, filter=filter))
        q = self._runs_query(project=project, filter=filter, order_by=order_by)
        q = q.with_only_columns(*_columns(self.dialect, packages=False))
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return self._export_page(conn, conn.execute(q).all(), None, True, False, None)

    def iter_export_records(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        metrics: Sequence[str] | None = None,
        media: bool = True,
        packages: bool = False,
        page: int = 2000,
    ) -> Iterator[ExportRecord]:
        """:meth:`export_records` as a stream, newest run first (``list_runs``'s order):
        keyset pages of ``page`` runs (``created_at, id`` after the last one read: no
        OFFSET, each page through the ``(project, created_at)`` index), each page's metric
        values, media and amendments read in bulk (one query each, whatever ``page``), all
        in one read transaction. ``metrics`` narrows ``metrics`` to those keys, ``media=False``
        skips media references, and ``packages`` adds the env's ``packages`` map
        (``importance``'s code factors)."""
        q = self._runs_query(project=project, filter=filter, order_by=None)
        q = q.with_only_columns(*_columns(self.dialect, packages=packages))
        with self._read() as conn:
            every = self._summary_amendments(conn)  # edits are few: all read once
            for rows in _keyset_pages(conn, q, page, created_at=4):
                yield from self._export_page(conn, rows, metrics, media, packages, every)

    def iter_run_columns(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        metric: str,
        packages: bool = False,
        page: int = 5000,
    ) -> Iterator[dict[str, list[Any]]]:
        """What ``importance`` reads of the runs :meth:`iter_export_records` would give, as
        columns: one dict of equal-length lists per page of ``page`` runs (newest first,
        ``list_runs``' order), no record per run. One statement for all the runs, its rows
        taken ``page`` at a time from the driver's cursor as plain DBAPI tuples (not a
        keyset query per page through SQLAlchemy rows: 100,000 runs on PostgreSQL, JSON
        decoding included, ~0.9 s instead of ~1.8 s). Keys: ``id``, ``project``, ``value``
        (``metric``'s value: the run's summary member where it has one, else its series'
        last value, else None), ``config`` and ``datasets`` (decoded JSON, one
        ``json.loads`` a page),
        ``commit`` and ``patch`` (the env's git commit and patch digest) and, with
        ``packages``, ``packages`` (the env's packages map). Datasets and packages are
        decoded once per distinct text (runs of one environment share them: the same
        object in each run's row)."""
        r = s.runs
        ms = s.metric_summary
        cols = [
            r.c.id,
            r.c.project,
            r.c.created_at,
            _text(self.dialect, r.c.config),
            _member(self.dialect, r.c.summary, metric),
            _text(self.dialect, r.c.datasets),
            _env_text(self.dialect, r.c.env, "git", "commit"),
            _env_text(self.dialect, r.c.env, "git", "diff_sha256"),
            ms.c.last,
            ms.c.last_nan,
        ]
        if packages:
            cols.append(_env_json(self.dialect, r.c.env, "packages"))
        q = self._runs_query(project=project, filter=filter, order_by=None)
        # the series' last value beside each run: one primary-key probe a row, no id list
        q = q.outerjoin(ms, sa.and_(ms.c.run_id == r.c.id, ms.c.key == metric))
        q = q.with_only_columns(*cols)
        shared: dict[Any, Any] = {}  # JSON text -> decoded, for texts many runs share

        def dedup(texts: list[Any], kind: type) -> list[Any]:
            if not set(map(type, texts)) <= {str, type(None)}:  # decoded already
                return [t if isinstance(t, kind) else kind() for t in texts]
            for t in set(texts) - shared.keys():
                found = s.load_json(t) if t is not None else None
                shared[t] = found if isinstance(found, kind) else kind()
            return list(map(shared.__getitem__, texts))

        with self._read() as conn:  # _runs_query's order: newest first, then id
            if self.dialect == "postgresql":
                # a read of every matching run is planned as costly: JIT would compile for
                # ~0.45 s (a metric filter at 100k runs: 1.2 s read, 0.85 s without it)
                conn.execute(sa.text("SELECT set_config('jit', 'off', true)"))
            for rows in _cursor_pages(conn, q, page):
                # one column a tuple (zip in C), not one list comprehension per column
                by_col = list(zip(*rows, strict=True))
                members, last, last_nan = by_col[4], by_col[8], by_col[9]
                if members.count(None) == len(members):  # no summary member: the series
                    value = [math.nan if n else v for v, n in zip(last, last_nan, strict=True)]
                else:
                    # JSON texts (SQLite gives a number as a number)
                    decoded = _loads_nullable([m for m in members if isinstance(m, str)])
                    it = iter(decoded)
                    value = [
                        (math.nan if n else v)
                        if m is None
                        else decode_json(next(it))
                        if isinstance(m, str)
                        else m
                        for m, v, n in zip(members, last, last_nan, strict=True)
                    ]
                out: dict[str, list[Any]] = {
                    "id": list(by_col[0]),
                    "project": list(by_col[1]),
                    "value": value,
                    "config": _loads_nullable(list(by_col[3])),
                    "datasets": dedup(list(by_col[5]), list),
                    "commit": list(by_col[6]),
                    "patch": list(by_col[7]),
                }
                if packages:
                    out["packages"] = dedup(list(by_col[10]), dict)
                yield out

    def _export_page(
        self,
        conn: Connection,
        runs: Sequence[Any],
        keys: Sequence[str] | None,
        with_media: bool,
        packages: bool,
        every: dict[str, list[dict[str, Any]]] | None,
    ) -> list[ExportRecord]:
        """Records of ``runs`` (rows of :func:`_columns`) with their metrics, media and amendments."""
        if not runs:
            return []
        ids = [row[0] for row in runs]
        ms = s.metric_summary
        mq = sa.select(ms.c.run_id, ms.c.key, ms.c.last, ms.c.last_nan).where(
            _among(self.dialect, ms.c.run_id, ids)
        )
        if keys is not None:
            mq = mq.where(ms.c.key.in_(list(keys)))
        metrics: dict[str, dict[str, Any]] = {}
        for run_id, key, last, last_nan in conn.execute(mq).all():
            metrics.setdefault(run_id, {})[key] = math.nan if last_nan else last
        media: dict[str, dict[str, str]] = {}
        refs: dict[str, dict[str, dict[str, Any]]] = {}
        if with_media:
            # rich results: per run and key, a reference to the value logged last (its
            # sha256; `labledger media get RUN KEY` fetches every step)
            md = s.media
            last_step = (
                sa.select(
                    md.c.run_id,
                    md.c.key,
                    sa.func.max(md.c.step).label("step"),
                    sa.func.count().label("count"),
                )
                .where(_among(self.dialect, md.c.run_id, ids))
                .group_by(md.c.run_id, md.c.key)
                .subquery()
            )
            mdq = (
                sa.select(
                    md.c.run_id,
                    md.c.key,
                    md.c.seq,
                    md.c.sha256,
                    md.c.step,
                    md.c.kind,
                    md.c.size,
                    last_step.c.count,
                )
                .join(
                    last_step,
                    sa.and_(
                        md.c.run_id == last_step.c.run_id,
                        md.c.key == last_step.c.key,
                        md.c.step == last_step.c.step,
                    ),
                )
                .order_by(md.c.run_id, md.c.key, md.c.seq)
            )
            for run_id, key, _seq, sha, step, kind, size, count in conn.execute(mdq):
                media.setdefault(run_id, {})[key] = f"sha256:{sha}"
                # the reference to the value logged last (its bytes are in the artifact
                # blob store) and how many values the key has
                refs.setdefault(run_id, {})[key] = {
                    "step": int(step),
                    "kind": kind,
                    "sha256": sha,
                    "size": int(size),
                    "count": int(count),
                }
        # the JSON columns come as text (see _columns) and are decoded a column at a time:
        # one json.loads of a page's documents, not one call per document
        tags_, config_, summary_, datasets_ = (
            _loads_all([row[i] for row in runs]) for i in (8, 9, 10, 12)
        )
        packages_ = _loads_all([row[16] for row in runs]) if packages else []
        # amended values beside the sealed ones (store/_amend.py)
        sealed = [
            {
                "id": row[0],
                "status": row[3],
                "summary": {
                    **dict(sorted((metrics.get(row[0]) or {}).items())),
                    **decode_json(summary_[i] or {}),
                },
            }
            for i, row in enumerate(runs)
            # `every` is every amendment (a stream): only the runs it names need a look
            if row[3] in SEALED_STATUSES and (every is None or row[0] in every)
        ]
        self._amendments(conn, sealed, every)
        amended = {
            r["id"]: {k: a.get("value") for k, a in r["amended"].items()}
            for r in sealed
            if r["amended"]
        }
        out: list[ExportRecord] = []
        for i, row in enumerate(runs):
            (
                rid,
                proj,
                name,
                status,
                created,
                ended,
                heartbeat,
                seed,
                _tags,
                _config,
                _summary,
                author,
                _datasets,
                commit,
                dirty,
                patch,
            ) = row[:16]
            rec: ExportRecord = {
                "id": rid,
                "project": proj,
                "name": name,
                "status": status,
                "created_at": created,
                "ended_at": ended,
                "heartbeat_at": heartbeat,
                "seed": seed,
                "tags": tags_[i] or [],
                "config": config_[i] or {},
                "summary": summary_[i] or {},
                "author": author,
                "metrics": metrics.get(rid) or {},
                "amended": amended.get(rid) or {},
                "datasets": datasets_[i] or [],
                "git_commit": commit,
                "git_dirty": _as_bool(dirty),
                "git_patch": patch,
                "media": media.get(rid) or {},
                "media_refs": refs.get(rid) or {},
            }
            if packages:
                found = packages_[i]
                rec["packages"] = found if isinstance(found, dict) else {}
            out.append(rec)
        return out


def _keyset_pages(conn: Connection, q: Any, page: int, *, created_at: int) -> Iterator[Any]:
    """The rows of ``q`` (``runs`` newest first, ``id`` its first column and ``created_at``
    at index ``created_at``) in keyset pages of ``page`` rows: ``created_at, id`` after the
    last one read, no OFFSET, each page through the ``(project, created_at)`` index."""
    r = s.runs
    after: tuple[float, str] | None = None
    while True:
        pq = q
        if after is not None:
            created, rid = after
            pq = q.where(
                # the plain `<=` lets the index scan start at the page boundary
                # (the OR alone is a filter: each page would walk the ones before)
                r.c.created_at <= created,
                sa.or_(
                    r.c.created_at < created,
                    sa.and_(r.c.created_at == created, r.c.id > rid),
                ),
            )
        rows = conn.execute(pq.limit(page)).all()
        if rows:
            yield rows
        if len(rows) < page:
            return
        after = (rows[-1][created_at], rows[-1][0])


def _cursor_pages(conn: Connection, q: Any, page: int) -> Iterator[list[Any]]:
    """The rows of ``q``, one statement, as lists of at most ``page`` DBAPI tuples fetched
    from the driver's cursor (SQLAlchemy's row objects cost more than the read itself at
    100,000 rows; the columns read here need no result processing)."""
    result = conn.execute(q)
    try:
        cursor = result.cursor
        while True:
            rows = cursor.fetchmany(page)
            if rows:
                yield list(rows)
            if len(rows) < page:
                return
    finally:
        result.close()


def _loads_nullable(texts: list[Any]) -> list[Any]:
    """Decode JSON texts with one ``json.loads`` (None stays None; a driver that gives
    decoded values already keeps them)."""
    if not all(t is None or isinstance(t, str) for t in texts):
        return [s.load_json(t) if t is not None else None for t in texts]
    return list(json.loads("[" + ",".join("null" if t is None else t for t in texts) + "]"))


def _columns(dialect: str, *, packages: bool) -> list[Any]:
    """The columns of ``runs`` an export reads, in the order ``_export_page`` unpacks them."""
    r = s.runs
    cols = [
        r.c.id,
        r.c.project,
        r.c.name,
        r.c.status,
        r.c.created_at,
        r.c.ended_at,
        r.c.heartbeat_at,
        r.c.seed,
        _text(dialect, r.c.tags),
        _text(dialect, r.c.config),
        _text(dialect, r.c.summary),
        r.c.author,
        _text(dialect, r.c.datasets),
        _env_text(dialect, r.c.env, "git", "commit"),
        _env_text(dialect, r.c.env, "git", "dirty"),
        _env_text(dialect, r.c.env, "git", "diff_sha256"),
    ]
    if packages:
        cols.append(_env_json(dialect, r.c.env, "packages"))
    return cols


def _env_json(dialect: str, col: Any, key: str) -> Any:
    """One member of a JSON column as JSON text (NULL where absent)."""
    if dialect == "sqlite":
        # json_extract gives a string member as bare text; json_quote makes it JSON again
        # (an object or array member stays as it is: json_extract returns it as JSON)
        return sa.func.json(sa.func.json_quote(sa.func.json_extract(col, f'$."{key}"')))
    return sa.cast(col.op("->")(sa.literal(key, sa.Text)), sa.Text)


def _member(dialect: str, col: Any, key: str) -> Any:
    """One member of a JSON object column as JSON text: NULL where the key is absent,
    ``null`` where it holds null."""
    if dialect == "sqlite":
        # a number as SQLite's own (json_quote would print 15 digits of a double), true
        # and false as JSON (json_extract makes them 1 and 0), anything else as JSON text
        path = f'$."{key}"'
        kind = sa.func.json_type(col, path)
        return sa.case(
            (kind.is_(None), sa.null()),
            (kind.in_(["real", "integer"]), sa.func.json_extract(col, path)),
            (kind.in_(["true", "false"]), kind),
            else_=_env_json(dialect, col, key),
        )
    return _env_json(dialect, col, key)


def _text(dialect: str, col: Any) -> Any:
    """A JSON column as its text (SQLite stores text already)."""
    return col if dialect == "sqlite" else sa.cast(col, sa.Text)


def _loads_all(texts: list[Any]) -> list[Any]:
    """Decode JSON texts (None stays None) with one ``json.loads``."""
    if not texts:
        return []
    if all(isinstance(x, str) for x in texts):
        return list(json.loads("[" + ",".join(texts) + "]"))
    return [s.load_json(x) for x in texts]


def _among(dialect: str, col: Any, ids: list[str]) -> Any:
    """``col IN ids`` as one bound parameter (an array, or a JSON list on SQLite): the
    statement text stays the same whatever the number of ids."""
    if dialect == "sqlite":
        tv = sa.func.json_each(sa.literal(json.dumps(ids), sa.String)).table_valued("value")
        return col.in_(sa.select(tv.c.value).scalar_subquery())
    from sqlalchemy.dialects import postgresql as pg

    return col == sa.any_(sa.cast(sa.literal(ids, pg.ARRAY(sa.Text)), pg.ARRAY(sa.Text)))


def _env_text(dialect: str, col: Any, *path: str) -> Any:
    """One leaf of a JSON column as text-or-scalar (SQLite ``json_extract``, PostgreSQL ``#>>``)."""
    if dialect == "sqlite":
        return sa.func.json_extract(col, "$." + ".".join(f'"{p}"' for p in path))
    from sqlalchemy.dialects import postgresql as pg

    return col.op("#>>", return_type=sa.Text)(sa.literal(list(path), pg.ARRAY(sa.Text)))


def _as_bool(v: Any) -> bool | None:
    if v is None:
        return None
    return v in (1, True, "true", "1")
