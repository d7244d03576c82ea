"""The leaderboard plan (filter + sort by one metric + limit) gives the general query's rows
whichever index drives it: the sort key's (stop after N matches), the filter's (read the
matches, sort them) or the sort key's tested against the matches' ids read once (SEMI,
PostgreSQL; SQLite runs it as the filter's). The choice is a cost decision only; these
tests pin the results of each form, and of the automatic choice, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from labledger.store import _ranked_sql

AUTHORS = ["ann", "bob", "cyd"]

SHAPES = [
    "config.lr < 0.001",
    'config.optimizer = "adam"',
    "config.layers = 3",
    "config.flag = true",
    'tags = "baseline"',
    'name like "sweep-1*"',
    'author = "bob"',
    "summary.val_acc > 0.9",
    'not config.optimizer = "adam"',
    'config.optimizer in ("adam", "sgd") and author != "ann"',
    'config.optimizer = "adam" or tags = "baseline"',
    "",
]


@pytest.fixture
def ranked_store(store: Any) -> Any:
    rng = random.Random(7)
    records = []
    for i in range(120):
        metrics: dict[str, Any] = {}
        if i % 11 != 0:  # some runs have no val_acc at all
            # few distinct values: ties on the sort key, broken by created_at then id
            value = round(rng.random(), 1) if i % 3 else rng.random()
            metrics["val_acc"] = ([1], [value], [1000.0 + i])
        if i % 13 == 0:
            metrics["val_acc"] = ([1], [math.nan], [1000.0 + i])
        summary: dict[str, Any] = {}
        if i % 17 == 0:
            summary = {"val_acc": rng.random()}  # a summary override beats the series
        if i % 19 == 0:
            summary = {"val_acc": "n/a"}  # not a number: sorts after the numbers
        optimizer: Any = rng.choice(["adam", "sgd", "rmsprop"])
        if i % 23 == 0:
            optimizer = ["adam"]  # a list holding "adam" is not "adam"
        records.append(
            {
                "id": f"{i:032x}",
                "project": "p",
                "name": f"sweep-{i}",
                "created_at": 1_700_000_000.0 + (i // 20),  # equal created_at too
                "author": AUTHORS[i % 3],
                "config": {
                    "lr": 10 ** rng.uniform(-5, -1),
                    "optimizer": optimizer,
                    "layers": rng.choice([1, 2, 3, 3.0]),
                    "flag": rng.choice([True, False, 1]),
                },
                "summary": summary,
                "tags": ["baseline"] if i % 5 == 0 else ["sweep"],
                "status": "finished",
                "ended_at": 1_700_000_100.0 + i,
                "metrics": metrics,
            }
        )
    records.append({"id": "f" * 32, "project": "other", "name": "sweep-1", "author": "bob"})
    store.create_runs(records)
    return store


def _ids(store: Any, expr: str, **kw: Any) -> list[str]:
    return [r["id"] for r in store.list_runs(project="p", filter=expr or None, **kw)]


@pytest.mark.parametrize("expr", SHAPES)
@pytest.mark.parametrize("drive", ["filter", "sort", "semi", "auto"])
def test_both_driving_indexes_give_the_general_querys_rows(
    ranked_store: Any, expr: str, drive: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for order in ("-summary.val_acc", "summary.val_acc"):
        everything = _ids(ranked_store, expr, order_by=order)  # no limit: the general query
        if drive != "auto":
            choice = {"filter": True, "sort": False, "semi": _ranked_sql.SEMI}[drive]
            monkeypatch.setattr(_ranked_sql, "_drive_by_filter", lambda *a, c=choice: c)
        try:
            for limit, offset in ((1, 0), (7, 0), (25, 3), (200, 0)):
                got = _ids(ranked_store, expr, order_by=order, limit=limit, offset=offset)
                assert got == everything[offset : offset + limit], (order, limit, offset)
        finally:
            monkeypatch.undo()
    assert everything, "the shape matches something"


def test_an_equality_on_config_is_exact(ranked_store: Any) -> None:
    """``config.optimizer = "adam"`` matches the string only (not a list holding it), and its
    negation matches the rest, lists included."""
    runs = {r["id"]: r for r in ranked_store.list_runs(project="p")}
    adam = set(_ids(ranked_store, 'config.optimizer = "adam"'))
    assert adam == {i for i, r in runs.items() if r["config"]["optimizer"] == "adam"}
    assert set(_ids(ranked_store, 'not config.optimizer = "adam"')) == set(runs) - adam
    assert "00000000000000000000000000000000" not in adam  # i = 0: ["adam"]
    three = set(_ids(ranked_store, "config.layers = 3"))
    assert three == {i for i, r in runs.items() if r["config"]["layers"] == 3}


def test_the_filter_drives_when_few_runs_match(ranked_store: Any) -> None:
    """On PostgreSQL the planner's estimates choose: a filter matching a handful of runs
    drives the scan, no filter at all leaves it to the sort key's index. SQLite has no
    such estimates: it keeps the sort key's index whatever the filter."""
    import sqlalchemy as sa

    from labledger.store import _schema as s
    from labledger.store._filter_sql import compile_filter

    if ranked_store.dialect != "postgresql":
        with ranked_store.engine.begin() as conn:
            base = s.runs.c.project == "p"
            rare = sa.and_(base, compile_filter('name like "sweep-11*"', dialect="sqlite"))
            assert not _ranked_sql._drive_by_filter(conn, "sqlite", [rare], base, 1, None)
        return
    with ranked_store.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE runs"))
        base = s.runs.c.project == "p"
        rare = sa.and_(base, compile_filter('name like "sweep-11*"', dialect="postgresql"))
        assert _ranked_sql._drive_by_filter(conn, "postgresql", [rare], base, 1, None)
        assert not _ranked_sql._drive_by_filter(conn, "postgresql", [base], base, 1, None)


def test_matches_read_from_an_index_alone_keep_the_hashed_set_longer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the crossover the sort key's walk probes a run per entry; where the planner
    reads the matches' ids from an index alone (an author's runs, migration 0016) the
    hashed set stays cheaper up to 50 times further: 2% of 1M runs (author) takes it,
    not 20%, and not where the ids need the table (a GIN-indexed tag)."""
    want, total = 100, 1_000_000

    def decide(matching: float, covered: bool) -> Any:
        monkeypatch.setattr(
            _ranked_sql, "_estimates", lambda *a: [(matching, covered), (total, False)]
        )
        return _ranked_sql._drive_by_filter(None, "postgresql", [True], None, want, None)  # type: ignore[arg-type]

    assert decide(20_000, True) == _ranked_sql.SEMI
    assert decide(20_000, False) is False
    assert decide(200_000, True) is False
    assert decide(5_000, True) == _ranked_sql.SEMI  # inside the band, covered or not
    assert decide(5_000, False) == _ranked_sql.SEMI
    assert decide(100, True) is True


def test_an_authors_run_ids_come_from_an_index_alone(ranked_store: Any) -> None:
    """On PostgreSQL the estimate that chooses the form sees an Index Only Scan for an
    author filter (``ix_runs_author_project``), and the walk in sort order reads each
    entry's run id from ``ix_metric_summary_key_run``: the two covering indexes of
    migration 0016, once VACUUM has marked the pages all-visible."""
    import sqlalchemy as sa

    from labledger.store import _schema as s
    from labledger.store._filter_sql import compile_filter

    if ranked_store.dialect != "postgresql":  # SQLite keeps the sort key's walk
        with ranked_store.engine.begin() as conn:
            base = s.runs.c.project == "p"
            author = sa.and_(base, compile_filter('author = "bob"', dialect="sqlite"))
            assert _ranked_sql._drive_by_filter(conn, "sqlite", [author], base, 100, None) is False
            indexes = {r[1] for r in conn.execute(sa.text("PRAGMA index_list('runs')"))}
            assert "ix_runs_author" in indexes and "ix_runs_author_project" not in indexes
        return
    with ranked_store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE runs"))
        conn.execute(sa.text("VACUUM ANALYZE metric_summary"))
    with ranked_store.engine.begin() as conn:
        # a table this small is cheaper to scan: ask which index the plan would use
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        conn.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
        base = s.runs.c.project == "p"
        author = sa.and_(base, compile_filter('author = "bob"', dialect="postgresql"))
        (matching, covered), (total, _) = _ranked_sql._estimates(conn, [[author], [base]])
        assert covered and 0 < matching < total
        walk = _ranked_sql._plan(
            conn,
            sa.select(s.metric_summary.c.run_id)
            .where(s.metric_summary.c.key == "val_acc")
            .order_by(s.metric_summary.c.last.desc())
            .limit(5),
        )
        assert "Index Only Scan" in str(walk), walk
