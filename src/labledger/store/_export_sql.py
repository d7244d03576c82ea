"""Export reads in SQL: the columns an export needs, every metric's last value in one query.

Mixed into :class:`~labledger.store.sql.SqlStore` (the :class:`~labledger.store.RunExport`
role). ``labledger export`` and ``Ledger.export`` turn these records into rows
(``analysis/_export.py``); a store without the role (the tracking server's client) is
read through ``list_runs`` instead.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._values import decode_json
from . import _schema as s
from ._fields import SEALED_STATUSES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

    from ..query import Node
    from ._base import ExportRecord

__all__ = ["ExportSqlMixin"]


class ExportSqlMixin:
    """The export read of the SQL store (see the module docstring)."""

    if TYPE_CHECKING:
        dialect: str

        def _read(self) -> contextlib.AbstractContextManager[Connection]: ...

        def _amendments(self, conn: Connection, runs: list[dict[str, Any]]) -> None: ...

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
        the git commit, dirty flag and patch digest), with every series' last value; two queries whatever the number of runs
        (and the amendments of sealed runs: one more where there are any)."""
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
            r.c.tags,
            r.c.config,
            r.c.summary,
            r.c.author,
            r.c.datasets,
            _env_text(self.dialect, r.c.env, "git", "commit"),
            _env_text(self.dialect, r.c.env, "git", "dirty"),
            _env_text(self.dialect, r.c.env, "git", "diff_sha256"),
        ]
        # the store's own query (project, filter, order), narrowed to the columns needed
        q = self._runs_query(project=project, filter=filter, order_by=order_by)
        q = q.with_only_columns(*cols)
        if limit is not None:
            q = q.limit(limit)
        ms = s.metric_summary
        mq = sa.select(ms.c.run_id, ms.c.key, ms.c.last, ms.c.last_nan)
        if filter or project is not None or limit is not None:
            mq = mq.where(ms.c.run_id.in_(sa.select(q.subquery().c.id)))
        # rich results: per run and key, a reference to the value logged last (its sha256;
        # `labledger media get RUN KEY` fetches every step)
        md = s.media
        last_step = (
            sa.select(
                md.c.run_id,
                md.c.key,
                sa.func.max(md.c.step).label("step"),
                sa.func.count().label("count"),
            )
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
        if filter or project is not None or limit is not None:
            mdq = mdq.where(md.c.run_id.in_(sa.select(q.subquery().c.id)))
        with self._read() as conn:
            runs = conn.execute(q).all()
            metrics: dict[str, dict[str, Any]] = {}
            for run_id, key, last, last_nan in conn.execute(mq):
                metrics.setdefault(run_id, {})[key] = math.nan if last_nan else last
            media: dict[str, dict[str, str]] = {}
            refs: dict[str, dict[str, dict[str, Any]]] = {}
            for run_id, key, _seq, sha, step, kind, size, count in conn.execute(mdq):
                media.setdefault(run_id, {})[key] = f"sha256:{sha}"
                refs.setdefault(run_id, {})[key] = {
                    "step": int(step),
                    "kind": kind,
                    "sha256": sha,
                    "size": int(size),
                    "count": int(count),
                }
            # amended values beside the sealed ones (store/_amend.py)
            sealed = [
                {
                    "id": rid,
                    "status": status,
                    "summary": {
                        **dict(sorted((metrics.get(rid) or {}).items())),
                        **decode_json(s.load_json(summary) or {}),
                    },
                }
                for rid, _, _, status, *_, summary, _, _, _, _, _ in runs
                if status in SEALED_STATUSES
            ]
            self._amendments(conn, sealed)
        amended = {
            r["id"]: {k: a.get("value") for k, a in r["amended"].items()}
            for r in sealed
            if r["amended"]
        }
        return [
            {
                "id": rid,
                "project": proj,
                "name": name,
                "status": status,
                "created_at": created,
                "ended_at": ended,
                "heartbeat_at": heartbeat,
                "seed": seed,
                "tags": s.load_json(tags) or [],
                "config": s.load_json(config) or {},
                "summary": s.load_json(summary) or {},
                "author": author,
                "metrics": metrics.get(rid) or {},
                "amended": amended.get(rid) or {},
                "datasets": s.load_json(datasets) or [],
                "git_commit": commit,
                "git_dirty": _as_bool(dirty),
                "git_patch": patch,
                "media": media.get(rid) or {},
                "media_refs": refs.get(rid) or {},
            }
            for (
                rid,
                proj,
                name,
                status,
                created,
                ended,
                heartbeat,
                seed,
                tags,
                config,
                summary,
                author,
                datasets,
                commit,
                dirty,
                patch,
            ) in runs
        ]


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
