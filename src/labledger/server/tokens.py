"""API tokens, users and per-project roles, kept in the store's own database.

A token is ``llt_<id>_<secret>``: ``id`` (12 hex characters) names the token in
listings and for revocation; only the sha256 of the whole token text is stored, so a
leaked database does not leak usable tokens. Roles are ``read < write < admin`` per
(user, project); the project ``*`` stands for every project.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .._exceptions import NotFoundError, UsageError
from ..store import _schema as s
from ..store.sql import SqlStore

__all__ = [
    "ALL_PROJECTS",
    "ROLES",
    "Identity",
    "TokenRegistry",
    "hash_token",
    "role_allows",
]

ROLES = ("read", "write", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}
ALL_PROJECTS = "*"
TOKEN_PREFIX = "llt_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def role_allows(have: str | None, need: str) -> bool:
    """Whether role ``have`` includes ``need`` (read < write < admin)."""
    return have is not None and _RANK.get(have, -1) >= _RANK[need]


@dataclass(frozen=True)
class Identity:
    """A user authenticated by a token, with their roles ``{project: role}``."""

    user: str
    token_id: str
    roles: dict[str, str] = field(default_factory=dict)


class TokenRegistry:
    """Create, check, list and revoke tokens; grant roles. Thin SQL over ``store.engine``."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._any_token = False  # once a token exists anonymous access stays off (even if revoked)

    # -- queries used on every request ------------------------------------------------

    def auth_enabled(self) -> bool:
        """True once any token was ever created (revoked ones count: revoking never reopens)."""
        if self._any_token:
            return True
        with self.store.engine.connect() as conn:
            found = conn.execute(sa.select(s.api_tokens.c.id).limit(1)).first() is not None
        self._any_token = found
        return found

    def authenticate(self, token: str) -> Identity | None:
        """The identity of a valid, unrevoked token, else None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        t, r = s.api_tokens, s.project_roles
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.id, t.c.user).where(
                    t.c.token_sha256 == hash_token(token), t.c.revoked_at.is_(None)
                )
            ).first()
            if row is None:
                return None
            roles = {
                p: role
                for p, role in conn.execute(
                    sa.select(r.c.project, r.c.role).where(r.c.user == row.user)
                )
            }
        return Identity(user=row.user, token_id=row.id, roles=roles)

    # -- administration (CLI) ------------------------------------------------------------

    def create_token(
        self, user: str, project: str, role: str, note: str | None = None
    ) -> tuple[str, str]:
        """Grant ``role`` on ``project`` to ``user`` (created if new) and issue a token.

        Returns ``(token_id, token)``; the token text is not stored and cannot be shown again.
        """
        _check_name("user", user)
        _check_name("project", project)
        if role not in _RANK:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        with self.store._tx() as conn:
            ins = self.store.upsert(s.users).values(name=user, created_at=now)
            conn.execute(ins.on_conflict_do_nothing(index_elements=["name"]))
            self._grant(conn, user, project, role, now)
            conn.execute(
                sa.insert(s.api_tokens).values(
                    id=token_id,
                    user=user,
                    token_sha256=hash_token(token),
                    created_at=now,
                    note=note,
                )
            )
        self._any_token = True
        return token_id, token

    def grant(self, user: str, project: str, role: str) -> None:
        """Set ``user``'s role on ``project`` (replacing the previous one)."""
        _check_name("project", project)
        if role not in _RANK:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        with self.store._tx() as conn:
            if (
                conn.execute(sa.select(s.users.c.name).where(s.users.c.name == user)).first()
                is None
            ):
                raise NotFoundError(f"no user {user!r}; create a token for them first")
            self._grant(conn, user, project, role, time.time())

    def _grant(self, conn: sa.Connection, user: str, project: str, role: str, now: float) -> None:
        ins = self.store.upsert(s.project_roles).values(
            user=user, project=project, role=role, granted_at=now
        )
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=["user", "project"], set_={"role": role, "granted_at": now}
            )
        )

    def revoke(self, token_id: str) -> bool:
        """Revoke the token named by its id (or the full token text); False if unknown or already revoked."""
        t = s.api_tokens
        cond = (
            t.c.token_sha256 == hash_token(token_id)
            if token_id.startswith(TOKEN_PREFIX)
            else t.c.id == token_id
        )
        with self.store._tx() as conn:
            n = conn.execute(
                sa.update(t).where(cond, t.c.revoked_at.is_(None)).values(revoked_at=time.time())
            ).rowcount
        return bool(n)

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every token (never its text) with its user's roles."""
        t, r = s.api_tokens, s.project_roles
        with self.store.engine.connect() as conn:
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


def _check_name(what: str, value: str) -> None:
    if not value or len(value) > 250 or any(ord(c) < 32 for c in value):
        raise UsageError(f"{what} must be 1-250 printable characters, got {value!r}")
