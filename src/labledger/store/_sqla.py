"""The statements module's :class:`~labledger.store._statements.Db` over SQLAlchemy.

SqlStore runs the shared SQL text of ``_statements`` (the same text the embedded
``sqlite3`` path runs) through SQLAlchemy's ``text()`` on its transaction's connection.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["SaDb"]


@functools.lru_cache(maxsize=256)
def _text(sql: str) -> sa.TextClause:
    return sa.text(sql)


class SaDb:
    """A :class:`~labledger.store._statements.Db` on a SQLAlchemy connection."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> Iterable[Sequence[Any]]:
        return self.conn.execute(_text(sql), dict(params or {}))

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> Sequence[Any] | None:
        result = self.conn.execute(_text(sql), dict(params or {}))
        return result.first() if result.returns_rows else None

    def many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        self.conn.execute(_text(sql), [dict(p) for p in params])
