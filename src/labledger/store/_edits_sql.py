"""Edit events in the SQL store: notes, tags and summary changed after the fact.

Mixed into :class:`~labledger.store.sql.SqlStore`. Each changed field is one row of
``run_edits`` (who, when, field, old -> new); on a run that has ended each edit also
appends to the audit chain (:mod:`._audit_sql`), and every record hashes its edits.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import UsageError
from .._values import encode_json
from . import _schema as s
from ._amend import amended_from_edits, apply_amended, is_amendment
from ._audit_sql import SEALED_STATUSES
from ._sqla import SaDb
from ._statements import add_edits

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ._base import RunRecord

__all__ = ["EditSqlMixin"]


class EditSqlMixin:
    """Edit events of the SQL store (see the module docstring)."""

    if TYPE_CHECKING:
        dialect: str

        def _tx(self) -> contextlib.AbstractContextManager[Connection]: ...

        def _read(self) -> contextlib.AbstractContextManager[Connection]: ...

        def resolve_run_id(self, ref: str) -> str: ...

        def _append_entry(
            self,
            conn: Connection,
            project: str,
            run_id: str,
            kind: str,
            edit_id: str | None = None,
        ) -> str: ...

    def _add_edits(
        self,
        conn: Connection,
        run_id: str,
        changes: list[tuple[str, Any, Any]],
        actor: str | None,
        *,
        reason: str | None = None,
        amend: bool = False,
    ) -> list[dict[str, Any]]:
        """Insert one ``run_edits`` row per change (``_statements.add_edits``). With
        ``amend`` (the run is sealed) a ``summary.KEY`` change is an amendment: its ``new``
        document is marked (see :mod:`._amend`); ``reason`` is kept in ``new`` too."""
        return add_edits(
            SaDb(conn, self.dialect), run_id, changes, actor, reason=reason, amend=amend
        )

    def _edit_changes(
        self, cur: Any, update: dict[str, Any], effective: dict[str, Any] | None = None
    ) -> list[tuple[str, Any, Any]]:
        """(field, old, new) for each editable field in ``update`` that differs from the row.

        ``effective`` (a sealed run): the summary as it reads now, sealed values with their
        amendments; a summary change is measured against it, not against the column."""
        changes: list[tuple[str, Any, Any]] = []
        if "notes" in update:
            changes.append(("notes", cur["notes"], update["notes"]))
        if "tags" in update:
            changes.append(("tags", s.load_json(cur["tags"]) or [], list(update["tags"] or [])))
        if "summary" in update:
            column = s.load_json(cur["summary"]) or {}
            old = column if effective is None else encode_json(effective)
            new = encode_json(update["summary"] or {})
            for k in sorted(set(column) | set(new)):
                if old.get(k) != new.get(k):
                    changes.append((f"summary.{k}", old.get(k), new.get(k)))
        if "env" in update:  # only EDITABLE_ENV keys reach here (see sql._changed)
            old_env = s.load_json(cur["env"]) or {}
            for k, v in encode_json(update["env"] or {}).items():
                if old_env.get(k) != v:
                    changes.append((f"env.{k}", old_env.get(k), v))
        return changes

    def edit_run(
        self,
        ref: str,
        *,
        notes: str | None = None,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        summary: dict[str, Any] | None = None,
        actor: str | None = None,
        owner_check: Any = None,
        reason: str | None = None,
    ) -> list[dict[str, Any]]:
        """Edit notes, tags or explicit summary values of a run (also a finished one).

        Each changed field becomes an edit event (who, when, field, old -> new, ``reason``);
        on a sealed run each also appends to the audit chain, and a summary change is an
        *amendment*: the sealed value stays stored and the new one is kept beside it
        (:mod:`._amend`). ``summary`` values of None remove an explicit value.
        ``owner_check(run_row)`` (the server's) may raise. Returns the stored edit events.
        """
        from .._values import check_key

        if notes is None and not add_tags and not remove_tags and not summary:
            raise UsageError(
                "nothing to edit: give notes, tags to add or remove, or summary values"
            )
        for k in summary or {}:
            check_key(k)
        run_id = self.resolve_run_id(ref)
        r = s.runs
        with self._tx() as conn:
            cur = conn.execute(sa.select(r).where(r.c.id == run_id)).mappings().first()
            if cur is None:
                from .._exceptions import RunNotFoundError

                raise RunNotFoundError(ref)
            if owner_check is not None:
                owner_check(cur)
            update: dict[str, Any] = {}
            if notes is not None:
                update["notes"] = notes
            if add_tags or remove_tags:
                tags = set(s.load_json(cur["tags"]) or [])
                update["tags"] = sorted((tags | {str(t) for t in add_tags}) - set(remove_tags))
            if summary:
                if cur["status"] in SEALED_STATUSES:
                    base = encode_json(self._effective_summary(conn, cur))
                else:
                    base = dict(s.load_json(cur["summary"]) or {})
                merged = dict(base)
                for k, v in encode_json(summary).items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = v
                update["summary"] = merged
            return self._apply_edits(conn, cur, update, actor, reason=reason)

    def _effective_summary(self, conn: Connection, cur: Any) -> dict[str, Any]:
        """A sealed run's summary as it reads now: each metric's last value, the sealed
        explicit values over them, then the newest amendment of each key."""
        from .._values import decode_json

        ms = s.metric_summary
        summary: dict[str, Any] = {}
        for key, last, last_nan in conn.execute(
            sa.select(ms.c.key, ms.c.last, ms.c.last_nan).where(ms.c.run_id == cur["id"])
        ):
            summary[key] = float("nan") if last_nan else last
        summary.update(decode_json(s.load_json(cur["summary"]) or {}))
        return apply_amended(summary, amended_from_edits(summary, self._edits_of(conn, cur["id"])))

    def _edits_of(self, conn: Connection, run_id: str) -> list[dict[str, Any]]:
        e = s.run_edits
        rows = conn.execute(
            sa.select(e).where(e.c.run_id == run_id).order_by(e.c.at, e.c.id)
        ).mappings()
        return [_edit_dict(row) for row in rows]

    def _amendments(
        self,
        conn: Connection,
        runs: Sequence[RunRecord] | Sequence[dict[str, Any]],
        every: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        """Set ``amended`` on each run dict (sealed summary in ``summary``) from its
        amendments. Edits are few: up to 500 runs are looked up by id (the
        ``(run_id, at)`` index); more read every ``summary.*`` edit row once. ``every``
        (from :meth:`_summary_amendments`) is that read done already (a stream of pages)."""
        for run in runs:
            run["amended"] = {}
        by_id = {r["id"]: r for r in runs if r.get("status") in SEALED_STATUSES}
        if not by_id:
            return
        if every is not None:
            edits = {k: every[k] for k in by_id if k in every}
        else:
            edits = self._summary_amendments(conn, list(by_id) if len(by_id) <= 500 else None)
        for run_id, rows in edits.items():
            if run_id not in by_id:
                continue
            run = by_id[run_id]
            run["amended"] = amended_from_edits(run.get("summary") or {}, rows)

    def _summary_amendments(
        self, conn: Connection, run_ids: list[str] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """The amendments of ``summary.*`` by run, oldest first (of ``run_ids`` only, by id)."""
        e = s.run_edits
        q = sa.select(e).where(e.c.field.like("summary.%")).order_by(e.c.at, e.c.id)
        if run_ids is not None:
            q = q.where(e.c.run_id.in_(run_ids))
        edits: dict[str, list[dict[str, Any]]] = {}
        for row in conn.execute(q).mappings():
            d = _edit_dict(row)
            if d["amendment"]:
                edits.setdefault(row["run_id"], []).append(d)
        return edits

    def _apply_edits(
        self,
        conn: Connection,
        cur: Any,
        update: dict[str, Any],
        actor: str | None,
        reason: str | None = None,
    ) -> list[dict[str, Any]]:
        run_id = cur["id"]
        sealed = cur["status"] in SEALED_STATUSES
        effective = self._effective_summary(conn, cur) if sealed and "summary" in update else None
        rows = self._add_edits(
            conn,
            run_id,
            self._edit_changes(cur, update, effective),
            actor or cur["author"],
            reason=reason,
            amend=sealed,
        )
        if not rows:
            return []
        values: dict[str, Any] = {"updated_at": time.time()}
        for k, v in update.items():
            if k == "summary" and sealed:
                continue  # the sealed summary stays: the change is an amendment (run_edits)
            values[k] = encode_json(v) if k in ("tags", "summary") else v
        if "env" in update:
            values["env"] = {**(s.load_json(cur["env"]) or {}), **encode_json(update["env"])}
        conn.execute(sa.update(s.runs).where(s.runs.c.id == run_id).values(**values))
        if cur["status"] in SEALED_STATUSES:
            for row in rows:
                self._append_entry(conn, cur["project"], run_id, "edit", row["id"])
        return [_edit_dict(row) for row in rows]

    def run_author(self, run_id: str) -> str | None:
        """The author column of one run (RunNotFoundError when there is no such run)."""
        with self._read() as conn:
            row = conn.execute(sa.select(s.runs.c.author).where(s.runs.c.id == run_id)).first()
        if row is None:
            from .._exceptions import RunNotFoundError

            raise RunNotFoundError(run_id)
        return None if row[0] is None else str(row[0])

    def run_edits(self, run_id: str) -> list[dict[str, Any]]:
        """Edit events of a run, oldest first: ``{id, at, author, field, old, new, reason,
        amendment}``."""
        with self._read() as conn:
            return self._edits_of(conn, run_id)


def _edit_dict(row: Any) -> dict[str, Any]:
    from .._values import decode_json

    new = s.load_json(row["new"]) or {}
    return {
        "id": row["id"],
        "at": row["at"],
        "author": row["author"],
        "field": row["field"],
        "old": decode_json((s.load_json(row["old"]) or {}).get("v")),
        "new": decode_json(new.get("v")),
        "reason": new.get("reason"),
        "amendment": is_amendment(new),
    }
