"""Artifact metadata in the SQL store: versions, manifests, aliases and lineage.

Mixed into :class:`~labledger.store.sql.SqlStore`. Only metadata lives here; the bytes
are content-addressed blobs in a :class:`~labledger.artifacts.BlobStore`.

Version dicts (what every method returns) have the fields::

    id, project, name, version (int), kind, run_id, sha256 (of the manifest), size,
    file_count, files [{path, sha256, size}], uri ("project/name:vN"), aliases [...],
    storage (the blob store URI it was written to, or None), metadata {...}, created_at
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import ArtifactNotFoundError
from . import _schema as s

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["ArtifactSqlMixin"]


class ArtifactSqlMixin:
    """Artifact metadata methods of the SQL store (see the module docstring for the dict shape)."""

    if TYPE_CHECKING:
        dialect: str

        def _tx(self) -> contextlib.AbstractContextManager[Connection]: ...

        def _read(self) -> contextlib.AbstractContextManager[Connection]: ...

        def upsert(self, table: sa.Table) -> Any: ...

        def _reseal(self, conn: Connection, run_id: str, kind: str) -> None: ...

    # -- writing ---------------------------------------------------------------------

    def create_artifact_version(
        self,
        project: str,
        name: str,
        kind: str,
        run_id: str | None,
        manifest: Sequence[dict[str, Any]],
        metadata: dict[str, Any] | None = None,
        *,
        storage: str | None = None,
        late: bool = False,
    ) -> dict[str, Any]:
        """Register the next version (v0, v1, ...) of ``project/name`` and move ``latest`` to it.

        A run that has ended takes no new version (RunFinishedError), except ``late=True``:
        an artifact logged before the end and uploaded from a client's spool by ``labledger
        sync``; it chains a ``late`` audit entry (docs/trust.md).

        ``manifest`` is a list of ``{path, sha256, size}``; ``metadata`` may say
        ``{"type": "file"|"directory"}`` plus anything JSON. The blobs must already be
        in the blob store: a version is only registered once its bytes are complete.
        """
        from ._artifact_paths import validate_kind, validate_name
        from ._manifest import check_manifest, manifest_digest

        validate_name(project, "project")
        validate_name(name)
        validate_kind(kind)
        files = check_manifest(manifest)
        meta = dict(metadata or {})
        root_type = str(meta.setdefault("type", "directory" if len(files) != 1 else "file"))
        digest = manifest_digest(root_type, files)
        size = sum(f["size"] for f in files)
        vid = uuid.uuid4().hex
        for attempt in range(20):
            now = time.time()
            try:
                with self._tx() as conn:
                    if run_id is not None and not late:
                        _refuse_sealed(conn, run_id, "artifacts")
                    t = s.artifact_versions
                    cur = conn.execute(
                        sa.select(sa.func.max(t.c.version)).where(
                            t.c.project == project, t.c.name == name
                        )
                    ).scalar_one_or_none()
                    number = 0 if cur is None else int(cur) + 1
                    conn.execute(
                        sa.insert(t).values(
                            id=vid,
                            project=project,
                            name=name,
                            version=number,
                            kind=kind,
                            run_id=run_id,
                            sha256=digest,
                            size=size,
                            file_count=len(files),
                            storage=storage,
                            meta=meta,
                            created_at=now,
                        )
                    )
                    if files:
                        conn.execute(
                            sa.insert(s.artifact_files), [{"version_id": vid, **f} for f in files]
                        )
                    self._move_alias(conn, project, name, "latest", vid, now)
                    if run_id is not None:
                        self._reseal(conn, run_id, "late")  # an imported run's record grew
                    return self._version_dicts(conn, [self._version_row(conn, vid)])[0]
            except sa.exc.IntegrityError:
                # another writer took this version number (PostgreSQL): take the next one
                if attempt == 19:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _move_alias(
        self, conn: Connection, project: str, name: str, alias: str, version_id: str, now: float
    ) -> None:
        ins = self.upsert(s.artifact_aliases).values(
            project=project, name=name, alias=alias, version_id=version_id, updated_at=now
        )
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=["project", "name", "alias"],
                set_={"version_id": version_id, "updated_at": now},
            )
        )

    def set_artifact_alias(
        self, project: str, name: str, version: int, alias: str
    ) -> dict[str, Any]:
        """Point ``alias`` (e.g. ``best``, ``production``) at version ``version``; return that version."""
        from ._artifact_paths import validate_alias, validate_name

        validate_name(name)
        validate_alias(alias)
        t = s.artifact_versions
        with self._tx() as conn:
            vid = conn.execute(
                sa.select(t.c.id).where(
                    t.c.project == project, t.c.name == name, t.c.version == int(version)
                )
            ).scalar_one_or_none()
            if vid is None:
                raise ArtifactNotFoundError(f"{project}/{name}:v{version}")
            self._move_alias(conn, project, name, alias, vid, time.time())
            return self._version_dicts(conn, [self._version_row(conn, vid)])[0]

    def record_artifact_use(self, run_id: str, version_id: str) -> None:
        """Record that run ``run_id`` consumed artifact version ``version_id`` (idempotent)."""
        with self._tx() as conn:
            _refuse_sealed(conn, run_id, "used artifacts")
            exists = conn.execute(
                sa.select(s.artifact_versions.c.id).where(s.artifact_versions.c.id == version_id)
            ).first()
            if exists is None:
                raise ArtifactNotFoundError(version_id, "no such version id")
            ins = self.upsert(s.artifact_uses).values(
                run_id=run_id, version_id=version_id, used_at=time.time()
            )
            conn.execute(ins.on_conflict_do_nothing(index_elements=["run_id", "version_id"]))
            self._reseal(conn, run_id, "late")

    def delete_artifact_version(self, project: str, ref: str) -> dict[str, Any]:
        """Forget one version (its aliases and use records go with it); its blobs become garbage for gc.

        Version numbers are never reused; ``latest`` moves back to the newest remaining version.
        """
        version = self.get_artifact_version(project, ref)
        vid = version["id"]
        with self._tx() as conn:
            # runs whose sealed record names this version get a new record ("delete" entry)
            touched = {version.get("run_id")} | {
                str(r[0])
                for r in conn.execute(
                    sa.select(s.artifact_uses.c.run_id).where(s.artifact_uses.c.version_id == vid)
                )
            }
            conn.execute(sa.delete(s.artifact_files).where(s.artifact_files.c.version_id == vid))
            conn.execute(
                sa.delete(s.artifact_aliases).where(s.artifact_aliases.c.version_id == vid)
            )
            conn.execute(sa.delete(s.artifact_uses).where(s.artifact_uses.c.version_id == vid))
            conn.execute(sa.delete(s.artifact_versions).where(s.artifact_versions.c.id == vid))
            t = s.artifact_versions
            newest = conn.execute(
                sa.select(t.c.id)
                .where(t.c.project == version["project"], t.c.name == version["name"])
                .order_by(t.c.version.desc())
                .limit(1)
            ).scalar_one_or_none()
            if newest is not None:
                self._move_alias(
                    conn, version["project"], version["name"], "latest", newest, time.time()
                )
            for run_id in sorted(r for r in touched if r):
                self._reseal(conn, run_id, "delete")
        return version

    # -- reading ---------------------------------------------------------------------

    def get_artifact_version(self, project: str, ref: str) -> dict[str, Any]:
        """Resolve ``name``, ``name:v3``, ``name:alias`` or ``project/name:alias`` (the project in
        the reference wins over ``project``); ArtifactNotFoundError when nothing matches."""
        from ._artifact_paths import parse_ref

        parts = parse_ref(ref)
        proj = parts.project or project
        t = s.artifact_versions
        with self._read() as conn:
            if parts.version is not None:
                row = (
                    conn.execute(
                        sa.select(t).where(
                            t.c.project == proj,
                            t.c.name == parts.name,
                            t.c.version == parts.version,
                        )
                    )
                    .mappings()
                    .first()
                )
            else:
                a = s.artifact_aliases
                row = (
                    conn.execute(
                        sa.select(t)
                        .join(a, a.c.version_id == t.c.id)
                        .where(
                            a.c.project == proj, a.c.name == parts.name, a.c.alias == parts.alias
                        )
                    )
                    .mappings()
                    .first()
                )
            if row is None:
                known = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(t)
                    .where(t.c.project == proj, t.c.name == parts.name)
                ).scalar_one()
                detail = (
                    f"artifact {parts.name!r} has no such version or alias"
                    if known
                    else f"project {proj!r} has no artifact named {parts.name!r}"
                )
                if not known and not parts.project:
                    # the project came from the folder's name: name the projects that have it
                    elsewhere = (
                        conn.execute(
                            sa.select(t.c.project)
                            .where(t.c.name == parts.name, t.c.project != proj)
                            .distinct()
                            .order_by(t.c.project)
                            .limit(3)
                        )
                        .scalars()
                        .all()
                    )
                    if elsewhere:
                        detail += (
                            "; did you mean " + " or ".join(f"{p}/{ref}" for p in elsewhere) + "?"
                        )
                raise ArtifactNotFoundError(ref if parts.project else f"{proj}/{ref}", detail)
            return self._version_dicts(conn, [row])[0]

    def get_artifact_version_by_id(self, version_id: str) -> dict[str, Any]:
        with self._read() as conn:
            row = self._version_row(conn, version_id)
            return self._version_dicts(conn, [row])[0]

    def list_artifact_versions(
        self, project: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Versions, newest first, optionally of one project and/or name."""
        t = s.artifact_versions
        q = sa.select(t)
        if project is not None:
            q = q.where(t.c.project == project)
        if name is not None:
            q = q.where(t.c.name == name)
        q = q.order_by(t.c.project, t.c.name, t.c.version.desc())
        with self._read() as conn:
            return self._version_dicts(conn, list(conn.execute(q).mappings()))

    def list_run_artifacts(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """``{"produced": [versions this run logged], "consumed": [versions it used, with used_at]}``."""
        t = s.artifact_versions
        u = s.artifact_uses
        with self._read() as conn:
            produced = list(
                conn.execute(
                    sa.select(t)
                    .where(t.c.run_id == run_id)
                    .order_by(t.c.created_at, t.c.name, t.c.version)
                ).mappings()
            )
            used = list(
                conn.execute(
                    sa.select(t, u.c.used_at)
                    .join(u, u.c.version_id == t.c.id)
                    .where(u.c.run_id == run_id)
                    .order_by(u.c.used_at)
                ).mappings()
            )
            out = {
                "produced": self._version_dicts(conn, produced),
                "consumed": self._version_dicts(conn, used),
            }
        for d, r in zip(out["consumed"], used, strict=True):
            d["used_at"] = r["used_at"]
        return out

    def artifact_consumers(self, version_id: str) -> list[str]:
        """Ids of the runs that used version ``version_id``, in order of use."""
        u = s.artifact_uses
        with self._read() as conn:
            return [
                r[0]
                for r in conn.execute(
                    sa.select(u.c.run_id)
                    .where(u.c.version_id == version_id)
                    .order_by(u.c.used_at, u.c.run_id)
                )
            ]

    def referenced_blob_shas(self) -> set[str]:
        """Every blob sha256 that some artifact version or rich result (image, table, ...)
        still references (what gc must keep)."""
        f = s.artifact_files
        with self._read() as conn:
            files = {r[0] for r in conn.execute(sa.select(f.c.sha256).distinct())}
            media = {r[0] for r in conn.execute(sa.select(s.media.c.sha256).distinct())}
        return files | media

    # -- helpers ---------------------------------------------------------------------

    def _version_row(self, conn: Connection, version_id: str) -> Any:
        row = (
            conn.execute(
                sa.select(s.artifact_versions).where(s.artifact_versions.c.id == version_id)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise ArtifactNotFoundError(version_id, "no such version id")
        return row

    def _version_dicts(self, conn: Connection, rows: Iterable[Any]) -> list[dict[str, Any]]:
        rows = list(rows)
        ids = [r["id"] for r in rows]
        files: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        aliases: dict[str, list[str]] = {i: [] for i in ids}
        f, a = s.artifact_files, s.artifact_aliases
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            for r in conn.execute(
                sa.select(f.c.version_id, f.c.path, f.c.sha256, f.c.size)
                .where(f.c.version_id.in_(part))
                .order_by(f.c.version_id, f.c.path)
            ):
                files[r[0]].append({"path": r[1], "sha256": r[2], "size": int(r[3])})
            for ar in conn.execute(
                sa.select(a.c.version_id, a.c.alias).where(a.c.version_id.in_(part))
            ):
                aliases[ar[0]].append(ar[1])
        out = []
        for r in rows:
            vid = r["id"]
            out.append(
                {
                    "id": vid,
                    "project": r["project"],
                    "name": r["name"],
                    "version": int(r["version"]),
                    "kind": r["kind"],
                    "run_id": r["run_id"],
                    "sha256": r["sha256"],
                    "size": int(r["size"]),
                    "file_count": int(r["file_count"]),
                    "files": files[vid],
                    "uri": f"{r['project']}/{r['name']}:v{int(r['version'])}",
                    "aliases": sorted(aliases[vid], key=lambda x: (x != "latest", x)),
                    "storage": r["storage"],
                    "metadata": s.load_json(r["meta"]) or {},
                    "created_at": r["created_at"],
                }
            )
        return out


def _refuse_sealed(conn: Connection, run_id: str, what: str) -> None:
    """RunFinishedError when ``run_id`` has ended: its artifacts are part of its sealed record."""
    from .._exceptions import RunFinishedError
    from ._audit_sql import SEALED_STATUSES

    status = conn.execute(sa.select(s.runs.c.status).where(s.runs.c.id == run_id)).scalar()
    imported = (
        conn.execute(
            sa.select(s.audit_log.c.kind)
            .where(s.audit_log.c.run_id == run_id)
            .order_by(s.audit_log.c.seq)
            .limit(1)
        ).scalar()
        == "import"
    )
    if status in SEALED_STATUSES and not imported:
        raise RunFinishedError(
            run_id, str(status), f"its {what} cannot change; log them to a new run"
        )
