"""Compile a filter tree to a SQLAlchemy clause over ``runs``, for SQLite and PostgreSQL.

Every user value, JSON path and key travels as a bound parameter; nothing from the
filter text is pasted into SQL. Each test compiles to a clause that is never NULL
(``coalesce(..., false)``), so ``not`` keeps two-valued logic and SQL agrees with
:func:`labledger.query.evaluate`.

JSON access: SQLite ``json_type``/``json_extract`` with a ``$."a"."b"`` path;
PostgreSQL ``jsonb_typeof(col #> path)`` and ``col #>> path`` with a ``text[]`` path.
String comparisons on PostgreSQL use ``COLLATE "C"`` so ordering is by code point, as in
SQLite and Python. ``summary.K`` is the explicit override in ``runs.summary`` when
present, else the metric's last value from ``metric_summary``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from .._exceptions import InvalidFilterError, InvalidSortKeyError
from ..query import (
    NUMERIC_COLUMNS,
    And,
    Compare,
    Exists,
    Field,
    InList,
    Like,
    Literal,
    Node,
    Not,
    Or,
    parse,
    parse_field,
)
from . import _schema as s

__all__ = ["compile_filter", "compile_order_by", "glob_to_like", "glob_to_sqlite"]

_DIGITS = re.compile(r"^-?\d+$")
_NUM_TYPES_SQLITE = ("integer", "real")
_GIN_COLUMNS = ("config",)  # JSON columns with a GIN (jsonb_path_ops) index on PostgreSQL


def glob_to_sqlite(pattern: str) -> str:
    """A ``like`` glob as an SQLite GLOB pattern (only ``*`` and ``?`` stay wildcards)."""
    return pattern.replace("[", "[[]")


def glob_to_like(pattern: str) -> str:
    """A ``like`` glob as a SQL LIKE pattern with ``\\`` as the escape character."""
    out = []
    for ch in pattern:
        if ch in "\\%_":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def _sqlite_path(path: tuple[str, ...]) -> str:
    # The stored JSON escapes non-ASCII characters (json.dumps' default), and SQLite
    # before 3.45 matches path labels against the raw, still-escaped key text.
    return "$" + "".join('."' + (k if k.isascii() else json.dumps(k)[1:-1]) + '"' for k in path)


def _false(expr: Any) -> Any:
    """``coalesce(expr, false)``: a test that is never NULL."""
    return sa.func.coalesce(expr, sa.false(), type_=sa.Boolean)


def _num(v: Literal) -> Any:
    return sa.literal(float(v), sa.Float)


def _str(v: str) -> Any:
    return sa.literal(v, sa.String)


class _Json:
    """Typed views (type name, number, string) of one JSON value, per dialect."""

    def __init__(self, dialect: str, col: Any, path: tuple[str, ...]) -> None:
        self.dialect = dialect
        if dialect == "sqlite":
            p = sa.literal(_sqlite_path(path), sa.String)
            self._type: Any = sa.func.json_type(col, p)
            self._value = sa.func.json_extract(col, p)
            self._float = sa.func.json_extract(
                col, sa.literal(_sqlite_path((*path, "$float")), sa.String)
            )
        else:
            arr = sa.literal(list(path), pg.ARRAY(sa.Text))
            node = col.op("#>")(arr)
            self._type = sa.func.jsonb_typeof(node)
            self._value = col.op("#>>", return_type=sa.Text)(arr)
            self._float = col.op("#>>", return_type=sa.Text)(
                sa.literal([*path, "$float"], pg.ARRAY(sa.Text))
            )
            # `#>` indexes into arrays for integer-like keys; keys only address objects here.
            guards = [
                sa.func.jsonb_typeof(col.op("#>")(sa.literal(list(path[:i]), pg.ARRAY(sa.Text))))
                == "object"
                for i, k in enumerate(path)
                if _DIGITS.match(k)
            ]
            if guards:
                self._type = sa.case((sa.and_(*guards), self._type), else_=sa.null())

    def present(self) -> Any:
        return self._type.is_not(None)

    def is_number(self) -> Any:
        if self.dialect == "sqlite":
            return self._type.in_(_NUM_TYPES_SQLITE)
        return self._type == "number"

    def is_string(self) -> Any:
        return self._type == ("text" if self.dialect == "sqlite" else "string")

    def is_bool(self, value: bool) -> Any:
        if self.dialect == "sqlite":
            return self._type == ("true" if value else "false")
        return sa.and_(self._type == "boolean", self._value == ("true" if value else "false"))

    def number(self, nonfinite: bool = False) -> Any:
        """The value as float where it is a number (else NULL); ``nonfinite`` also reads {"$float": "Infinity"}."""
        if self.dialect == "sqlite":
            whens: list[Any] = [(self.is_number(), self._value)]
        else:
            whens = [(self.is_number(), sa.cast(self._value, pg.DOUBLE_PRECISION))]
        if nonfinite:
            whens.append(
                (
                    sa.and_(self._type == "object", self._float == "Infinity"),
                    sa.literal(math.inf, sa.Float),
                )
            )
            whens.append(
                (
                    sa.and_(self._type == "object", self._float == "-Infinity"),
                    sa.literal(-math.inf, sa.Float),
                )
            )
        return sa.case(*whens, else_=sa.null())

    def string(self) -> Any:
        return sa.case((self.is_string(), self._value), else_=sa.null())


class _Compiler:
    def __init__(self, dialect: str) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise InvalidFilterError(f"filters are not supported on {dialect!r}")
        self.dialect = dialect
        # False under a `not`: there a test must be two-valued (coalesce(..., false)).
        # Outside every `not`, WHERE treats NULL as false already, and a bare comparison
        # is what an index matches (coalesce(author = 'x', false) uses no index).
        self.positive = True

    def _false(self, expr: Any) -> Any:
        return expr if self.positive else _false(expr)

    # -- values --------------------------------------------------------------------

    def _json(self, field: Field) -> _Json:
        return _Json(self.dialect, s.runs.c[field.kind], field.path)

    def _metric(self, key: str, column: str = "last") -> Any:
        ms = s.metric_summary.alias("ms_q")
        return (
            sa.select(ms.c[column])
            .where(ms.c.run_id == s.runs.c.id, ms.c.key == sa.literal(key, sa.String))
            .scalar_subquery()
        )

    def number(self, field: Field) -> Any:
        """The field as a number (NULL where it is not one)."""
        if field.kind in NUMERIC_COLUMNS:
            return s.runs.c[field.kind]
        j = self._json(field)
        if field.kind == "summary":
            return sa.case(
                (j._type.is_(None), self._metric(field.path[0])),
                else_=j.number(nonfinite=True),
            )
        return j.number()

    def string(self, field: Field) -> Any:
        """The field as a string (NULL where it is not one)."""
        expr = self._json(field).string() if field.is_json else s.runs.c[field.kind]
        if self.dialect == "postgresql":
            expr = sa.collate(expr, "C")
        return expr

    def _cmp(self, left: Any, op: str, right: Any) -> Any:
        if op == "=":
            return left == right
        if op == "!=":
            return left != right
        if op == "<":
            return left < right
        if op == "<=":
            return left <= right
        if op == ">":
            return left > right
        return left >= right

    # -- tests ---------------------------------------------------------------------

    def _tag_exists(self, pred: Any) -> Any:
        if self.dialect == "sqlite":
            tv = sa.func.json_each(s.runs.c.tags).table_valued("value")
        else:
            tv = sa.func.jsonb_array_elements_text(s.runs.c.tags).table_valued("value")
        return sa.exists(sa.select(sa.literal(1)).select_from(tv).where(pred(tv.c.value)))

    def _tag_contained(self, value: str) -> Any:
        """``tags @> '["value"]'``: the tag list holds ``value`` (GIN index, migration 0012)."""
        return s.runs.c.tags.op("@>", is_comparison=True)(
            sa.cast(sa.literal(json.dumps([value]), sa.Text), pg.JSONB)
        )

    def _glob(self, expr: Any, pattern: str) -> Any:
        if self.dialect == "sqlite":
            return expr.op("GLOB", is_comparison=True)(
                sa.literal(glob_to_sqlite(pattern), sa.String)
            )
        return expr.like(sa.literal(glob_to_like(pattern), sa.String), escape="\\")

    def tags(self, node: Node) -> Any:
        if isinstance(node, Exists):
            fn = (
                sa.func.json_array_length
                if self.dialect == "sqlite"
                else sa.func.jsonb_array_length
            )
            return fn(s.runs.c.tags) > 0
        if isinstance(node, Like):
            return self._tag_exists(lambda v: self._glob(v, node.pattern))
        if isinstance(node, InList):
            values = [str(v) for v in node.values]
            if self.dialect == "postgresql" and len(values) <= 32:
                return sa.or_(*(self._tag_contained(v) for v in values))
            return self._tag_exists(lambda v: self._in_values(v, values, "text"))
        assert isinstance(node, Compare)
        value = str(node.value)
        if self.dialect == "postgresql":
            hit = self._tag_contained(value)
            return hit if node.op == "=" else sa.not_(hit)
        hit = self._tag_exists(lambda v: v == _str(value))
        return hit if node.op == "=" else sa.not_(hit)

    def compare(self, field: Field, op: str, value: Literal) -> Any:
        if isinstance(value, bool):
            j = self._json(field)
            test = self._false(j.is_bool(value) if op == "=" else j.is_bool(not value))
            return self._contained(field, value, test) if op == "=" else test
        if isinstance(value, str):
            if op in ("=", "!=") and not field.is_json:
                # equality needs no COLLATE "C" (deterministic collations agree on it),
                # and without it the column's own index applies
                return self._false(self._cmp(s.runs.c[field.kind], op, _str(value)))
            expr = self.string(field)
            test = self._false(self._cmp(expr, op, _str(value)))
            return self._contained(field, value, test) if op == "=" else test
        expr = self.number(field)
        test = self._false(self._cmp(expr, op, _num(value)))
        return self._contained(field, value, test) if op == "=" else test

    def _contained(self, field: Field, value: Literal, test: Any) -> Any:
        """``test`` (``field = value``) with ``col @> {path: value}`` in front on PostgreSQL,
        which a GIN index over the column answers (migration 0012).

        The containment is implied by the exact test (a JSON object path holding that
        value), so ``contained AND test`` is ``test`` and stays so under ``not``. Numbers
        take this form only where comparing as double and as JSON numeric agree (finite,
        under 2**53 in magnitude; the stored numbers are Python's shortest reprs)."""
        if self.dialect != "postgresql" or field.kind not in _GIN_COLUMNS:
            return test
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (not math.isfinite(value) or abs(value) >= 2**53)
        ):
            return test
        doc: Any = value
        for k in reversed(field.path):
            doc = {k: doc}
        contained = s.runs.c[field.kind].op("@>", is_comparison=True)(
            sa.cast(sa.literal(json.dumps(doc), sa.Text), pg.JSONB)
        )
        if self.positive:
            # Outside every `not` the containment alone is the test: an object path
            # holding a scalar is contained only where that path holds that very scalar
            # (a list holding it is not). The planner estimates `@>` from the column's
            # statistics; `contained AND test` multiplied in a default guess for the
            # typed test and came out ~200x low (59 of 25,000 rows), which made a
            # 25%-selective filter drive the scan instead of the sort key's index.
            return contained
        return sa.and_(contained, test)

    def exists(self, field: Field) -> Any:
        if field.kind == "summary":
            ms = s.metric_summary.alias("ms_q")
            has_metric = sa.exists(
                sa.select(sa.literal(1)).where(
                    ms.c.run_id == s.runs.c.id, ms.c.key == sa.literal(field.path[0], sa.String)
                )
            )
            return sa.or_(self._json(field).present(), has_metric)
        if field.is_json:
            return self._false(self._json(field).present())
        return s.runs.c[field.kind].is_not(None)

    def node(self, node: Node) -> Any:
        if isinstance(node, And):
            return sa.and_(*(self.node(i) for i in node.items))
        if isinstance(node, Or):
            return sa.or_(*(self.node(i) for i in node.items))
        if isinstance(node, Not):
            positive, self.positive = self.positive, False
            try:
                return sa.not_(self.node(node.item))
            finally:
                self.positive = positive
        field = node.field
        if field.kind == "tags":
            return self.tags(node)
        if isinstance(node, Exists):
            return self.exists(field)
        if isinstance(node, Like):
            if not field.is_json and self.dialect == "postgresql":
                # LIKE needs no COLLATE "C"; without it a trigram index applies (0012)
                return self._false(self._glob(s.runs.c[field.kind], node.pattern))
            return self._false(self._glob(self.string(field), node.pattern))
        if isinstance(node, InList):
            return self.in_list(field, node.values)
        assert isinstance(node, Compare)
        return self.compare(field, node.op, node.value)

    def _in_values(self, expr: Any, values: list[Any], kind: str) -> Any:
        """``expr IN values`` with the whole list as ONE bound parameter.

        SQLite: ``expr IN (SELECT value FROM json_each(:json_array))``; PostgreSQL:
        ``expr IN (SELECT unnest(:array))``. Either way the SQL text and its expression tree stay the
        same size for 3 or 100,000 values (an ``OR`` of comparisons, or ``IN (?, ?, …)``,
        hits SQLite's expression-depth and variable limits).
        """
        if self.dialect == "sqlite":
            tv = sa.func.json_each(sa.literal(json.dumps(values), sa.String)).table_valued("value")
            return expr.in_(sa.select(tv.c.value).scalar_subquery())
        elem = pg.DOUBLE_PRECISION if kind == "number" else sa.Text
        arr: Any = sa.cast(sa.literal(values, pg.ARRAY(elem)), pg.ARRAY(elem))
        # IN (SELECT unnest(...)) rather than = ANY(...): PostgreSQL hashes the subquery
        # once, where ANY scans the array for every row (4x slower at 10,000 values)
        return expr.in_(sa.select(sa.func.unnest(arr)).scalar_subquery())

    def in_list(self, field: Field, values: tuple[Literal, ...]) -> Any:
        """``field in (...)``: the same answer as an ``or`` of ``field = v`` for each value.

        Values are grouped by type (numbers compare as numbers, strings as strings,
        booleans by JSON type), and each group is one parameter, whatever its length.
        """
        numbers = sorted({float(v) for v in values if not isinstance(v, (bool, str))})
        strings = sorted({v for v in values if isinstance(v, str)})
        bools = sorted({v for v in values if isinstance(v, bool)})
        tests: list[Any] = [self.compare(field, "=", b) for b in bools]
        if len(numbers) <= 3:
            tests.extend(self.compare(field, "=", n) for n in numbers)
        else:
            tests.append(self._false(self._in_values(self.number(field), numbers, "number")))
        if len(strings) <= 3:
            tests.extend(self.compare(field, "=", v) for v in strings)
        else:
            tests.append(self._false(self._in_values(self.string(field), strings, "text")))
        if not tests:
            return sa.false()
        return sa.or_(*tests)


def compile_filter(expression: str | Node, *, dialect: str) -> Any:
    """A boolean clause over the ``runs`` table for ``expression`` (text or a parsed tree)."""
    node = parse(expression) if isinstance(expression, str) else expression
    return _Compiler(dialect).node(node)


def compile_order_by(keys: list[str], *, dialect: str) -> list[Any]:
    """ORDER BY clauses for sort keys like ``-summary.val_acc``, ``config.lr``, ``created_at``.

    ``-`` sorts descending. NULLs (missing keys) sort last either way. A JSON key sorts
    its numbers first, then its strings; ties fall back to newest first, then id.
    """
    c = _Compiler(dialect)
    out: list[Any] = []
    for raw in keys:
        key = raw.strip()
        desc = key.startswith("-")
        name = key.lstrip("+-").strip()
        try:
            field = parse_field(name)
        except InvalidFilterError as exc:
            raise InvalidSortKeyError(raw, exc.message) from None
        if field.kind == "tags":
            raise InvalidSortKeyError(raw, "tags cannot be sorted on")
        exprs = (
            [c.number(field)]
            if field.kind in NUMERIC_COLUMNS
            else (
                [s.runs.c[field.kind]] if not field.is_json else [c.number(field), c.string(field)]
            )
        )
        if not field.is_json and field.kind not in NUMERIC_COLUMNS and dialect == "postgresql":
            exprs = [sa.collate(s.runs.c[field.kind], "C")]
        for e in exprs:
            out.append((e.desc() if desc else e.asc()).nulls_last())
    out.append(s.runs.c.created_at.desc())
    out.append(s.runs.c.id.asc())
    return out
