"""The filter language's syntax tree, and its rendering back to text.

Every node is an immutable dataclass. ``Field.kind`` says which part of a run a field
reads: ``config``, ``summary`` and ``env`` are JSON paths, ``tags`` is the tag list,
and the others are plain columns.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "JSON_KINDS",
    "NUMERIC_COLUMNS",
    "STRING_COLUMNS",
    "And",
    "Compare",
    "Exists",
    "Field",
    "InList",
    "Like",
    "Literal",
    "Node",
    "Not",
    "Or",
    "to_text",
]

JSON_KINDS = ("config", "summary", "env")
STRING_COLUMNS = ("id", "name", "project", "status", "author", "group", "job_type", "parent_run_id")
NUMERIC_COLUMNS = ("created_at", "ended_at", "seed")

Literal = float | int | str | bool


@dataclass(frozen=True)
class Field:
    """A value of a run: ``kind`` is a JSON kind, ``tags`` or a column; ``path`` the keys below it."""

    kind: str
    path: tuple[str, ...] = ()

    @property
    def is_json(self) -> bool:
        return self.kind in JSON_KINDS

    def __str__(self) -> str:
        if not self.path:
            return self.kind
        return ".".join((self.kind, *(_segment(p) for p in self.path)))


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # = != < <= > >=
    value: Literal


@dataclass(frozen=True)
class InList:
    field: Field
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Like:
    field: Field
    pattern: str  # a glob: * any characters, ? one character


@dataclass(frozen=True)
class Exists:
    field: Field


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Compare | InList | Like | Exists | Not | And | Or

_PLAIN_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_/\-]*$")


def _segment(key: str) -> str:
    return key if _PLAIN_SEGMENT.match(key) else "`" + key + "`"


def _literal(v: Literal) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"the filter language has no literal for {v}")
        return repr(v)
    if isinstance(v, int):
        return str(v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_text(node: Node) -> str:
    """Render ``node`` as filter text that parses back to an equal tree."""
    if isinstance(node, Compare):
        return f"{node.field} {node.op} {_literal(node.value)}"
    if isinstance(node, InList):
        return f"{node.field} in ({', '.join(_literal(v) for v in node.values)})"
    if isinstance(node, Like):
        return f"{node.field} like {_literal(node.pattern)}"
    if isinstance(node, Exists):
        return f"{node.field} exists"
    if isinstance(node, Not):
        return f"not ({to_text(node.item)})"
    joiner = " and " if isinstance(node, And) else " or "
    return joiner.join(f"({to_text(i)})" for i in node.items)
