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

import json
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
    by_filter: bool | None = None,
) -> list[Any] | None:
    """Rows of ``runs`` for ``WHERE where ORDER BY summary.K LIMIT limit OFFSET offset``.

    Returns None when the plan does not apply (no limit, or not exactly one
    ``summary.*`` sort key); the caller then runs the general query. ``node``, the parsed
    filter that ``where`` was compiled from, lets a filter on the sort key itself
    (``summary.K > 0.5``) bound the index scan: it becomes a range on ``(key, last)``,
    so the query costs what the sort costs, however few runs match. With ``base`` (``where``
    without the filter: project, readable projects), that test is then dropped from the
    metric branch, where the range says the same, so no run's value is looked up twice.

    Otherwise the metric branch is driven by one of two indexes (:func:`_drive_by_filter`):
    the sort key's, stopping after ``offset + limit`` matching runs (about
    ``(offset + limit) / selectivity`` runs looked at), or, when the planner expects few
    runs to match, the filter's, each match's value read by primary key and the matches
    sorted. ``by_filter`` forces one (tests); both give the same rows.
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
    own = sa.not_(sa.and_(summary_set, j.present()))
    # without a filter (node None) the sort key drives: nothing to estimate
    drive = (
        False
        if ranges or node is None
        else _drive_by_filter(conn, dialect, cond, base, offset + limit, by_filter)
    )
    if drive == SEMI and dialect == "postgresql":
        # about as many runs match as the sort key's order would look at: the sort key's
        # index drives, and each entry's run is tested against the matching runs' ids,
        # read once through the filter's index into a hashed set (`IS TRUE` keeps
        # PostgreSQL from turning the IN into a join, which would probe `runs` per entry);
        # the conditions stay on the joined run too, so the rows are the sort-driven ones
        matching = sa.select(s.runs.c.id).where(*cond).correlate(None)
        in_matching = ms.c.run_id.in_(matching).is_(sa.true())
        from_metrics = _sort_driven(key, ranges, own, [in_matching, *metric_cond])
        metric_order: Any = (ms.c.last, s.runs.c.created_at, s.runs.c.id)
    elif drive:
        # few runs match: read them through the filter's index, each one's value of K by
        # its primary key (run_id, key), and sort those (cost: the matching runs)
        value = (
            sa.select(ms.c.last)
            .where(ms.c.run_id == s.runs.c.id, ms.c.key == sa.literal(key, sa.String))
            .scalar_subquery()
        )
        # OFFSET 0 keeps the value computed once per matching run (not pushed into WHERE)
        inner = sa.select(*s.runs.c, value.label("v")).where(own, *cond).offset(0).subquery()
        from_metrics = sa.select(*inner.c).where(inner.c.v.is_not(None))
        metric_order = (inner.c.v, inner.c.created_at, inner.c.id)
    else:
        from_metrics = _sort_driven(key, ranges, own, metric_cond)
        metric_order = (ms.c.last, s.runs.c.created_at, s.runs.c.id)
    override = j.number(nonfinite=True)
    from_overrides = sa.select(*s.runs.c, override.label("v")).where(
        summary_set, override.is_not(None), *_in_range(override, ranges), *cond
    )
    want = offset + limit
    # Two ordered, limited queries, each a subquery with its own ORDER BY and LIMIT (so
    # each branch is planned on its own: PostgreSQL does not push an outer LIMIT through
    # a UNION ALL into the index scans), sent as one UNION ALL statement (one round trip)
    # and merged here.
    branches = [
        sa.select(
            q.order_by(v.desc() if desc else v.asc(), created.desc(), rid.asc())
            .limit(want)
            .subquery()
        )
        for q, (v, created, rid) in (
            (from_metrics, metric_order),
            (from_overrides, (override, s.runs.c.created_at, s.runs.c.id)),
        )
    ]
    rows: list[Any] = list(conn.execute(sa.union_all(*branches)).mappings())
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


def _sort_driven(key: str, ranges: list[tuple[str, float]], own: Any, cond: list[Any]) -> Any:
    """The metric branch read in the sort key's index order ``(key, last)``, filtered per run."""
    ms = s.metric_summary
    return (
        sa.select(*s.runs.c, ms.c.last.label("v"))
        .select_from(ms.join(s.runs, s.runs.c.id == ms.c.run_id))
        .where(
            ms.c.key == sa.literal(key, sa.String),
            ms.c.last.is_not(None),
            *_in_range(ms.c.last, ranges),
            own,
            *cond,
        )
    )


# Reading in the sort key's order looks at about want * total / matching runs, reading
# through the filter at `matching`: the filter drives while matching**2 <= want * total
# (times this margin: its cost is bounded by the match count, the other's by a guess).
_CROSSOVER = 2.0
# Near the crossover both look at ~sqrt(want * total) runs, each a probe of another
# table's index. From matching**2 > want * total / _SEMI_BAND up to the crossover, the
# sort key's order drives with the matches as a hashed set of ids instead (SEMI): one
# read of the matches, then one index entry per run looked at, no probe. At 1M runs,
# name like "sweep-17*" (11,111 matches): 113 ms p50 against 332 ms probing each match's
# value and 437 ms probing each run in sort order (2 cores, load 11).
_SEMI_BAND = 5.0
# Where the matches' ids come from an index alone (an Index Only Scan: an author's runs
# through ix_runs_author_project, migration 0016), reading them costs a fraction of a
# buffer per match, and the sort key's walk (ix_metric_summary_key_run) none per entry,
# against about four buffers per run probed: the hashed set stays the cheaper form up to
# matching**2 <= want * total * this. At 1M runs, author (2%: 19,831 matches, 4,450 runs
# probed in sort order) with cold caches: 24.5 ms and 626 buffers against 458 ms and
# 17,854 buffers (benchmarks/README.md).
_SEMI_COVERED = 50.0
SEMI = "semi"


def _drive_by_filter(
    conn: Connection, dialect: str, cond: list[Any], base: Any, want: int, by_filter: bool | None
) -> bool | str:
    """Whether the metric branch reads the filter's matches rather than the sort key's index:
    False (the sort key's index, each run probed), True (the matches, each one's value
    probed) or :data:`SEMI` (the sort key's index, tested against the matches' ids, read
    once into a hashed set; truthy: the filter's matches are read).

    PostgreSQL only (SQLite keeps the sort key's index), from the planner's row estimates
    of ``cond`` (filter and scope) and of ``base`` (the scope alone): one EXPLAIN, no
    execution. The planner alone chose the sort key's index for a 2%-selective filter
    (author, name ``like``) at 100,000 runs and looked at 6,500 runs for 100 (150 ms)."""
    if by_filter is not None:
        return by_filter
    if dialect != "postgresql" or not cond:
        return False
    (matching, covered), (total, _) = _estimates(conn, [cond, [base] if base is not None else []])
    scale = want * max(total, 1.0)
    if matching * matching > _CROSSOVER * scale:
        return SEMI if covered and matching * matching <= _SEMI_COVERED * scale else False
    return SEMI if matching * matching > scale / _SEMI_BAND else True


def _estimates(conn: Connection, conds: list[list[Any]]) -> list[tuple[float, bool]]:
    """The planner's estimate of the runs matching each of ``conds`` (PostgreSQL EXPLAIN,
    not run), and whether it would read their ids from an index alone (an Index Only
    Scan): one EXPLAIN of their UNION ALL, read from its Append's children, so one
    round trip; each condition on its own where the planner folded the Append away (a
    branch it proved empty)."""
    selects = [sa.select(s.runs.c.id).where(*c) for c in conds]
    plan = _plan(conn, sa.union_all(*selects))
    parts = plan.get("Plans", [])
    if plan.get("Node Type") != "Append" or len(parts) != len(conds):
        parts = [_plan(conn, q) for q in selects]
    return [(float(p["Plan Rows"]), p.get("Node Type") == "Index Only Scan") for p in parts]


def _plan(conn: Connection, q: Any) -> dict[str, Any]:
    compiled = q.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    raw: Any = conn.exec_driver_sql(
        "EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params
    ).scalar()
    doc = raw if isinstance(raw, list) else json.loads(raw)
    return dict(doc[0]["Plan"])
