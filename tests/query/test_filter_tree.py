"""A parsed filter travels as a tree: the store compiles it as it is, never from re-serialised text."""

from __future__ import annotations

from typing import Any

from _qhelpers import insert, make_run

from labledger import Ledger
from labledger._ledger import _with_metric
from labledger.query import And, Exists, Node, parse


def test_the_leaderboard_filter_is_a_tree_of_the_users_filter_and_the_metric() -> None:
    tree = _with_metric('config.opt = "adam"', "val acc")
    assert isinstance(tree, And)
    assert tree.items[0] == parse('config.opt = "adam"')
    assert isinstance(tree.items[1], Exists) and tree.items[1].field.path == ("val acc",)
    assert isinstance(_with_metric(None, "acc"), Exists)


def test_a_store_gives_the_same_runs_for_a_tree_as_for_its_text(store: Any) -> None:
    insert(
        store,
        [
            make_run(config={"lr": 0.1, "opt": "adam"}, summary={"acc": 0.9}),
            make_run(config={"lr": 0.01, "opt": "sgd"}, summary={"acc": 0.8}),
            make_run(config={"lr": 0.001, "opt": "adam"}),
        ],
    )
    text = 'config.opt = "adam" and summary.acc exists'
    tree: Node = parse(text)
    by_text = [r["id"] for r in store.list_runs(filter=text)]
    by_tree = [r["id"] for r in store.list_runs(filter=tree)]
    assert by_text == by_tree and len(by_tree) == 1
    assert store.count_runs(filter=tree) == 1
    best = Ledger(store, reap=False).best("acc", filter='config.opt = "adam"')
    assert [row["id"] for row in best] == by_tree
