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
from ..store import Store
from .tokens import ALL_PROJECTS, Identity, TokenRegistry, hash_token, role_allows

__all__ = [
    "COOKIE_NAME",
    "Principal",
    "admin",
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
        own, every = self.roles.get(project), self.roles.get(ALL_PROJECTS)
        if own is None or (every is not None and role_allows(every, own)):
            return every
        return own

    def can(self, role: str, project: str) -> bool:
        return role_allows(self.role_on(project), role)

    def require(self, role: str, project: str) -> None:
        """Raise AuthError 403 unless the principal holds ``role`` on ``project``."""
        if not self.can(role, project):
            raise AuthError(f"user {self.user!r} needs the {role} role on project {project!r}", 403)

    def readable_projects(self) -> list[str] | None:
        """Projects this principal may read; None means every project."""
        if role_allows(self.roles.get(ALL_PROJECTS), "read"):
            return None
        return sorted(p for p, r in self.roles.items() if role_allows(r, "read"))


_ANONYMOUS = Principal(user="anonymous", roles={ALL_PROJECTS: "admin"})


def get_store(request: Request) -> Store:
    """The app's store (the dependency every route that reads or writes runs uses)."""
    store: Store = request.app.state.store
    return store


def registry(request: Request) -> TokenRegistry | None:
    """The app's token registry (None when the store is not an SQL store)."""
    app = request.app
    reg: TokenRegistry | None = getattr(app.state, "tokens", None)
    if reg is None:
        from ..store.sql import SqlStore

        store = app.state.store
        if not isinstance(store, SqlStore):
            return None
        reg = app.state.tokens = TokenRegistry(store)
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
    if reg is None or not reg.auth_enabled():
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


_run_projects: dict[str, str] = {}


def run_project(request: Request, ref: str) -> tuple[str, str]:
    """``(run_id, project)`` of the run named by ``ref`` (a run's project never changes: cached)."""
    store = request.app.state.store
    run_id = ref if ref in _run_projects else store.resolve_run_id(ref)
    project = _run_projects.get(run_id)
    if project is None:
        project = str(store.get_run(run_id)["project"])
        if len(_run_projects) > 100_000:
            _run_projects.clear()
        _run_projects[run_id] = project
    return run_id, project


def require_run(request: Request, ref: str, role: str) -> str:
    """Check the caller's ``role`` on the run's project; return the full run id.

    ``ref`` is resolved among the runs the caller may read only (an id, a name, a unique
    id prefix): a run of another project answers 404 as if it did not exist, and an
    ambiguous prefix lists readable runs only, so answers never depend on what the
    caller cannot read. 403 only when the caller reads the run but lacks ``role``."""
    who = principal(request)
    readable = who.readable_projects()
    if readable is None:
        run_id, project = run_project(request, ref)
    else:
        run_id, project = _resolve_readable(request, ref, readable)
    who.require(role, project)
    return run_id


def _resolve_readable(request: Request, ref: str, readable: list[str]) -> tuple[str, str]:
    import re

    import sqlalchemy as sa

    from .._exceptions import AmbiguousRunError, RunNotFoundError
    from ..store import _schema as s

    cached = _run_projects.get(ref)
    if cached is not None and cached in readable:
        return ref, cached
    engine = getattr(request.app.state.store, "engine", None)
    if engine is None:  # not an SQL store: resolve, then hide what cannot be read
        run_id, project = run_project(request, ref)
        if project not in readable:
            raise RunNotFoundError(ref)
        return run_id, project
    runs = s.runs
    ref = ref.strip()
    low = ref.lower()
    hexa = re.fullmatch(r"[0-9a-f]{1,32}", low) is not None
    base = sa.select(runs.c.id, runs.c.project).where(runs.c.project.in_(readable))
    with engine.connect() as conn:
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
    run_id, project = str(found[0][0]), str(found[0][1])
    _run_projects[run_id] = project
    return run_id, project


_run_authors: dict[str, str | None] = {}


def run_author(request: Request, run_id: str) -> str | None:
    """The run's author (set by the server when it was created; never changes: cached)."""
    if run_id in _run_authors:
        return _run_authors[run_id]
    store = request.app.state.store
    getter = getattr(store, "run_author", None)
    found = getter(run_id) if getter is not None else store.get_run(run_id).get("author")
    author = None if found is None else str(found)
    if len(_run_authors) > 100_000:
        _run_authors.clear()
    _run_authors[run_id] = author
    return author


def require_owner(request: Request, ref: str) -> str:
    """Check that the caller may change the run: the write role on its project, and being
    its author or an admin of the project (runs without an author predate authorship)."""
    who = principal(request)
    run_id = require_run(request, ref, "write")  # 404 for a run the caller cannot read
    _, project = run_project(request, run_id)
    author = run_author(request, run_id)
    if author is not None and author != who.user and not who.can("admin", project):
        raise AuthError(
            f"run {run_id[:8]} belongs to {author!r}: only its author or an admin of project "
            f"{project!r} may change it (you are {who.user!r})",
            403,
            code="not_owner",
        )
    return run_id
