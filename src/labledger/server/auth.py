"""Authentication and per-project permissions (tokens are filled in by the server layer).

Routes depend on ``reader``/``writer``/``admin``; each returns the principal or raises
AuthError (401/403 in the common error shape).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

__all__ = ["Principal", "admin", "reader", "writer"]


class Principal(dict[str, Any]):
    """Who is calling: ``user`` and ``roles`` {project: role}; anonymous when auth is off."""


def _principal(request: Request, role: str, project: str | None) -> Principal:
    return Principal(user="anonymous", roles={})


def reader(request: Request) -> Principal:
    return _principal(request, "read", request.query_params.get("project"))


def writer(request: Request) -> Principal:
    return _principal(request, "write", None)


def admin(request: Request) -> Principal:
    return _principal(request, "admin", None)
