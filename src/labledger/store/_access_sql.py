"""Who may do what, kept in the store's own database: tokens, roles, project policies.

Mixed into :class:`~labledger.store.sql.SqlStore`; the methods are the ``AccessControl``
role of the Store protocol (``store/_base.py``). The rules that use them live in
:mod:`labledger.store._core`; the server's token registry (``server/tokens.py``) only
makes and checks token texts and calls these methods.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import AmbiguousRunError, NotFoundError, RunNotFoundError
from . import _schema as s

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

__all__ = ["AccessSqlMixin"]

_HEX = re.compile(r"[0-9a-f]{1,32}")


class AccessSqlMixin:
    """Tokens, roles, project policies and run lookups restricted to some projects."""

    if TYPE_CHECKING:

        def _tx(self) -> contextlib.AbstractContextManager[Connection]: ...

        def _read(self) -> contextlib.AbstractContextManager[Connection]: ...

        def upsert(self, table: sa.Table) -> Any: ...

    # -- project policy -----------------------------------------------------------------

    def project_policy(self, project: str) -> list[str]:
        """The requirement names of ``project``'s policy, as stored (empty: none)."""
        with self._read() as conn:
            settings = conn.execute(
                sa.select(s.projects.c.settings).where(s.projects.c.name == project)
            ).scalar_one_or_none()
        settings = s.load_json(settings) or {}
        policy = settings.get("policy") if isinstance(settings, dict) else None
        if not isinstance(policy, dict):
            return []
        return [str(r) for r in policy.get("require", []) if isinstance(r, str)]

    def set_project_policy(self, project: str, require: Sequence[str]) -> None:
        """Store ``project``'s policy (the project is created when new)."""
        with self._tx() as conn:
            cur = conn.execute(
                sa.select(s.projects.c.settings).where(s.projects.c.name == project)
            ).first()
            if cur is None:
                conn.execute(
                    sa.insert(s.projects).values(
                        name=project,
                        created_at=time.time(),
                        settings={"policy": {"require": list(require)}},
                    )
                )
                return
            settings = dict(s.load_json(cur[0]) or {})
            settings["policy"] = {"require": list(require)}
            conn.execute(
                sa.update(s.projects).where(s.projects.c.name == project).values(settings=settings)
            )

    # -- runs as some caller sees them --------------------------------------------------

    def resolve_run_among(self, ref: str, projects: Sequence[str]) -> tuple[str, str]:
        """``(run_id, project)`` of the run ``ref`` names among the runs of ``projects``
        (an id, a name, a unique id prefix); RunNotFoundError and AmbiguousRunError as
        ``resolve_run_id``, with only those runs counted."""
        runs = s.runs
        ref = ref.strip()
        low = ref.lower()
        hexa = _HEX.fullmatch(low) is not None
        base = sa.select(runs.c.id, runs.c.project).where(runs.c.project.in_(list(projects)))
        with self._read() as conn:
            found: list[Any] = []
            if hexa and len(low) == 32:
                found = list(conn.execute(base.where(runs.c.id == low)))
            if not found:
                found = list(conn.execute(base.where(runs.c.name == ref).limit(6)))
            if not found and hexa:
                found = list(conn.execute(base.where(runs.c.id.like(low + "%")).limit(6)))
        if len(found) > 1:
            raise AmbiguousRunError(ref, [str(r[0]) for r in found])
        if not found:
            raise RunNotFoundError(ref)
        return str(found[0][0]), str(found[0][1])

    def run_owner(self, run_id: str) -> tuple[str, str | None]:
        """``(project, author)`` of one run (RunNotFoundError when there is none)."""
        r = s.runs
        with self._read() as conn:
            row = conn.execute(sa.select(r.c.project, r.c.author).where(r.c.id == run_id)).first()
        if row is None:
            raise RunNotFoundError(run_id)
        return str(row[0]), None if row[1] is None else str(row[1])

    # -- tokens and roles ---------------------------------------------------------------

    def tokens_exist(self) -> bool:
        """Whether any token was ever made (revoked ones count)."""
        with self._read() as conn:
            return conn.execute(sa.select(s.api_tokens.c.id).limit(1)).first() is not None

    def token_identity(self, token_sha256: str) -> tuple[str, str, dict[str, str]] | None:
        """``(token_id, user, {project: role})`` of an unrevoked token, else None."""
        t, r = s.api_tokens, s.project_roles
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.c.id, t.c.user).where(
                    t.c.token_sha256 == token_sha256, t.c.revoked_at.is_(None)
                )
            ).first()
            if row is None:
                return None
            roles = {
                str(p): str(role)
                for p, role in conn.execute(
                    sa.select(r.c.project, r.c.role).where(r.c.user == row.user)
                )
            }
        return str(row.id), str(row.user), roles

    def add_token(
        self,
        token_id: str,
        user: str,
        token_sha256: str,
        project: str,
        role: str,
        note: str | None = None,
    ) -> None:
        """Create ``user`` when new, grant ``role`` on ``project`` and store the token's hash."""
        now = time.time()
        with self._tx() as conn:
            ins = self.upsert(s.users).values(name=user, created_at=now)
            conn.execute(ins.on_conflict_do_nothing(index_elements=["name"]))
            self._grant(conn, user, project, role, now)
            conn.execute(
                sa.insert(s.api_tokens).values(
                    id=token_id, user=user, token_sha256=token_sha256, created_at=now, note=note
                )
            )

    def grant_role(self, user: str, project: str, role: str) -> None:
        """Set ``user``'s role on ``project`` (NotFoundError for an unknown user)."""
        with self._tx() as conn:
            if (
                conn.execute(sa.select(s.users.c.name).where(s.users.c.name == user)).first()
                is None
            ):
                raise NotFoundError(f"no user {user!r}; create a token for them first")
            self._grant(conn, user, project, role, time.time())

    def _grant(self, conn: Connection, user: str, project: str, role: str, now: float) -> None:
        ins = self.upsert(s.project_roles).values(
            user=user, project=project, role=role, granted_at=now
        )
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=["user", "project"], set_={"role": role, "granted_at": now}
            )
        )

    def revoke_token(self, *, token_id: str | None = None, token_sha256: str | None = None) -> bool:
        """Revoke a token by its id or its hash; False when unknown or already revoked."""
        t = s.api_tokens
        cond = t.c.id == token_id if token_id is not None else t.c.token_sha256 == token_sha256
        with self._tx() as conn:
            n = conn.execute(
                sa.update(t).where(cond, t.c.revoked_at.is_(None)).values(revoked_at=time.time())
            ).rowcount
        return bool(n)

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every token (never its text or hash) with its user's roles."""
        t, r = s.api_tokens, s.project_roles
        with self._read() as conn:
            roles: dict[str, dict[str, str]] = {}
            for user, project, role in conn.execute(sa.select(r.c.user, r.c.project, r.c.role)):
                roles.setdefault(user, {})[project] = role
            rows = conn.execute(sa.select(t).order_by(t.c.created_at)).mappings().all()
        return [
            {
                "id": row["id"],
                "user": row["user"],
                "created_at": row["created_at"],
                "revoked_at": row["revoked_at"],
                "active": row["revoked_at"] is None,
                "note": row["note"],
                "roles": roles.get(row["user"], {}),
            }
            for row in rows
        ]
