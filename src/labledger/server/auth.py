"""Authentication and per-project permissions.

Routes depend on ``reader``/``writer``/``admin``; each returns the calling
:class:`Principal` or raises AuthError (401 without a valid token, 403 without the role
on the project named by the request's ``project`` path or query parameter). Routes
whose project is only known after a lookup (a run) call ``who.require(role, project)``.

The token comes from ``Authorization: Bearer <token>`` or the ``labledger_token``
cookie (the web UI's login). While no token was ever created the server is open and
every caller is the anonymous admin; once one exists, anonymous access is off.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import Request

from .._exceptions import AuthError
from ..store import ALL_PROJECTS, Actor, ServerStore, WriteCore, role_allows
from .tokens import Identity, TokenRegistry, hash_token

__all__ = [
    "COOKIE_NAME",
    "Principal",
    "actor",
    "admin",
    "core",
    "get_store",
    "principal",
    "reader",
    "registry",
    "require_owner",
    "require_run",
    "run_project",
    "writer",
]

COOKIE_NAME = "labledger_token"
CACHE_SECONDS = 2.0  # a revoked token stops working within this long on every replica


class Principal(dict[str, Any]):
    """Who is calling: ``user`` and ``roles`` {project: role} (``*`` = every project)."""

    @property
    def user(self) -> str:
        return str(self["user"])

    @property
    def roles(self) -> dict[str, str]:
        roles: dict[str, str] = self["roles"]
        return roles

    def role_on(self, project: str) -> str | None:
        """The strongest role on ``project`` (its own or through ``*``)."""
        return self.actor.role_on(project)

    def can(self, role: str, project: str) -> bool:
        return role_allows(self.role_on(project), role)

    def require(self, role: str, project: str) -> None:
        """Raise AuthError 403 unless the principal holds ``role`` on ``project``."""
        self.actor.require(role, project)

    def readable_projects(self) -> list[str] | None:
        """Projects this principal may read; None means every project."""
        return self.actor.readable_projects()

    @property
    def actor(self) -> Actor:
        """The same caller as the write core's :class:`~labledger.store._core.Actor`."""
        return Actor(self.user, dict(self.roles))


_ANONYMOUS = Principal(user="anonymous", roles={ALL_PROJECTS: "admin"})


def get_store(request: Request) -> ServerStore:
    """The app's store (the dependency every route that reads or writes runs uses)."""
    store: ServerStore = request.app.state.store
    return store


def registry(request: Request) -> TokenRegistry:
    """The app's token registry (over the store's ``AccessControl`` role)."""
    app = request.app
    reg: TokenRegistry | None = getattr(app.state, "tokens", None)
    if reg is None or reg.store is not app.state.store:
        reg = app.state.tokens = TokenRegistry(app.state.store)
    return reg


_cache: dict[str, tuple[float, Identity | None]] = {}
_cache_lock = threading.Lock()


def _identity(reg: TokenRegistry, token: str) -> Identity | None:
    key = hash_token(token)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    ident = reg.authenticate(token)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (now + CACHE_SECONDS, ident)
    return ident


def request_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    cookie = request.cookies.get(COOKIE_NAME)
    return cookie or None


def principal(request: Request) -> Principal:
    """Authenticate the request (401 when auth is on and no valid token came)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    reg = registry(request)
    if not reg.auth_enabled():
        who = _ANONYMOUS
    else:
        token = request_token(request)
        if not token:
            raise AuthError(
                "this server requires a token: send 'Authorization: Bearer <token>'", 401
            )
        ident = _identity(reg, token)
        if ident is None:
            raise AuthError("the token is not valid (unknown or revoked)", 401)
        who = Principal(user=ident.user, roles=dict(ident.roles))
    request.state.principal = who
    return who


def _checked(request: Request, role: str) -> Principal:
    who = principal(request)
    project = request.path_params.get("project") or request.query_params.get("project")
    if project:
        who.require(role, str(project))
    return who


def reader(request: Request) -> Principal:
    return _checked(request, "read")


def writer(request: Request) -> Principal:
    return _checked(request, "write")


def admin(request: Request) -> Principal:
    return _checked(request, "admin")


def core(request: Request) -> WriteCore:
    """The app's write core (``store._core``): every rule about runs lives there."""
    app = request.app
    found: WriteCore | None = getattr(app.state, "core", None)
    if found is None or found.store is not app.state.store:
        found = app.state.core = WriteCore(app.state.store)
    return found


def actor(request: Request) -> Actor:
    """The caller as the write core knows them."""
    return principal(request).actor


def run_project(request: Request, ref: str) -> tuple[str, str]:
    """``(run_id, project)`` of the run ``ref`` names, whoever may read it: for filtering
    what the caller sees (``who.can("read", project)``), never for answering about it."""
    rules = core(request)
    run_id = rules.store.resolve_run_id(ref)
    return run_id, rules.owner_of(run_id)[0]


def require_run(request: Request, ref: str, role: str) -> str:
    """Check the caller's ``role`` on the run's project; return the full run id.

    ``ref`` is resolved among the runs the caller may read only (an id, a name, a unique
    id prefix): a run of another project answers 404 as if it did not exist, and an
    ambiguous prefix lists readable runs only, so answers never depend on what the
    caller cannot read. 403 only when the caller reads the run but lacks ``role``."""
    return core(request).resolve(actor(request), ref, role)[0]


def require_owner(request: Request, ref: str) -> str:
    """Check that the caller may change the run (``WriteCore.owned``): the write role on
    its project, and being its author or an admin of the project."""
    return core(request).owned(actor(request), ref)[0]
