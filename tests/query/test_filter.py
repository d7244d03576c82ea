"""The filter language on real stores: semantics, sorting, errors and injection attempts."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from _qhelpers import insert, make_run

from labledger import Ledger
from labledger._exceptions import InvalidFilterError
from labledger.query import evaluate, parse


def _names(store: Any, expr: str, **kw: Any) -> list[str]:
    return [r["name"] for r in store.list_runs(filter=expr, **kw)]


@pytest.fixture
def populated(store: Any) -> Any:
    insert(
        store,
        [
            make_run(
                name="r1",
                config={
                    "lr": 0.001,
                    "opt": "adam",
                    "model": {"depth": 50, "act": "relu"},
                    "bs": 64,
                },
                metrics={"val_acc": [0.5, 0.91], "loss": [1.0, math.nan]},
                tags=["baseline", "gpu"],
                created_at=1_700_000_000.0,
                seed=1,
                env={"git": {"commit": "aaa", "dirty": True}},
            ),
            make_run(
                name="r2",
                config={"lr": 0.01, "opt": "sgd", "model": {"depth": 18}, "bs": "64"},
                metrics={"val_acc": [0.8]},
                summary={"val_acc": 0.95, "note": "best"},
                tags=["gpu"],
                created_at=1_700_100_000.0,
                status="failed",
                env={"git": {"commit": "bbb", "dirty": False}},
            ),
            make_run(
                name="r3",
                config={"lr": 0.1, "opt": "adam", "flag": True},
                metrics={"val_acc": [math.inf]},
                created_at=1_700_200_000.0,
                status="running",
            ),
            make_run(
                name="r4",
                config={"lr": "0.1", "flag": False},
                created_at=1_700_300_000.0,
                summary={"val_acc": "n/a"},
            ),
        ],
    )
    return store


CASES = [
    ("config.lr < 0.05", ["r1", "r2"]),  # r4's lr is a string: not a number, not matched
    ("config.lr = 0.1", ["r3"]),
    ('config.lr = "0.1"', ["r4"]),
    ("config.bs = 64", ["r1"]),
    ('config.bs = "64"', ["r2"]),
    ("config.model.depth >= 18 and config.model.depth < 50", ["r2"]),
    ("config.model.act exists", ["r1"]),
    ("not config.model exists", ["r3", "r4"]),
    ("config.flag = true", ["r3"]),
    ("config.flag != true", ["r4"]),
    ('config.opt in ("adam", "rmsprop")', ["r1", "r3"]),
    ('config.opt like "a*"', ["r1", "r3"]),
    ('config.opt like "?gd"', ["r2"]),
    ('config.opt like "A*"', []),  # case-sensitive on both databases
    ('config.opt != "adam"', ["r2"]),  # missing keys never match a comparison
    ('not config.opt = "adam"', ["r2", "r4"]),
    ("summary.val_acc > 0.9", ["r1", "r2", "r3"]),  # r2's explicit 0.95 overrides its metric's 0.8
    ("summary.val_acc < 0.9", []),
    ("summary.val_acc > 1e308", ["r3"]),  # infinity compares as a number
    ('summary.val_acc = "n/a"', ["r4"]),
    ("summary.loss exists", ["r1"]),
    ("summary.loss != 1", []),  # a NaN last value matches no comparison
    ("summary.loss < 1 or summary.loss >= 1", []),
    ('summary.note = "best"', ["r2"]),
    ('tags = "gpu"', ["r1", "r2"]),
    ('tags != "baseline"', ["r2", "r3", "r4"]),
    ('tags in ("baseline", "x")', ["r1"]),
    ('tags like "g*"', ["r1", "r2"]),
    ("tags exists", ["r1", "r2"]),
    ('status = "finished"', ["r1", "r4"]),
    ('status in ("failed", "running")', ["r2", "r3"]),
    ('name like "r*" and not name = "r2"', ["r1", "r3", "r4"]),
    ("created_at >= 1700100000", ["r2", "r3", "r4"]),
    ('env.git.commit = "aaa"', ["r1"]),
    ("env.git.dirty = false", ["r2"]),
    ("seed = 1", ["r1"]),
    ("seed exists", ["r1"]),
    ("ended_at exists", ["r1", "r2", "r4"]),
    ('(config.opt = "adam" or config.opt = "sgd") and summary.val_acc >= 0.95', ["r2", "r3"]),
    ("params.lr < 0.05 and metrics.val_acc > 0.9", ["r1", "r2"]),  # MLflow-style aliases
]


@pytest.mark.parametrize(("expr", "expected"), CASES)
def test_filter_selects_expected_runs(populated: Any, expr: str, expected: list[str]) -> None:
    got = sorted(_names(populated, expr))
    assert got == expected
    # the Python evaluator agrees on the same runs
    assert sorted(r["name"] for r in populated.list_runs() if evaluate(parse(expr), r)) == expected


def test_iso_dates_compare_with_created_at(populated: Any) -> None:
    cut = dt.datetime.fromtimestamp(1_700_150_000.0).isoformat()
    assert sorted(_names(populated, f'created_at > "{cut}"')) == ["r3", "r4"]
    utc = dt.datetime.fromtimestamp(1_700_150_000.0, tz=dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert sorted(_names(populated, f'created_at < "{utc}"')) == ["r1", "r2"]


def test_sort_by_metric_descending_puts_missing_last(populated: Any) -> None:
    # numbers first (inf, 0.95, 0.91), then strings ("n/a"); no run lacks val_acc here
    assert _names(populated, "", order_by="-summary.val_acc") == ["r3", "r2", "r1", "r4"]
    assert _names(populated, "", order_by="summary.val_acc") == ["r1", "r2", "r3", "r4"]
    # runs without the key come last, newest first among themselves
    assert _names(populated, "", order_by=["-config.model.depth"]) == ["r1", "r2", "r4", "r3"]
    assert _names(populated, "", order_by=["config.model.depth"]) == ["r2", "r1", "r4", "r3"]


def test_sort_by_config_mixes_numbers_then_strings(populated: Any) -> None:
    assert _names(populated, "", order_by="config.lr") == ["r1", "r2", "r3", "r4"]
    assert _names(populated, "", order_by="-config.lr") == ["r3", "r2", "r1", "r4"]
    assert _names(populated, "", order_by="created_at") == ["r1", "r2", "r3", "r4"]


def test_ledger_runs_filter_sort_limit(populated: Any) -> None:
    ledger = Ledger(populated, reap=False)
    best = ledger.runs(filter='status != "running"', order_by="-summary.val_acc", limit=1)
    assert [r["name"] for r in best] == ["r2"]
    assert ledger.count(filter="config.lr < 1") == 3


@pytest.mark.parametrize(
    ("expr", "message", "position"),
    [
        ("status > 3", "status is text", 9),
        ('created_at = "abc"', "is not a time", 13),
        ("config.lr <", "expected a number", 11),
        ("(config.lr < 1", "expected ')'", 14),
        ("config.lr < 1)", "unbalanced ')'", 13),
        ("lr < 1", "unknown field 'lr'", 0),
        ('tags > "a"', "tags are a set", 7),
        ('status = "done"', "unknown status", 9),
        ("config.lr < adam", "quote strings", 12),
        ("config.flag > true", "true/false", 14),
        ('created_at like "2024*"', "like", 16),
        ("config < 1", "config needs a key", 0),
        ("", "empty filter", 0),
        ('config.x = "abc', "unterminated string", 11),
        ("config.a = 1 and", "expected a field", 16),
        ("config.a = 1 config.b = 2", "expected 'and', 'or'", 13),
    ],
)
def test_invalid_filters_raise_with_caret(expr: str, message: str, position: int) -> None:
    with pytest.raises(InvalidFilterError) as info:
        parse(expr)
    err = info.value
    assert message in err.message
    assert err.position == position
    if expr:
        lines = str(err).splitlines()
        assert lines[1].strip() == expr.strip()
        assert lines[2] == "  " + " " * position + "^"


def test_type_errors_surface_from_the_store(populated: Any) -> None:
    with pytest.raises(InvalidFilterError):
        populated.list_runs(filter="status > 3")
    with pytest.raises(InvalidFilterError):
        populated.list_runs(order_by="-tags")


INJECTIONS = [
    "config.lr = 1; DROP TABLE runs",
    "config.lr = 1 -- comment",
    'name = "x" or 1=1',
    "name = 'x'' OR ''1''=''1'",
    'config.`a"); DROP TABLE runs; --` = 1',
    "config.a = 1 /* */",
    'name = "\x00"',
    'name = "\\ud800"',
]


@pytest.mark.parametrize("expr", INJECTIONS)
def test_injection_attempts_are_rejected(populated: Any, expr: str) -> None:
    with pytest.raises(InvalidFilterError):
        populated.list_runs(filter=expr)
    assert len(populated.list_runs()) == 4


@pytest.mark.parametrize(
    "value",
    [
        "'; DROP TABLE runs; --",
        '" OR 1=1 --',
        "Robert'); --",
        "ünï☃de",
        "%",
        "_",
        "\\",
        "a\nb",
        "$.x",
        "') OR ('1'='1",
    ],
)
def test_hostile_strings_are_harmless_data(store: Any, value: str) -> None:
    insert(
        store,
        [
            make_run(name="target", config={"k": value, value: 1}),
            make_run(name="other", config={"k": "x"}),
        ],
    )
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    assert _names(store, f"config.k = {quoted}") == ["target"]
    assert _names(store, f"name like {quoted}") == []
    assert sorted(_names(store, "config.k exists")) == ["other", "target"]
    if '"' not in value and "\\" not in value and "`" not in value and "\n" not in value:
        assert _names(store, f"config.`{value}` = 1") == ["target"]


def test_deep_nesting_is_refused_cleanly() -> None:
    with pytest.raises(InvalidFilterError, match="nests deeper"):
        parse("(" * 200 + "config.a = 1" + ")" * 200)
    with pytest.raises(InvalidFilterError, match="longer than"):
        parse("config.a = 1 or " * 70_000 + "config.a = 1")  # over MAX_LENGTH (1,000,000)


def test_numbers_compare_as_numbers_not_strings(store: Any) -> None:
    insert(
        store,
        [make_run(name=str(v), config={"lr": v}) for v in (0.0001, 0.001, 0.01, 0.1, 1e-05, 2)],
    )
    assert sorted(_names(store, "config.lr < 0.002"), key=float) == ["1e-05", "0.0001", "0.001"]
    assert [r["name"] for r in store.list_runs(order_by="config.lr")] == [
        "1e-05",
        "0.0001",
        "0.001",
        "0.01",
        "0.1",
        "2",
    ]
    assert math.isclose(float(_names(store, "config.lr >= 2")[0]), 2)


@pytest.mark.parametrize(
    "expr",
    [
        "summary.val_acc > 0.9",
        "summary.val_acc > 0.92 and config.lr < 1",
        "summary.val_acc <= 0.91",
        "summary.val_acc = 0.8",  # r2's metric, overridden by its summary: no match
        "summary.val_acc >= 0.95 and summary.val_acc < 2",
        "not summary.val_acc > 0.92",
    ],
)
def test_a_filter_on_the_sort_key_bounds_the_ranked_plan(populated: Any, expr: str) -> None:
    """The ranked plan (a limit) turns ``summary.K op x`` into a range on its index; it
    returns what the general query (no limit) returns, in the same order."""
    for order in ("-summary.val_acc", "summary.val_acc"):
        everything = _names(populated, expr, order_by=order)
        for limit in (1, 2, 10):
            assert _names(populated, expr, order_by=order, limit=limit) == everything[:limit]


def test_counts_stop_at_the_cap(populated: Any) -> None:
    assert populated.count_runs() == 4
    assert populated.count_runs(cap=2) == 2
    assert populated.count_runs(cap=10) == 4
    assert populated.count_runs(filter='tags = "gpu"', cap=1) == 1
    assert populated.count_runs(filter='not tags = "gpu"') == 2
