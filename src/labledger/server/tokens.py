"""API tokens, users and per-project roles, kept in the store's own database.

A token is ``llt_<id>_<secret>``: ``id`` (12 hex characters) names the token in
listings and for revocation; only the sha256 of the whole token text is stored, so a
leaked database does not leak usable tokens. Roles are ``read < write < admin`` per
(user, project); the project ``*`` stands for every project.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import UsageError
from ..store import ALL_PROJECTS, ROLES, AccessControl, role_allows

__all__ = [
    "ALL_PROJECTS",
    "ROLES",
    "Identity",
    "TokenRegistry",
    "hash_token",
    "role_allows",
]

TOKEN_PREFIX = "llt_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Identity:
    """A user authenticated by a token, with their roles ``{project: role}``."""

    user: str
    token_id: str
    roles: dict[str, str] = field(default_factory=dict)


class TokenRegistry:
    """Create, check, list and revoke tokens; grant roles. The rows are kept by the
    store's ``AccessControl`` role; this class makes and checks the token texts."""

    def __init__(self, store: AccessControl) -> None:
        self.store = store
        self._any_token = False  # once a token exists anonymous access stays off (even if revoked)

    # -- queries used on every request ------------------------------------------------

    def auth_enabled(self) -> bool:
        """True once any token was ever created (revoked ones count: revoking never reopens)."""
        if not self._any_token:
            self._any_token = self.store.tokens_exist()
        return self._any_token

    def authenticate(self, token: str) -> Identity | None:
        """The identity of a valid, unrevoked token, else None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        found = self.store.token_identity(hash_token(token))
        if found is None:
            return None
        token_id, user, roles = found
        return Identity(user=user, token_id=token_id, roles=roles)

    # -- administration (CLI) ------------------------------------------------------------

    def create_token(
        self, user: str, project: str, role: str, note: str | None = None
    ) -> tuple[str, str]:
        """Grant ``role`` on ``project`` to ``user`` (created if new) and issue a token.

        Returns ``(token_id, token)``; the token text is not stored and cannot be shown again.
        """
        _check_name("user", user)
        _check_name("project", project)
        if role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        self.store.add_token(token_id, user, hash_token(token), project, role, note)
        self._any_token = True
        return token_id, token

    def grant(self, user: str, project: str, role: str) -> None:
        """Set ``user``'s role on ``project`` (replacing the previous one)."""
        _check_name("project", project)
        if role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.store.grant_role(user, project, role)

    def revoke(self, token_id: str) -> bool:
        """Revoke the token named by its id (or the full token text); False if unknown or already revoked."""
        if token_id.startswith(TOKEN_PREFIX):
            return self.store.revoke_token(token_sha256=hash_token(token_id))
        return self.store.revoke_token(token_id=token_id)

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every token (never its text) with its user's roles."""
        return self.store.list_tokens()


def _check_name(what: str, value: str) -> None:
    if not value or len(value) > 250 or any(ord(c) < 32 for c in value):
        raise UsageError(f"{what} must be 1-250 printable characters, got {value!r}")
