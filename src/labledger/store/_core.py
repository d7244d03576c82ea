"""One door for every write: the caller's identity and every rule about runs, in one place.

Every write that does not come from the training process's own engine goes through
:class:`WriteCore`: the native routes of the server, the MLflow routes, ``labledger
edit``, reproduction verdicts and the importers (the importers and the engine over a
server go through the server's routes, hence through the core there). It receives an
:class:`Actor` (who calls: a user and their roles, or the local user of an embedded
store) and applies:

- **visibility**: a run or project the actor may not read answers exactly like one that
  does not exist (``RunNotFoundError`` / ``NotFoundError``, same message);
- **the author is the identity**: a run created through the core is stored with the
  actor's user as its author, never a client field or tag (an MLflow client's
  ``mlflow.user`` stays a claim, kept in ``env.mlflow.tags``). The embedded engine's
  local actor keeps the author the engine read from git's configuration;
- **ownership**: only the run's author, or an admin of its project, writes to a run
  (runs without an author predate authorship and are open to the project's writers);
  anyone else gets ``AuthError`` 403 ``not_owner``;
- **what a finished run still accepts** is the store's (``write_batch``: notes, tags,
  summary and ``env.mlflow`` become edit events; points, config, environment and status
  raise ``RunFinishedError``); the core hands the store the true actor, so every edit
  event names who made it;
- **the project policy at finish**: a batch that finishes a run missing a requirement
  stores its points and records the run ``failed`` with the reason; a run created
  already ``finished`` without it is refused (``PolicyViolationError``);
- **experiments (projects) through MLflow**: a project's writers create it and its
  runs; deleting, restoring, renaming and retagging the project's experiment changes
  every colleague's view of it, so it takes the project's ``admin`` role;
- **value limits** of ``_limits.py`` on run fields (names, tags, JSON size and depth)
  and on rich results (kind, size, caption);
- **the model registry** (``_registry_core.RegistryRules``): writers register finished
  runs' artifacts, alias moves are edit events by the actor, deleting takes admin.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._exceptions import (
    AuthError,
    NotFoundError,
    PolicyViolationError,
    RunIdTakenError,
    RunNotFoundError,
    UsageError,
)
from ._registry_core import RegistryRules

if TYPE_CHECKING:
    from ._base import Batch, RunRecord, ServerStore

__all__ = [
    "ALL_PROJECTS",
    "REQUIREMENTS",
    "ROLES",
    "Actor",
    "WriteCore",
    "check_requirements",
    "missing_for",
    "refusal_message",
    "role_allows",
]

ROLES = ("read", "write", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}
ALL_PROJECTS = "*"

# policy requirement name -> what a run must carry (as said in messages)
REQUIREMENTS: dict[str, str] = {
    "git": "a git commit (env.git.commit)",
    "seed": "a seed (labledger.init(seed=...) or a seeded framework)",
    "dataset": "a dataset fingerprint (run.log_dataset(path))",
}


def role_allows(have: str | None, need: str) -> bool:
    """Whether role ``have`` includes ``need`` (read < write < admin)."""
    return have is not None and _RANK.get(have, -1) >= _RANK[need]


@dataclass(frozen=True)
class Actor:
    """Who writes or reads: ``user`` and ``roles`` {project: role} (``*``: every project).

    ``Actor.local(user)`` is the embedded store's user: every role everywhere, and the
    run's author is the one the engine recorded (from git's configuration)."""

    user: str
    roles: Mapping[str, str] = field(default_factory=lambda: {ALL_PROJECTS: "admin"})
    local: bool = False

    @classmethod
    def local_user(cls, user: str | None = None) -> Actor:
        return cls(user or "local", {ALL_PROJECTS: "admin"}, local=True)

    def role_on(self, project: str) -> str | None:
        """The strongest role on ``project`` (its own or through ``*``)."""
        own, every = self.roles.get(project), self.roles.get(ALL_PROJECTS)
        if own is None or (every is not None and role_allows(every, own)):
            return every
        return own

    def can(self, role: str, project: str) -> bool:
        return role_allows(self.role_on(project), role)

    def require(self, role: str, project: str) -> None:
        """AuthError 403 unless the actor holds ``role`` on ``project``."""
        if not self.can(role, project):
            raise AuthError(f"user {self.user!r} needs the {role} role on project {project!r}", 403)

    def readable_projects(self) -> list[str] | None:
        """Projects the actor may read; None means every project."""
        if role_allows(self.roles.get(ALL_PROJECTS), "read"):
            return None
        return sorted(p for p, r in self.roles.items() if role_allows(r, "read"))


def check_requirements(require: Sequence[str]) -> list[str]:
    """The requirement names, validated and in a stable order; UsageError for unknown ones."""
    unknown = sorted(set(require) - set(REQUIREMENTS))
    if unknown:
        raise UsageError(
            f"unknown policy requirement(s) {', '.join(unknown)}; known: {', '.join(REQUIREMENTS)}"
        )
    return [r for r in REQUIREMENTS if r in set(require)]


def missing_for(run: Mapping[str, Any], require: Sequence[str]) -> list[str]:
    """The requirements ``run`` (a run record: env, seed, datasets) does not meet."""
    out = []
    env = run.get("env") or {}
    git = env.get("git") if isinstance(env, dict) else None
    if "git" in require and not (isinstance(git, dict) and git.get("commit")):
        out.append("git")
    if "seed" in require and run.get("seed") is None:
        out.append("seed")
    datasets = run.get("datasets") or []
    if "dataset" in require and not any(isinstance(d, dict) and d.get("sha256") for d in datasets):
        out.append("dataset")
    return out


def refusal_message(project: str, missing: Sequence[str]) -> str:
    return f"refused by the policy of project {project!r}: missing " + ", ".join(
        REQUIREMENTS[m] for m in missing
    )


def _check_media(batch: Batch) -> None:
    """The limits of ``_limits.py`` on a batch's rich results: a known kind, a step and
    position in range, the size of the bytes and the caption (LimitExceededError)."""
    from .._exceptions import UsageError
    from .._limits import MAX_MEDIA_PER_STEP, MAX_STEP, check_media
    from .._media import KINDS

    for m in batch.media:
        if m.kind not in KINDS:
            raise UsageError(f"unknown rich-result kind {m.kind!r} (one of {sorted(KINDS)})")
        if not 0 <= m.step <= MAX_STEP or not 0 <= m.seq < MAX_MEDIA_PER_STEP:
            raise UsageError(f"{m.key!r}: step or position out of range")
        check_media(m.key, len(m.data), m.caption, 0, 0)


def _check_limits(fields: Mapping[str, Any]) -> None:
    """The limits of ``_limits.py`` on the run fields a write sets (LimitExceededError)."""
    from .._limits import check_json, check_name, check_notes, check_tags

    if fields.get("name") is not None:
        check_name("run name", str(fields["name"]))
    if fields.get("tags") is not None:
        check_tags(list(fields["tags"]))
    if fields.get("notes") is not None:
        check_notes(fields["notes"])
    for f in ("config", "summary", "env", "datasets"):
        if fields.get(f) is not None:
            check_json(f, fields[f])


class WriteCore(RegistryRules):
    """The rules of the module docstring over one store (thread-safe; one per server)."""

    def __init__(self, store: ServerStore) -> None:
        self.store = store
        # a run's project and author never change (a project rename clears the cache)
        self._owners: dict[str, tuple[str, str | None]] = {}
        self._lock = threading.Lock()

    # -- what the actor may see ---------------------------------------------------------

    def forget(self) -> None:
        """Drop cached run -> (project, author) facts (after a project rename)."""
        with self._lock:
            self._owners.clear()

    def owner_of(self, run_id: str) -> tuple[str, str | None]:
        """``(project, author)`` of a run (cached)."""
        with self._lock:
            hit = self._owners.get(run_id)
        if hit is not None:
            return hit
        found = self.store.run_owner(run_id)
        with self._lock:
            if len(self._owners) > 100_000:
                self._owners.clear()
            self._owners[run_id] = found
        return found

    def resolve(self, actor: Actor, ref: str, role: str = "read") -> tuple[str, str]:
        """``(run_id, project)`` of the run ``ref`` names among the runs ``actor`` may read.

        A run of a project the actor cannot read answers ``RunNotFoundError(ref)``, as a
        missing one does, and an ambiguous prefix lists readable runs only. AuthError 403
        only when the actor reads the run but lacks ``role`` on its project."""
        readable = actor.readable_projects()
        if readable is None:
            with self._lock:
                known = ref in self._owners
            run_id = ref if known else self.store.resolve_run_id(ref)
            project = self.owner_of(run_id)[0]
        else:
            with self._lock:
                hit = self._owners.get(ref)
            if hit is not None and hit[0] in readable:
                run_id, project = ref, hit[0]
            else:
                run_id, project = self.store.resolve_run_among(ref, readable)
        actor.require(role, project)
        return run_id, project

    def readable_run(self, actor: Actor, ref: str) -> RunRecord:
        """The run record of ``ref`` if ``actor`` may read it (else RunNotFoundError)."""
        run_id, _ = self.resolve(actor, ref, "read")
        return self.store.get_run(run_id)

    def readable_project(self, actor: Actor, project: str, missing: NotFoundError) -> None:
        """Raise ``missing`` (what a missing project answers) unless ``actor`` reads ``project``."""
        if not actor.can("read", project):
            raise missing

    # -- who may change what ------------------------------------------------------------

    def owned(self, actor: Actor, ref: str) -> tuple[str, str]:
        """``(run_id, project)`` once ``actor`` may change the run: the write role on its
        project, and being its author or an admin of the project."""
        run_id, project = self.resolve(actor, ref, "write")
        author = self.owner_of(run_id)[1]
        if author is not None and author != actor.user and not actor.can("admin", project):
            raise AuthError(
                f"run {run_id[:8]} belongs to {author!r}: only its author or an admin of "
                f"project {project!r} may change it (you are {actor.user!r})",
                403,
                code="not_owner",
            )
        return run_id, project

    def require_project_admin(self, actor: Actor, project: str) -> None:
        """What deleting, restoring, renaming or retagging a project's experiment takes."""
        actor.require("admin", project)

    # -- the policy ---------------------------------------------------------------------

    def policy(self, project: str) -> list[str]:
        """What runs of ``project`` must carry to finish."""
        return [r for r in self.store.project_policy(project) if r in REQUIREMENTS]

    def set_policy(self, actor: Actor, project: str, require: Sequence[str]) -> list[str]:
        """Set ``project``'s policy (the project's admin only); returns the names kept."""
        actor.require("admin", project)
        names = check_requirements(list(require))
        self.store.set_project_policy(project, names)
        return names

    def apply_policy(self, batch: Batch, project: str) -> dict[str, Any] | None:
        """A batch that finishes its run without what the policy requires: the run is
        recorded failed with the reason instead (its points are kept). Returns what the
        answer says about it (None: nothing refused)."""
        update = batch.run_update
        if update.get("status") != "finished":
            return None
        require = self.policy(project)
        if not require:
            return None
        run = self.store.get_run(batch.run_id)
        env = dict(run.get("env") or {})
        env.update(update.get("env") or {})
        merged = {
            "env": env,
            "seed": update["seed"] if "seed" in update else run.get("seed"),
            "datasets": update["datasets"] if "datasets" in update else run.get("datasets"),
        }
        missing = missing_for(merged, require)
        if not missing:
            return None
        message = refusal_message(project, missing)
        update["status"] = "failed"
        update["error"] = message
        return {"refused": True, "missing": missing, "message": message}

    # -- writes -------------------------------------------------------------------------

    def create_run(self, actor: Actor, record: dict[str, Any]) -> dict[str, Any]:
        """Create a run as ``actor`` (idempotent on its id); returns ``{id, created[, policy]}``.

        The stored author is the actor's user (the local actor keeps the record's). A
        retried create of the same run answers ``created: False``; an id taken in
        another project answers a 409-like UsageError that names no project."""
        project = str(record["project"])
        actor.require("write", project)
        _check_limits(record)
        require = self.policy(project)
        if require and record.get("status") == "finished":
            missing = missing_for(record, require)
            if missing:
                raise PolicyViolationError(project, missing, refusal_message(project, missing))
        record = dict(record)
        if not actor.local:
            record["author"] = actor.user  # never what the client says
        answer: dict[str, Any] = {"id": record["id"], "created": True}
        if require:
            answer["policy"] = {"require": require}
        try:
            self.store.create_run(record)
        except Exception as exc:
            # a retried create (the first answer was lost): fine when it is the same run
            try:
                existing = self.store.run_owner(str(record["id"]))
            except RunNotFoundError:
                raise exc from None
            if existing[0] != project:
                # said without the other project's name: a writer of one project learns
                # nothing about another's runs
                raise RunIdTakenError(str(record["id"])) from None
            answer["created"] = False
        return answer

    def create_runs(self, actor: Actor, records: Sequence[Mapping[str, Any]]) -> int:
        """Create many runs as ``actor`` in one transaction, under the rules of
        :meth:`create_run` for each (write role on its project, the limits, the policy of a
        run recorded finished, the author: the actor's user unless the actor is local).

        Through the store's bulk ``create_runs`` when it has one (SqlStore: a few statements
        per call, the records may carry their whole ``metrics`` series), else one
        :meth:`create_run` of the store at a time. A rule broken by any record fails the
        call before anything is written; with the bulk method an id already taken fails
        it too, all or none (one transaction). Returns the number of runs created."""
        rows: list[dict[str, Any]] = []
        checked: dict[str, list[str]] = {}
        for record in records:
            project = str(record["project"])
            if project not in checked:
                actor.require("write", project)
                checked[project] = self.policy(project)
            _check_limits(record)
            require = checked[project]
            if require and record.get("status") == "finished":
                missing = missing_for(record, require)
                if missing:
                    raise PolicyViolationError(project, missing, refusal_message(project, missing))
            row = dict(record)
            if not actor.local:
                row["author"] = actor.user  # never what the client says
            rows.append(row)
        bulk = getattr(self.store, "create_runs", None)
        if bulk is not None:
            return int(bulk(rows, actor=None if actor.local else actor.user))
        for row in rows:
            self.store.create_run(row)
        return len(rows)

    def write_batch(self, actor: Actor, batch: Batch) -> tuple[bool, dict[str, Any] | None]:
        """Apply ``batch`` as ``actor``: ownership, then the policy, then the store.
        Returns ``(applied, policy answer or None)``."""
        policy = self.check_batch(actor, batch)
        return self.store.write_batch(batch, actor=actor.user), policy

    def check_batch(self, actor: Actor, batch: Batch) -> dict[str, Any] | None:
        """Every rule for ``batch`` short of writing it (ownership, limits, the policy);
        sets ``batch.run_id`` to the full id. Returns the policy answer or None."""
        run_id, project = self.owned(actor, batch.run_id)
        batch.run_id = run_id
        if batch.run_update:
            _check_limits(batch.run_update)
        if batch.media:
            _check_media(batch)
        return self.apply_policy(batch, project)

    def write_batches(self, actor: Actor, batches: Sequence[Batch]) -> list[bool]:
        """Batches already checked by :meth:`check_batch`, in one transaction when the
        store can (``write_batches``), else one by one."""
        many = getattr(self.store, "write_batches", None)
        if many is not None and len(batches) > 1:
            out: list[bool] = many(list(batches), actor=actor.user)
            return out
        return [self.store.write_batch(b, actor=actor.user) for b in batches]

    def edit_run(
        self,
        actor: Actor,
        ref: str,
        *,
        notes: str | None = None,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        summary: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> tuple[str, list[dict[str, Any]]]:
        """Edit notes, tags or explicit summary values as ``actor`` (ownership checked);
        returns ``(run_id, edit events)``, each naming ``actor``. A summary value changed
        after the run ended is an amendment (``reason`` kept with it; store/_amend.py)."""
        run_id, _ = self.owned(actor, ref)
        if notes is not None:
            _check_limits({"notes": notes})
        if add_tags:
            _check_limits({"tags": list(add_tags)})
        edits = self.store.edit_run(
            run_id,
            notes=notes,
            add_tags=add_tags,
            remove_tags=remove_tags,
            summary=summary,
            actor=actor.user,
            reason=reason,
        )
        return run_id, edits

    def add_repro_verdict(self, actor: Actor, verdict: dict[str, Any]) -> str:
        """Store a reproduction verdict: the write role on the original's project, the
        read role on the reproduction's (unreadable runs look missing)."""
        verdict = dict(verdict)
        verdict["original_run_id"] = self.resolve(actor, verdict["original_run_id"], "write")[0]
        if verdict.get("repro_run_id"):
            verdict["repro_run_id"] = self.resolve(actor, verdict["repro_run_id"], "read")[0]
        # the store re-derives it from the two runs (store/_repro_rules.py) and records
        # the actor as the one who reproduced, never a client field
        return self.store.add_repro_verdict(verdict, by=actor.user)
