"""The write core's rules for the model registry (mixed into :class:`WriteCore`).

- **visibility**: a model belongs to the project of its first version; a model of a
  project the actor may not read answers exactly like a missing one;
- **registering**: a project's writers create models and versions; a version points at a
  *finished* run the actor may write to (its project's write role) and at one of that
  run's own content-addressed artifact versions, never at a copy;
- **aliases, descriptions, tags**: the write role on the model's project; an alias move
  is stored with the actor's user as the edit event's author (store/_registry_sql.py);
- **deleting and renaming** a model changes every colleague's ``models:/`` references,
  so it takes the project's ``admin`` role (as an experiment's lifecycle does);
- names within the limits of ``_limits.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._exceptions import ArtifactNotFoundError, AuthError, NotFoundError, UsageError

if TYPE_CHECKING:
    from ._base import ServerStore
    from ._core import Actor

__all__ = ["RegistryRules", "model_missing", "version_missing"]


def model_missing(name: str) -> NotFoundError:
    """What a missing (or unreadable) model answers, in MLflow's words."""
    return NotFoundError(f"Registered Model with name={name} not found")


def version_missing(name: str, version: Any) -> NotFoundError:
    return NotFoundError(f"Model Version (name={name}, version={version}) not found")


def _check_name(what: str, name: str) -> None:
    from .._limits import check_name

    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"{what} must be a non-empty string")
    check_name(what, name)


def _check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    from .._limits import check_json

    out = {str(k): "" if v is None else str(v) for k, v in tags.items()}
    for k in out:
        _check_name("tag key", k)
    check_json("tags", out)
    return out


class RegistryRules:
    """``WriteCore``'s registry methods (the rules of the module docstring)."""

    if TYPE_CHECKING:
        store: ServerStore

        def resolve(self, actor: Actor, ref: str, role: str = "read") -> tuple[str, str]: ...

    # -- reading ---------------------------------------------------------------------

    def readable_model(self, actor: Actor, name: str) -> dict[str, Any]:
        model = self.store.registered_model(name)
        project = model["project"]
        if project is not None and not actor.can("read", project):
            raise model_missing(name)
        return model

    def readable_models(self, actor: Actor, name: str | None = None) -> list[dict[str, Any]]:
        """The models the actor reads (or model ``name``), as every door shows them: a
        latest version whose run the actor may not read shows no run (see
        :meth:`readable_versions`)."""
        if name is not None:
            found = [self.readable_model(actor, name)]
        else:
            found = self.store.registered_models(actor.readable_projects())
        out = []
        for m in found:
            latest = m.get("latest_version")
            if latest is not None:
                m = {**m, "latest_version": self._with_runs(actor, [latest])[0][0]}
            out.append(m)
        return out

    def _versions(
        self, actor: Actor, name: str | None = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The versions of the models the actor reads, with their runs as stored."""
        if name is not None:
            self.readable_model(actor, name)
        readable = actor.readable_projects()
        found = self.store.model_versions(name, run_id=run_id)
        if readable is None:
            return found
        allowed = {m["name"] for m in self.store.registered_models(readable)}
        return [v for v in found if v["name"] in allowed]

    def readable_versions(
        self, actor: Actor, name: str | None = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The versions of the models the actor reads (of ``name``, or pointing at
        ``run_id``). One rule for every door (native API, MLflow API, dashboard, CLI): a
        version whose run is in a project the actor may not read (an admin registered it
        across projects) shows, but its ``run_id``, ``source`` and ``artifact_version_id``
        are None, as if missing."""
        return [v for v, _ in self._with_runs(actor, self._versions(actor, name, run_id))]

    def readable_version(self, actor: Actor, name: str, version: int | str) -> dict[str, Any]:
        """Version ``version`` (a number) or ``@alias`` of a model the actor reads (its run
        hidden as in :meth:`readable_versions`)."""
        self.readable_model(actor, name)
        if isinstance(version, str) and version.startswith("@"):
            found = self.store.model_version_by_alias(name, version[1:])
        else:
            found = self.store.model_version(name, int(version))
        return self._with_runs(actor, [found])[0][0]

    def readable_artifact_version(self, actor: Actor, name: str, version: int | str) -> str:
        """The artifact version id behind a model version the actor may download; one
        whose run the actor may not read answers like a missing version."""
        v = self.readable_version(actor, name, version)
        if not v.get("artifact_version_id"):
            raise version_missing(name, version)
        return str(v["artifact_version_id"])

    def shown_models(self, actor: Actor, name: str | None = None) -> list[dict[str, Any]]:
        """Kept for callers of the earlier name: :meth:`readable_models`."""
        return self.readable_models(actor, name)

    def versions_of_run(self, actor: Actor, run_ref: str | None = None) -> list[dict[str, Any]]:
        """The versions that point at run ``run_ref`` (every readable version without one);
        a run the actor may not read answers as a missing one."""
        if run_ref is None:
            return self.readable_versions(actor)
        run_id, _ = self.resolve(actor, run_ref, "read")
        return self.readable_versions(actor, run_id=run_id)

    def _with_runs(
        self, actor: Actor, versions: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], str | None]]:
        """Each version with its run's id, or None when the actor may not read the run (a
        version an admin registered from another project): then the version's own
        ``run_id``, ``source`` and ``artifact_version_id`` are None too, as if missing."""
        if actor.readable_projects() is None:  # reads every project: nothing to hide
            return [(v, str(v["run_id"]) if v.get("run_id") else None) for v in versions]
        known: dict[str, str | None] = {}
        out: list[tuple[dict[str, Any], str | None]] = []
        for v in versions:
            ref = str(v["run_id"])
            if ref not in known:
                try:
                    known[ref] = self.resolve(actor, ref, "read")[0]
                except NotFoundError:
                    known[ref] = None
            if known[ref] is None:
                v = {**v, "run_id": None, "source": None, "artifact_version_id": None}
            out.append((v, known[ref]))
        return out

    def described_versions(self, actor: Actor, name: str) -> list[dict[str, Any]]:
        """The versions of ``name``, each with ``run`` (its source run's headline facts:
        name, status, summary, amendments, sealed record) and ``artifact`` (the
        content-addressed version: name, digest, files). Both are None when the run's
        project is one the actor may not read: it looks missing, as everywhere."""
        out = []
        for v, run_id in self._with_runs(actor, self._versions(actor, name)):
            v = dict(v)
            v["run"], v["artifact"] = None, None
            if run_id is None:
                out.append(v)
                continue
            try:
                r = self.store.get_run(run_id)
            except NotFoundError:
                out.append(v)
                continue
            v["run"] = {
                "id": r["id"],
                "name": r["name"],
                "project": r["project"],
                "status": r["status"],
                "author": r.get("author"),
                "ended_at": r.get("ended_at"),
                "summary": r.get("summary") or {},
                "amended": r.get("amended") or {},
                "record_sha256": r.get("record_sha256"),
                "sealed": bool(r.get("record_sha256")),
            }
            try:
                av = self.store.get_artifact_version_by_id(v["artifact_version_id"])
            except NotFoundError:
                av = None
            if av is not None:
                files = list(av.get("files") or [])
                v["artifact"] = {
                    "id": av["id"],
                    "project": av["project"],
                    "name": av["name"],
                    "version": av["version"],
                    "kind": av.get("kind"),
                    "sha256": av["sha256"],
                    "size": av["size"],
                    "file_count": len(files),
                    "files": files[:100],
                }
            out.append(v)
        return out

    def model_alias_history(self, actor: Actor, name: str) -> list[dict[str, Any]]:
        """Every alias move of a model the actor reads, oldest first: who moved which
        alias from which version to which, and its place in the audit chain."""
        self.readable_model(actor, name)
        events = self.store.model_alias_events(name)
        if actor.readable_projects() is None:
            return events
        readable: dict[str, bool] = {}
        for e in events:
            run_id = str(e["run_id"])
            if run_id not in readable:
                try:
                    self.resolve(actor, run_id, "read")
                    readable[run_id] = True
                except NotFoundError:
                    readable[run_id] = False
            if not readable[run_id]:
                # a version's run in a project the actor cannot read: the move shows, the
                # run and its chain entry do not (they look missing, as everywhere)
                e.update(run_id=None, edit_id=None, audit_seq=None, audit_project=None)
                e["entry_sha256"] = None
        return events

    # -- writing -----------------------------------------------------------------------

    def _writable_model(self, actor: Actor, name: str, role: str = "write") -> dict[str, Any]:
        model = self.readable_model(actor, name)
        project = model["project"]
        if project is not None:
            actor.require(role, project)
        elif actor.readable_projects() is not None and not any(
            actor.can(role, p) for p in actor.roles
        ):
            raise AuthError(f"user {actor.user!r} needs the {role} role on a project", 403)
        return model

    def create_registered_model(
        self,
        actor: Actor,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A new, empty model (it takes the project of its first version)."""
        _check_name("registered model name", name)
        if not any(actor.can("write", p) for p in actor.roles):
            raise AuthError(f"user {actor.user!r} needs the write role on a project", 403)
        return self.store.create_registered_model(
            name, description=description, tags=_check_tags(tags or {}), author=actor.user
        )

    def update_registered_model(
        self,
        actor: Actor,
        name: str,
        *,
        new_name: str | None = None,
        description: Any = ...,
        set_tags: Mapping[str, Any] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        self._writable_model(actor, name, "admin" if new_name else "write")
        if new_name is not None:
            _check_name("registered model name", new_name)
        kwargs: dict[str, Any] = {
            "new_name": new_name,
            "set_tags": _check_tags(set_tags or {}),
            "delete_tags": list(delete_tags),
        }
        if description is not ...:
            kwargs["description"] = description
        return self.store.update_registered_model(name, **kwargs)

    def delete_registered_model(self, actor: Actor, name: str) -> None:
        self._writable_model(actor, name, "admin")
        self.store.delete_registered_model(name)

    def create_model_version(
        self,
        actor: Actor,
        name: str,
        run_ref: str,
        *,
        artifact: str | None = None,
        artifact_version_id: str | None = None,
        source: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Version N+1 of ``name``: the finished run ``run_ref`` and its artifact (a version
        id, else the newest version of the artifact it produced named ``artifact``)."""
        model = self._writable_model(actor, name)
        run_id, project = self.resolve(actor, run_ref, "write")
        if model["project"] is not None and model["project"] != project:
            actor.require("write", model["project"])
        run = self.store.get_run(run_id)
        if run.get("status") != "finished":
            raise UsageError(
                f"run {run_id[:8]} is {run.get('status')}: a model version points at a "
                "finished run only (its record is sealed, so the model stays the one "
                "behind the run's numbers)"
            )
        produced = self.store.list_run_artifacts(run_id)["produced"]
        if artifact_version_id is not None:
            chosen = [v for v in produced if v["id"] == artifact_version_id]
        else:
            want = artifact or ""
            chosen = [
                v for v in produced if v["name"] == want or f"{v['name']}:v{v['version']}" == want
            ]
            chosen.sort(key=lambda v: int(v["version"]))
        if not chosen:
            raise ArtifactNotFoundError(
                artifact or artifact_version_id or "", f"run {run_id[:8]} produced no such artifact"
            )
        av = chosen[-1]
        return self.store.create_model_version(
            name,
            run_id=run_id,
            artifact_version_id=str(av["id"]),
            project=project,
            source=source or f"runs:/{run_id}/{av['name']}",
            description=description,
            tags=_check_tags(tags or {}),
            author=actor.user,
        )

    def update_model_version(
        self,
        actor: Actor,
        name: str,
        version: int,
        *,
        description: Any = ...,
        set_tags: Mapping[str, Any] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        self._writable_model(actor, name)
        kwargs: dict[str, Any] = {
            "set_tags": _check_tags(set_tags or {}),
            "delete_tags": list(delete_tags),
        }
        if description is not ...:
            kwargs["description"] = description
        updated = self.store.update_model_version(name, version, **kwargs)
        return self._with_runs(actor, [updated])[0][0]

    def delete_model_version(self, actor: Actor, name: str, version: int) -> None:
        self._writable_model(actor, name, "admin")
        self.store.delete_model_version(name, version)

    def set_model_alias(
        self, actor: Actor, name: str, alias: str, version: int | None
    ) -> dict[str, Any]:
        """Move (or, with None, delete) ``alias``: an edit event by ``actor``."""
        self._writable_model(actor, name)
        _check_name("alias", alias)
        if alias.lower() == "latest" or (alias[:1] in "vV" and alias[1:].isdigit()):
            raise UsageError(f"alias {alias!r} is reserved (latest, v<number>)")
        moved = self.store.set_model_alias(name, alias, version, actor=actor.user)
        return self._with_runs(actor, [moved])[0][0] if "run_id" in moved else moved
