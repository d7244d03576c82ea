"""A fast plan for the leaderboard question: runs matching a filter, sorted by one metric, top N.

The general ORDER BY over ``summary.K`` computes every run's value (a JSON lookup and
a correlated subquery) before sorting, which is linear in the number of runs. This
plan instead returns the same rows in the same order as the general query by reading:

1. runs whose value of K is a number, merged from two ordered, limited queries:
   a. ``metric_summary`` rows of K in index order ``(key, last)``, joined to their run
      (runs whose ``summary`` JSON overrides K excluded), and
   b. runs whose ``summary`` JSON holds a number for K, found through the partial index
      ``ix_runs_summary_set`` (migration 0005) over runs with a non-empty ``summary``;
   both with the filter applied per row, stopping after ``offset + limit`` rows;
2. only when that falls short, the remaining runs (no numeric K) with the general order.

Ties break as in :func:`compile_order_by`: newest first, then id.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..query import And, Compare, Node, parse_field
from . import _schema as s
from ._filter_sql import _Compiler, _Json, compile_order_by

__all__ = ["fetch_ranked", "key_ranges"]


def _summary_set(dialect: str) -> Any:
    # A constant (not a bound parameter), so the planner can match the partial index.
    empty = "'{}'" if dialect == "sqlite" else "'{}'::jsonb"
    return s.runs.c.summary.op("!=", is_comparison=True)(sa.literal_column(empty))


_RANGE_OPS = ("<", "<=", ">", ">=", "=")


def key_ranges(node: Node | None, key: str) -> list[tuple[str, float]]:
    """``(op, number)`` of the tests ``summary.<key> op number`` that the filter ``node``
    requires (it, or one of its top-level ``and`` items, is such a test)."""
    if node is None:
        return []
    items = node.items if isinstance(node, And) else (node,)
    out = []
    for item in items:
        if (
            isinstance(item, Compare)
            and item.field.kind == "summary"
            and item.field.path == (key,)
            and item.op in _RANGE_OPS
            and isinstance(item.value, (int, float))
            and not isinstance(item.value, bool)
        ):
            out.append((item.op, float(item.value)))
    return out


def _in_range(v: Any, ranges: list[tuple[str, float]]) -> list[Any]:
    cmp = {
        "<": v.__lt__,
        "<=": v.__le__,
        ">": v.__gt__,
        ">=": v.__ge__,
        "=": v.__eq__,
    }
    return [cmp[op](sa.literal(x, sa.Float)) for op, x in ranges]


def fetch_ranked(
    conn: Connection,
    where: Any,
    order_by: str | list[str] | None,
    limit: int | None,
    offset: int = 0,
    *,
    dialect: str,
    node: Node | None = None,
    base: Any = None,
) -> list[Any] | None:
    """Rows of ``runs`` for ``WHERE where ORDER BY summary.K LIMIT limit OFFSET offset``.

    Returns None when the plan does not apply (no limit, or not exactly one
    ``summary.*`` sort key); the caller then runs the general query. ``node``, the parsed
    filter that ``where`` was compiled from, lets a filter on the sort key itself
    (``summary.K > 0.5``) bound the index scan: it becomes a range on ``(key, last)``,
    so the query costs what the sort costs, however few runs match. With ``base`` (``where``
    without the filter: project, readable projects), that test is then dropped from the
    metric branch, where the range says the same, so no run's value is looked up twice.
    """
    keys = [order_by] if isinstance(order_by, str) else list(order_by or [])
    if limit is None or len(keys) != 1:
        return None
    raw = keys[0].strip()
    field = parse_field(raw.lstrip("+-").strip())
    if field.kind != "summary":
        return None
    desc = raw.startswith("-")
    key = field.path[0]
    cond = [where] if where is not None else []
    j = _Json(dialect, s.runs.c.summary, (key,))
    summary_set = _summary_set(dialect)
    ms = s.metric_summary
    ranges = key_ranges(node, key)
    metric_cond = cond
    if ranges and base is not None and node is not None:
        others = [
            i for i in (node.items if isinstance(node, And) else (node,)) if not key_ranges(i, key)
        ]
        parts = [base] if base is not None else []
        if others:
            from ._filter_sql import compile_filter

            parts.append(compile_filter(And(tuple(others)), dialect=dialect))
        metric_cond = parts
    from_metrics = (
        sa.select(*s.runs.c, ms.c.last.label("v"))
        .select_from(ms.join(s.runs, s.runs.c.id == ms.c.run_id))
        .where(
            ms.c.key == sa.literal(key, sa.String),
            ms.c.last.is_not(None),
            *_in_range(ms.c.last, ranges),
            sa.not_(sa.and_(summary_set, j.present())),
            *metric_cond,
        )
    )
    override = j.number(nonfinite=True)
    from_overrides = sa.select(*s.runs.c, override.label("v")).where(
        summary_set, override.is_not(None), *_in_range(override, ranges), *cond
    )
    want = offset + limit
    rows: list[Any] = []
    # Two ordered, limited queries merged here: PostgreSQL does not push LIMIT through a
    # UNION ALL into the index scan, but plans each branch well on its own.
    for q, v in ((from_metrics, ms.c.last), (from_overrides, override)):
        ordered = q.order_by(
            v.desc() if desc else v.asc(), s.runs.c.created_at.desc(), s.runs.c.id.asc()
        )
        rows.extend(conn.execute(ordered.limit(want)).mappings())
    sign = -1.0 if desc else 1.0
    rows.sort(key=lambda r: (sign * r["v"], -r["created_at"], r["id"]))
    del rows[want:]
    if len(rows) < want and not ranges:  # a range on K admits no run without a number K
        number = _Compiler(dialect).number(field)
        rest = (
            sa.select(s.runs)
            .where(number.is_(None), *cond)
            .order_by(*compile_order_by([raw], dialect=dialect))
            .limit(want - len(rows))
        )
        rows.extend(conn.execute(rest).mappings())
    return rows[offset:]
