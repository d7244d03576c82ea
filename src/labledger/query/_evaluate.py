"""Evaluate a filter tree on a run dict in Python: the reference semantics the SQL must match.

Rules (the same in SQL, see docs/query.md):

- A comparison on a JSON field (``config.*``, ``summary.*``, ``env.*``) is true only when
  the key exists and holds a value of the literal's type: a number for a number
  (compared as float64; NaN never matches, not even ``!=``), a string for a string
  (compared by code point), true/false for true/false. Anything else is false.
- ``tags = "x"`` is true when some tag equals x; ``tags != "x"`` when none does;
  ``tags in (...)``/``tags like`` when some tag matches; ``tags exists`` when there is a tag.
- ``exists`` is true when the key is present (even with a JSON null, or a NaN metric);
  on a column, when it is not NULL.
- ``like`` takes a glob: ``*`` any characters, ``?`` exactly one; case-sensitive,
  whole-string. It only matches strings.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from ._ast import NUMERIC_COLUMNS, And, Compare, Exists, Field, InList, Like, Literal, Node, Not, Or

__all__ = ["evaluate", "glob_regex", "lookup"]

_MISSING = object()
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A compiled regex for a ``like`` glob (``*`` and ``?`` are the only wildcards)."""
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def lookup(field: Field, run: Mapping[str, Any]) -> Any:
    """The value ``field`` reads from ``run``, or the private ``_MISSING`` sentinel."""
    if field.kind == "summary":
        summary = run.get("summary") or {}
        return summary.get(field.path[0], _MISSING)
    if field.is_json:
        cur: Any = run.get(field.kind) or {}
        for key in field.path:
            if not isinstance(cur, Mapping) or key not in cur:
                return _MISSING
            cur = cur[key]
        return cur
    value = run.get(field.kind)
    return _MISSING if value is None else value


def _same_type(value: Any, lit: Literal) -> bool:
    if isinstance(lit, bool):
        return isinstance(value, bool)
    if isinstance(lit, str):
        return isinstance(value, str)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _compare(value: Any, op: str, lit: Literal) -> bool:
    if value is _MISSING or not _same_type(value, lit):
        return False
    if isinstance(lit, (bool, str)):
        return _CMP[op](value, lit)
    fv = float(value)
    if math.isnan(fv):
        return False
    return _CMP[op](fv, float(lit))


def evaluate(node: Node, run: Mapping[str, Any]) -> bool:
    """Whether ``run`` (a dict shaped like ``labledger show --json``) matches ``node``."""
    if isinstance(node, And):
        return all(evaluate(i, run) for i in node.items)
    if isinstance(node, Or):
        return any(evaluate(i, run) for i in node.items)
    if isinstance(node, Not):
        return not evaluate(node.item, run)
    field = node.field
    if field.kind == "tags":
        tags = [t for t in (run.get("tags") or []) if isinstance(t, str)]
        if isinstance(node, Exists):
            return bool(tags)
        if isinstance(node, Like):
            rx = glob_regex(node.pattern)
            return any(rx.fullmatch(t) for t in tags)
        if isinstance(node, InList):
            return any(t in node.values for t in tags)
        assert isinstance(node, Compare)
        return (node.value in tags) if node.op == "=" else (node.value not in tags)
    value = lookup(field, run)
    if isinstance(node, Exists):
        return value is not _MISSING
    if isinstance(node, Like):
        return isinstance(value, str) and glob_regex(node.pattern).fullmatch(value) is not None
    if isinstance(node, InList):
        return any(_compare(value, "=", v) for v in node.values)
    if field.kind in NUMERIC_COLUMNS and value is not _MISSING:
        value = float(value)
    return _compare(value, node.op, node.value)
