"""SQL side of the MLflow compatibility layer: the ``mlflow_objects`` table (migration 0009).

Experiments and MLflow 3 logged models have facts labledger's own tables do not hold
(an experiment id, a lifecycle stage, experiment tags; a model's status and params).
They live here as JSON keyed by ``(kind, id)``; runs need nothing extra.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import _schema as s

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.engine import Connection

__all__ = ["MlflowSqlMixin"]


class MlflowSqlMixin:
    """``mlflow_object*`` methods and ``rename_project`` for :class:`SqlStore`."""

    if TYPE_CHECKING:
        dialect: str

        def _tx(self) -> AbstractContextManager[Connection]: ...

        def _read(self) -> AbstractContextManager[Connection]: ...

        def upsert(self, table: sa.Table) -> Any: ...

    @staticmethod
    def _object(row: Any) -> dict[str, Any]:
        return {
            "kind": row["kind"],
            "id": row["id"],
            "project": row["project"],
            "run_id": row["run_id"],
            "data": s.load_json(row["data"]) or {},
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def mlflow_object(self, kind: str, object_id: str) -> dict[str, Any] | None:
        """The object ``(kind, object_id)``, or None."""
        t = s.mlflow_objects
        with self._read() as conn:
            row = (
                conn.execute(sa.select(t).where(t.c.kind == kind, t.c.id == object_id))
                .mappings()
                .first()
            )
        return None if row is None else self._object(row)

    def mlflow_objects(
        self, kind: str, *, project: str | None = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object of ``kind`` (optionally of one project or run), oldest first."""
        t = s.mlflow_objects
        q = sa.select(t).where(t.c.kind == kind)
        if project is not None:
            q = q.where(t.c.project == project)
        if run_id is not None:
            q = q.where(t.c.run_id == run_id)
        with self._read() as conn:
            rows = conn.execute(q.order_by(t.c.created_at, t.c.id)).mappings().all()
        return [self._object(r) for r in rows]

    def put_mlflow_object(
        self,
        kind: str,
        object_id: str,
        project: str,
        data: dict[str, Any],
        *,
        run_id: str | None = None,
        create_only: bool = False,
    ) -> bool:
        """Insert or replace an object; with ``create_only`` keep an existing one (returns False)."""
        now = time.time()
        t = s.mlflow_objects
        ins = self.upsert(t).values(
            kind=kind,
            id=object_id,
            project=project,
            run_id=run_id,
            data=data,
            created_at=now,
            updated_at=now,
        )
        if create_only:
            stmt = ins.on_conflict_do_nothing(index_elements=["kind", "id"]).returning(t.c.id)
        else:
            stmt = ins.on_conflict_do_update(
                index_elements=["kind", "id"],
                set_={"project": project, "run_id": run_id, "data": data, "updated_at": now},
            ).returning(t.c.id)
        with self._tx() as conn:
            return conn.execute(stmt).first() is not None

    def delete_mlflow_object(self, kind: str, object_id: str) -> None:
        t = s.mlflow_objects
        with self._tx() as conn:
            conn.execute(sa.delete(t).where(t.c.kind == kind, t.c.id == object_id))

    def rename_project(self, old: str, new: str) -> None:
        """Move every row naming project ``old`` to ``new`` (runs, artifacts, roles, objects)."""
        with self._tx() as conn:
            for table in s.metadata.sorted_tables:
                col = table.c.get("project") if table is not s.projects else table.c.name
                if col is None:
                    continue
                conn.execute(sa.update(table).where(col == old).values({col.name: new}))
