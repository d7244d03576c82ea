"""The filter language and ordering, compiled to bound SQL."""

from __future__ import annotations

from typing import Any

from .._exceptions import InvalidFilterError

__all__ = ["compile_filter", "compile_order_by"]

_PLAIN = ("created_at", "ended_at", "name", "status", "project", "id")


def compile_filter(expression: str, *, dialect: str) -> Any:
    raise InvalidFilterError("filters are not supported yet", expression, 0)


def compile_order_by(keys: list[str], *, dialect: str) -> list[Any]:
    from ..store import _schema as s

    out = []
    for key in keys:
        desc = key.startswith("-")
        name = key.lstrip("+-")
        if name not in _PLAIN:
            raise InvalidFilterError(f"cannot sort by {name!r}", key, 0)
        col = s.runs.c[name]
        out.append(col.desc() if desc else col.asc())
    return out
