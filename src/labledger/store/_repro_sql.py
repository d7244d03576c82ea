"""Reproduction verdicts in the SQL store (mixed into :class:`~labledger.store.sql.SqlStore`).

A verdict is an append-only fact: one row per ``labledger repro`` attempt that ran,
linking the original run and its reproduction run (the rules: ``_repro_rules.py``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .._exceptions import UsageError
from .._values import decode_json, encode_json
from . import _schema as s
from ._repro_rules import STORED_VERDICTS

__all__ = ["VERDICTS", "ReproSqlMixin"]

VERDICTS = STORED_VERDICTS


class ReproSqlMixin:
    """``add_repro_verdict`` / ``repro_verdicts`` for a store with ``_tx`` and ``_read``."""

    # provided by SqlStore
    _tx: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]

    def add_repro_verdict(self, verdict: dict[str, Any], *, by: str | None = None) -> str:
        """Store one verdict; return its id.

        ``verdict`` holds ``original_run_id``, ``repro_run_id`` (the reproduction run: a
        verdict exists only with one), ``verdict`` (one of :data:`VERDICTS`) and optionally
        ``reason``, ``tolerance``, ``details`` (a JSON object), ``created_at`` and ``id``
        (an idempotency key: storing the same id twice keeps one row). The verdict, reason
        and per-metric table are re-derived from the two stored runs
        (:func:`~labledger.store._repro_rules.checked_verdict`), and ``by`` (who
        reproduced; default: this process's author) is recorded in ``details.by``.
        Raises :class:`~labledger.VerdictRefusedError` for a verdict without its
        reproduction run or one its runs do not give.
        """
        from .._author import local_author
        from ._repro_rules import checked_verdict

        kind = verdict.get("verdict")
        if kind not in VERDICTS:
            raise UsageError(f"verdict must be one of {', '.join(VERDICTS)}, not {kind!r}")
        vid = str(verdict.get("id") or uuid.uuid4().hex)
        t = s.repro_verdicts
        with self._read() as conn:
            if conn.execute(sa.select(t.c.id).where(t.c.id == vid)).first() is not None:
                return vid  # a retried request: kept once
        ok = checked_verdict(self, verdict, by=by if by is not None else local_author())
        values = {
            "id": vid,
            "original_run_id": ok["original_run_id"],
            "repro_run_id": ok["repro_run_id"],
            "verdict": ok["verdict"],
            "reason": ok.get("reason"),
            "tolerance": ok.get("tolerance"),
            "details": encode_json(ok.get("details") or {}),
            "created_at": float(verdict.get("created_at") or time.time()),
        }
        with self._tx() as conn:
            if conn.execute(sa.select(t.c.id).where(t.c.id == vid)).first() is None:
                conn.execute(sa.insert(t).values(**values))
        return vid

    def repro_verdicts(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Verdicts in which any of ``run_ids`` is the original or the reproduction, newest first."""
        t = s.repro_verdicts
        ids = list(dict.fromkeys(run_ids))
        rows: dict[str, dict[str, Any]] = {}
        with self._read() as conn:
            if len(ids) > 400:
                # many runs (an export): verdicts are few, so when the table holds no more
                # rows than there are ids, one read of it beats len(ids)/400 IN-list queries
                count = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                if count <= len(ids):
                    wanted = set(ids)
                    for r in conn.execute(sa.select(t)).mappings():
                        if r["original_run_id"] in wanted or r["repro_run_id"] in wanted:
                            rows[r["id"]] = _row_to_verdict(r)
                    return sorted(rows.values(), key=lambda v: (-v["created_at"], v["id"]))
            for part in _chunks(ids, 400):
                q = sa.select(t).where(
                    sa.or_(t.c.original_run_id.in_(part), t.c.repro_run_id.in_(part))
                )
                for r in conn.execute(q).mappings():
                    rows[r["id"]] = _row_to_verdict(r)
        return sorted(rows.values(), key=lambda v: (-v["created_at"], v["id"]))


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _row_to_verdict(row: Any) -> dict[str, Any]:
    details = s.load_json(row["details"])
    return {
        "id": row["id"],
        "original_run_id": row["original_run_id"],
        "repro_run_id": row["repro_run_id"],
        "verdict": row["verdict"],
        "reason": row["reason"],
        "tolerance": row["tolerance"],
        "details": decode_json(details or {}),
        "created_at": row["created_at"],
        "by": (details or {}).get("by"),  # who reproduced (verdicts before 0.x: None)
    }
