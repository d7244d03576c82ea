"""Long ``in (...)`` lists (issue #12 item 11): one bound parameter, same answers as ``or``."""

from __future__ import annotations

import math
from typing import Any

import pytest
from _qhelpers import insert, make_run

from labledger.query import evaluate, parse


@pytest.fixture
def runs(store: Any) -> list[dict[str, Any]]:
    recs = [
        make_run(name="int7", config={"x": 7, "s": "b7"}, tags=["t7"], metrics={"acc": [0.7]}),
        make_run(name="float", config={"x": 2.5, "s": "a"}, tags=["other"]),
        make_run(name="str7", config={"x": "7", "s": 7}),
        make_run(name="bool", config={"x": True, "s": False}),
        make_run(name="big", config={"x": 500, "s": "zz"}, summary={"acc": math.inf}),
        make_run(name="none", config={}),
    ]
    insert(store, recs)
    return recs


def _names(store: Any, expr: str) -> list[str]:
    return sorted(r["name"] for r in store.list_runs(filter=expr))


def _python(recs: list[dict[str, Any]], expr: str) -> list[str]:
    node = parse(expr)
    return sorted(r["name"] for r in recs if evaluate(node, r))


@pytest.mark.parametrize("n", [1000, 10_000])
def test_long_in_lists_match_like_an_or_on_sqlite_and_postgresql(
    store: Any, runs: list[dict[str, Any]], n: int
) -> None:
    numbers = ", ".join(str(i) for i in range(8, 8 + n))  # 7 not among them, 500 is
    strings = ", ".join(f'"b{i}"' for i in range(n))  # "b7" is among them
    cases = {
        f"config.x in (7, {numbers})": ["big", "int7"],
        f"config.x in (2.5, {numbers})": ["big", "float"],
        f'config.x in ("7", {numbers})': ["big", "str7"],
        f"config.x in (true, {numbers})": ["big", "bool"],
        f"config.s in ({strings})": ["int7"],
        f"not config.x in ({numbers})": ["bool", "float", "int7", "none", "str7"],
        f"tags in ({strings.replace('b', 't')})": ["int7"],
        f"summary.acc in (0.7, {numbers})": ["int7"],
        f'name in ({strings}, "float")': ["float"],
    }
    for expr, expected in cases.items():
        assert _names(store, expr) == expected, expr[:60]
        if not expr.startswith("summary"):  # metrics live in the store, not the records
            assert _python(runs, expr) == expected, expr[:60]
    assert store.count_runs(filter=f"config.x in ({numbers})") == 1


def test_short_in_lists_keep_their_meaning(store: Any, runs: list[dict[str, Any]]) -> None:
    assert _names(store, "config.x in (7, 2.5)") == ["float", "int7"]
    assert _names(store, 'config.x in ("7", true)') == ["bool", "str7"]
    assert _names(store, "config.x in (7.0, 1, 2, 3, 4, 5)") == ["int7"]
