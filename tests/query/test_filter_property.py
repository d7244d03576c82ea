"""Property tests: SQL (SQLite and PostgreSQL) selects exactly the runs the Python evaluator accepts."""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from _qhelpers import insert, make_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labledger.query import (
    And,
    Compare,
    Exists,
    Field,
    InList,
    Like,
    Not,
    Or,
    evaluate,
    parse,
    to_text,
)
from labledger.store import _schema as s

# Text without NUL or surrogates (neither SQL back end can hold them; the parser rejects them).
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=6,
)
SMALL_TEXT = st.sampled_from(
    ["", "a", "ab", "b", "A", "é", "日本", "a*b", "x y", "'; --", '"q"', "[z]", "%_"]
)
NUMBERS = st.one_of(
    st.integers(-5, 5),
    st.sampled_from([0.0, -0.5, 0.001, 1e-05, 0.25, 2.5, 1000.0, 1e12, -3.75]),
)
LEAF_VALUES = st.one_of(
    NUMBERS, SMALL_TEXT, TEXT, st.booleans(), st.none(), st.just([1, "a"]), st.just({"k": 1})
)
METRIC_VALUES = st.one_of(NUMBERS.map(float), st.sampled_from([math.nan, math.inf, -math.inf]))
KEYS = ("a", "b", "é", "0")
METRIC_KEYS = ("m1", "train/loss")
TAGS = ("a", "b", "x y", "ü", "a*")


@st.composite
def runs(draw: Any) -> dict[str, Any]:
    config = draw(st.dictionaries(st.sampled_from(KEYS), LEAF_VALUES, max_size=3))
    if draw(st.booleans()):
        config["n"] = draw(
            st.one_of(st.dictionaries(st.sampled_from(KEYS), LEAF_VALUES, max_size=2), LEAF_VALUES)
        )
    metrics = draw(
        st.dictionaries(
            st.sampled_from(METRIC_KEYS),
            st.lists(METRIC_VALUES, min_size=1, max_size=3),
            max_size=2,
        )
    )
    summary = draw(
        st.dictionaries(
            st.sampled_from(METRIC_KEYS),
            st.one_of(METRIC_VALUES, SMALL_TEXT, st.booleans()),
            max_size=2,
        )
    )
    return make_run(
        config=config,
        metrics=metrics,
        summary=summary,
        name=draw(st.one_of(SMALL_TEXT, TEXT)) or "n",
        project=draw(st.sampled_from(["p", "q", "P"])),
        status=draw(st.sampled_from(["running", "finished", "failed", "crashed", "killed"])),
        created_at=draw(st.sampled_from([1.0e9, 1.5e9, 1.7e9, 1.7e9 + 0.5])),
        tags=sorted(draw(st.sets(st.sampled_from(TAGS), max_size=3))),
        env=draw(
            st.sampled_from(
                [
                    {},
                    {"git": {"commit": "abc", "dirty": True}},
                    {"git": {"commit": "abd", "dirty": False}},
                ]
            )
        ),
        seed=draw(st.one_of(st.none(), st.integers(0, 3))),
    )


JSON_FIELDS = st.one_of(
    st.tuples(st.sampled_from(KEYS)).map(lambda p: Field("config", p)),
    st.tuples(st.just("n"), st.sampled_from(KEYS)).map(lambda p: Field("config", p)),
    st.just(Field("config", ("n",))),
    st.sampled_from(METRIC_KEYS).map(lambda k: Field("summary", (k,))),
    st.sampled_from(METRIC_KEYS).map(lambda k: Field("summary", (k,))),
    st.sampled_from(
        [Field("env", ("git", "commit")), Field("env", ("git", "dirty")), Field("env", ("git",))]
    ),
)
OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
PATTERNS = st.one_of(
    SMALL_TEXT, st.sampled_from(["*", "a*", "*b", "?", "a?", "*'*", "[*", "%", "_*", "日*"])
)


def leaf() -> st.SearchStrategy[Any]:
    json_literal = st.one_of(NUMBERS, SMALL_TEXT, TEXT)
    json_cmp = st.one_of(
        st.builds(Compare, JSON_FIELDS, OPS, NUMBERS),
        st.builds(Compare, JSON_FIELDS, OPS, json_literal),
        st.builds(Compare, JSON_FIELDS, st.sampled_from(["=", "!="]), st.booleans()),
    )
    str_col = st.sampled_from([Field("name"), Field("project"), Field("id")])
    col_cmp = st.one_of(
        st.builds(Compare, str_col, OPS, st.one_of(SMALL_TEXT, TEXT)),
        st.builds(
            Compare,
            st.just(Field("status")),
            st.sampled_from(["=", "!="]),
            st.sampled_from(["running", "finished", "failed"]),
        ),
        st.builds(
            Compare,
            st.sampled_from([Field("created_at"), Field("seed"), Field("ended_at")]),
            OPS,
            st.sampled_from([1.5e9, 1.7e9, 2, 1, 0.0]),
        ),
    )
    tags = st.one_of(
        st.builds(
            Compare, st.just(Field("tags")), st.sampled_from(["=", "!="]), st.sampled_from(TAGS)
        ),
        st.builds(
            InList,
            st.just(Field("tags")),
            st.lists(st.sampled_from(TAGS), min_size=1, max_size=2).map(tuple),
        ),
        st.builds(Like, st.just(Field("tags")), PATTERNS),
        st.just(Exists(Field("tags"))),
    )
    others = st.one_of(
        st.builds(InList, JSON_FIELDS, st.lists(json_literal, min_size=1, max_size=3).map(tuple)),
        st.builds(Like, st.one_of(JSON_FIELDS, str_col), PATTERNS),
        st.builds(
            Exists, st.one_of(JSON_FIELDS, st.sampled_from([Field("ended_at"), Field("seed")]))
        ),
    )
    return st.one_of(json_cmp, json_cmp, col_cmp, tags, others)


FILTERS = st.recursive(
    leaf(),
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    ),
    max_leaves=6,
)


def _reset(store: Any) -> None:
    with store.engine.begin() as conn:
        for t in (s.metric_summary, s.metric_chunks, s.applied_batches, s.runs):
            conn.execute(sa.delete(t))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.lists(runs(), min_size=1, max_size=6), filters=st.lists(FILTERS, min_size=1, max_size=4)
)
def test_sql_matches_python_evaluation(
    store: Any, data: list[dict[str, Any]], filters: list[Any]
) -> None:
    _reset(store)
    insert(store, data)
    stored = store.list_runs()
    assert len(stored) == len(data)
    for node in filters:
        text = to_text(node)
        assert parse(text) == node
        expected = {r["id"] for r in stored if evaluate(node, r)}
        got = {r["id"] for r in store.list_runs(filter=text)}
        assert got == expected, text
        assert store.count_runs(filter=text) == len(expected)


def _sort_key_value(run: dict[str, Any], key: str) -> tuple[float | None, str | None]:
    v = run["summary"].get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v):
        return float(v), None
    return None, v if isinstance(v, str) else None


def _python_order(runs_: list[dict[str, Any]], key: str, desc: bool) -> list[str]:
    """Reference order: numbers, then strings, then the rest; ties newest first, then id."""

    def k(r: dict[str, Any]) -> tuple[Any, ...]:
        num, text = _sort_key_value(r, key)
        sign = -1 if desc else 1
        return (
            num is None,
            sign * num if num is not None else 0.0,
            text is None,
            tuple(sign * ord(c) for c in text) + ((sign * -1,) if desc else (0,))
            if text is not None
            else (),
            -r["created_at"],
            r["id"],
        )

    return [r["id"] for r in sorted(runs_, key=k)]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.lists(runs(), min_size=1, max_size=8),
    node=st.one_of(st.none(), FILTERS),
    key=st.sampled_from(METRIC_KEYS),
    desc=st.booleans(),
    limit=st.integers(1, 9),
    offset=st.integers(0, 4),
)
def test_sorted_top_n_matches_python_order(
    store: Any, data: list[dict[str, Any]], node: Any, key: str, desc: bool, limit: int, offset: int
) -> None:
    _reset(store)
    insert(store, data)
    stored = store.list_runs()
    text = to_text(node) if node is not None else None
    matching = [r for r in stored if node is None or evaluate(node, r)]
    expected = _python_order(matching, key, desc)
    order = ("-" if desc else "") + f"summary.`{key}`"
    assert [r["id"] for r in store.list_runs(filter=text, order_by=order)] == expected
    got = [
        r["id"] for r in store.list_runs(filter=text, order_by=order, limit=limit, offset=offset)
    ]
    assert got == expected[offset : offset + limit]
