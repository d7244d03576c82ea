"""SQL side of the model registry (migration 0011): registered models, versions, aliases.

A version is a pointer, never a copy: ``(name, version)`` -> a finished run and one of
its content-addressed artifact versions (``artifact_versions.id``), so the model behind a
number is the run's own artifact, with its lineage. An alias move is recorded as an edit
event of the run the alias now (or before) points at, chained into the audit log in the
same transaction, by the actor who moved it.

Only storage here: who may do what is :class:`~labledger.store.WriteCore`'s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import NotFoundError, UsageError
from . import _schema as s
from ._registry_core import model_missing, version_missing

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.engine import Connection

__all__ = ["RegistrySqlMixin", "model_missing", "version_missing"]

_KEEP: Any = object()


class RegistrySqlMixin:
    """The ``ModelRegistry`` role of :class:`SqlStore`."""

    if TYPE_CHECKING:
        dialect: str

        def _tx(self) -> AbstractContextManager[Connection]: ...

        def _read(self) -> AbstractContextManager[Connection]: ...

        def _append_entry(
            self,
            conn: Connection,
            project: str,
            run_id: str,
            kind: str,
            edit_id: str | None = None,
        ) -> str: ...

    # -- rows -> dicts ---------------------------------------------------------------

    @staticmethod
    def _version_dict(row: Any, aliases: Sequence[str] = ()) -> dict[str, Any]:
        return {
            "name": row["name"],
            "version": int(row["version"]),
            "run_id": row["run_id"],
            "artifact_version_id": row["artifact_version_id"],
            "source": row["source"],
            "description": row["description"],
            "tags": dict(s.load_json(row["tags"]) or {}),
            "author": row["author"],
            "aliases": sorted(aliases),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def _aliases(self, conn: Connection, name: str) -> dict[str, int]:
        a = s.model_aliases
        rows = conn.execute(sa.select(a.c.alias, a.c.version).where(a.c.name == name)).all()
        return {str(r[0]): int(r[1]) for r in rows}

    def _model_dict(self, conn: Connection, row: Any) -> dict[str, Any]:
        name = str(row["name"])
        v = s.model_versions
        latest = (
            conn.execute(sa.select(v).where(v.c.name == name).order_by(v.c.version.desc()).limit(1))
            .mappings()
            .first()
        )
        aliases = self._aliases(conn, name)
        return {
            "name": name,
            "project": row["project"],
            "description": row["description"],
            "tags": dict(s.load_json(row["tags"]) or {}),
            "author": row["author"],
            "aliases": aliases,
            "latest_version": None
            if latest is None
            else self._version_dict(
                latest, [k for k, n in aliases.items() if n == int(latest["version"])]
            ),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def _model_row(self, conn: Connection, name: str) -> Any:
        m = s.registered_models
        row = conn.execute(sa.select(m).where(m.c.name == name)).mappings().first()
        if row is None:
            raise model_missing(name)
        return row

    # -- registered models -------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        *,
        project: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        author: str | None = None,
    ) -> dict[str, Any]:
        """Create model ``name`` (UsageError when it exists)."""
        now = time.time()
        m = s.registered_models
        with self._tx() as conn:
            if conn.execute(sa.select(m.c.name).where(m.c.name == name)).first() is not None:
                raise UsageError(f"Registered Model (name={name}) already exists.")
            conn.execute(
                sa.insert(m).values(
                    name=name,
                    project=project,
                    description=description,
                    tags=dict(tags or {}),
                    author=author,
                    created_at=now,
                    updated_at=now,
                )
            )
            return self._model_dict(conn, self._model_row(conn, name))

    def registered_model(self, name: str) -> dict[str, Any]:
        with self._read() as conn:
            return self._model_dict(conn, self._model_row(conn, name))

    def registered_models(self, projects: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every registered model (of ``projects`` and unassigned ones, when given), by name."""
        m = s.registered_models
        q = sa.select(m).order_by(m.c.name)
        if projects is not None:
            q = q.where(sa.or_(m.c.project.is_(None), m.c.project.in_(list(projects))))
        with self._read() as conn:
            return [self._model_dict(conn, r) for r in conn.execute(q).mappings().all()]

    def update_registered_model(
        self,
        name: str,
        *,
        new_name: str | None = None,
        description: Any = _KEEP,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Rename, describe or retag a model; a missing tag to delete raises NotFoundError."""
        m, v, a = s.registered_models, s.model_versions, s.model_aliases
        with self._tx() as conn:
            row = self._model_row(conn, name)
            tags = dict(s.load_json(row["tags"]) or {})
            for k in delete_tags:
                if k not in tags:
                    raise NotFoundError(f"No tag with name: {k} in registered model {name}")
                del tags[k]
            tags.update(set_tags or {})
            values: dict[str, Any] = {"tags": tags, "updated_at": time.time()}
            if description is not _KEEP:
                values["description"] = description
            if new_name is not None and new_name != name:
                taken = conn.execute(sa.select(m.c.name).where(m.c.name == new_name)).first()
                if taken is not None:
                    raise UsageError(f"Registered Model (name={new_name}) already exists.")
                values["name"] = new_name
                for t in (v, a):
                    conn.execute(sa.update(t).where(t.c.name == name).values(name=new_name))
            conn.execute(sa.update(m).where(m.c.name == name).values(**values))
            return self._model_dict(conn, self._model_row(conn, new_name or name))

    def delete_registered_model(self, name: str) -> None:
        with self._tx() as conn:
            self._model_row(conn, name)
            for t in (s.model_aliases, s.model_versions, s.registered_models):
                conn.execute(sa.delete(t).where(t.c.name == name))

    # -- versions ------------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        *,
        run_id: str,
        artifact_version_id: str,
        project: str,
        source: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        author: str | None = None,
    ) -> dict[str, Any]:
        """Version N+1 of ``name`` pointing at ``run_id``'s artifact version; the model
        takes the run's ``project`` when it has none yet."""
        m, v = s.registered_models, s.model_versions
        now = time.time()
        with self._tx() as conn:
            row = self._model_row(conn, name)
            if row["project"] is None:
                conn.execute(sa.update(m).where(m.c.name == name).values(project=project))
            top = conn.execute(sa.select(sa.func.max(v.c.version)).where(v.c.name == name)).scalar()
            number = int(top or 0) + 1
            conn.execute(
                sa.insert(v).values(
                    name=name,
                    version=number,
                    run_id=run_id,
                    artifact_version_id=artifact_version_id,
                    source=source,
                    description=description,
                    tags=dict(tags or {}),
                    author=author,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(sa.update(m).where(m.c.name == name).values(updated_at=now))
            return self._version_in(conn, name, number)

    def _version_in(self, conn: Connection, name: str, version: int) -> dict[str, Any]:
        v = s.model_versions
        row = (
            conn.execute(sa.select(v).where(v.c.name == name, v.c.version == int(version)))
            .mappings()
            .first()
        )
        if row is None:
            raise version_missing(name, version)
        aliases = [k for k, n in self._aliases(conn, name).items() if n == int(version)]
        return self._version_dict(row, aliases)

    def model_version(self, name: str, version: int) -> dict[str, Any]:
        with self._read() as conn:
            return self._version_in(conn, name, version)

    def model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        a = s.model_aliases
        with self._read() as conn:
            self._model_row(conn, name)
            number = conn.execute(
                sa.select(a.c.version).where(a.c.name == name, a.c.alias == alias)
            ).scalar()
            if number is None:
                raise NotFoundError(f"Registered model alias {alias} not found.")
            return self._version_in(conn, name, int(number))

    def model_versions(
        self, name: str | None = None, *, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Versions (of one model, or of one run), by name then number."""
        v = s.model_versions
        q = sa.select(v).order_by(v.c.name, v.c.version)
        if name is not None:
            q = q.where(v.c.name == name)
        if run_id is not None:
            q = q.where(v.c.run_id == run_id)
        with self._read() as conn:
            rows = conn.execute(q).mappings().all()
            aliases: dict[str, dict[str, int]] = {}
            out = []
            for r in rows:
                n = str(r["name"])
                if n not in aliases:
                    aliases[n] = self._aliases(conn, n)
                mine = [k for k, x in aliases[n].items() if x == int(r["version"])]
                out.append(self._version_dict(r, mine))
        return out

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: Any = _KEEP,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        v = s.model_versions
        with self._tx() as conn:
            cur = self._version_in(conn, name, version)
            tags = dict(cur["tags"])
            for k in delete_tags:
                if k not in tags:
                    raise NotFoundError(
                        f"No tag with name: {k} in model version (name={name}, version={version})"
                    )
                del tags[k]
            tags.update(set_tags or {})
            values: dict[str, Any] = {"tags": tags, "updated_at": time.time()}
            if description is not _KEEP:
                values["description"] = description
            conn.execute(
                sa.update(v).where(v.c.name == name, v.c.version == int(version)).values(**values)
            )
            return self._version_in(conn, name, version)

    def delete_model_version(self, name: str, version: int) -> None:
        v, a = s.model_versions, s.model_aliases
        with self._tx() as conn:
            self._version_in(conn, name, version)
            conn.execute(sa.delete(a).where(a.c.name == name, a.c.version == int(version)))
            conn.execute(sa.delete(v).where(v.c.name == name, v.c.version == int(version)))

    # -- aliases: edit events in the audit chain ---------------------------------------------

    def model_alias_events(self, name: str) -> list[dict[str, Any]]:
        """Every alias move of model ``name``, oldest first: the edit events (field
        ``registry.<name>@<alias>``) with their author, and where each sits in the audit
        chain (``audit_seq``; None when the run it was recorded on is not chained)."""
        e, a = s.run_edits, s.audit_log
        prefix = f"registry.{name}@"
        q = (
            sa.select(e, a.c.seq, a.c.project, a.c.entry_sha256)
            .select_from(e.outerjoin(a, a.c.edit_id == e.c.id))
            .where(e.c.field.startswith(prefix, autoescape=True))
            .order_by(e.c.at, e.c.id)
        )
        with self._read() as conn:
            self._model_row(conn, name)
            rows = conn.execute(q).mappings().all()
        out = []
        for r in rows:
            old, new = s.load_json(r["old"]) or {}, s.load_json(r["new"]) or {}
            out.append(
                {
                    "alias": str(r["field"])[len(prefix) :],
                    "old_version": old.get("v"),
                    "new_version": new.get("v"),
                    "run_id": r["run_id"],
                    "author": r["author"],
                    "at": r["at"],
                    "edit_id": r["id"],
                    "audit_seq": None if r["seq"] is None else int(r["seq"]),
                    "audit_project": r["project"],
                    "entry_sha256": r["entry_sha256"],
                }
            )
        return out

    def set_model_alias(
        self, name: str, alias: str, version: int | None, *, actor: str | None = None
    ) -> dict[str, Any]:
        """Point ``alias`` at ``version`` (None: delete it). The move is an edit event
        (field ``registry.<name>@<alias>``, old and new version) of the run the alias points
        at afterwards (or before, for a delete), chained in the same transaction."""
        a = s.model_aliases
        with self._tx() as conn:
            self._model_row(conn, name)
            old = conn.execute(
                sa.select(a.c.version).where(a.c.name == name, a.c.alias == alias)
            ).scalar()
            if version is None:
                if old is None:
                    raise NotFoundError(f"Registered model alias {alias} not found.")
                target = self._version_in(conn, name, int(old))
                conn.execute(sa.delete(a).where(a.c.name == name, a.c.alias == alias))
            else:
                target = self._version_in(conn, name, int(version))
                if old is None:
                    conn.execute(sa.insert(a).values(name=name, alias=alias, version=int(version)))
                else:
                    conn.execute(
                        sa.update(a)
                        .where(a.c.name == name, a.c.alias == alias)
                        .values(version=int(version))
                    )
            if old != version:
                self._alias_event(conn, target["run_id"], name, alias, old, version, actor)
            return target

    def _alias_event(
        self,
        conn: Connection,
        run_id: str,
        name: str,
        alias: str,
        old: Any,
        new: Any,
        actor: str | None,
    ) -> None:
        edit_id = uuid.uuid4().hex
        conn.execute(
            sa.insert(s.run_edits).values(
                id=edit_id,
                run_id=run_id,
                field=f"registry.{name}@{alias}"[:260],
                old={"v": None if old is None else int(old)},
                new={"v": None if new is None else int(new)},
                author=actor,
                at=time.time(),
            )
        )
        row = conn.execute(sa.select(s.runs.c.project).where(s.runs.c.id == run_id)).first()
        sealed = conn.execute(
            sa.select(s.audit_log.c.seq).where(s.audit_log.c.run_id == run_id).limit(1)
        ).first()
        if row is not None and sealed is not None:
            self._append_entry(conn, str(row[0]), run_id, "edit", edit_id)
