"""One typed run record and one list_runs signature across the stores."""

from __future__ import annotations

import inspect
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from labledger import Ledger
from labledger.remote.http import HttpStore
from labledger.store import Batch, RunRecord, RunStore
from labledger.store._lite import LiteStore
from labledger.store.sql import SqlStore

# the keys get_run adds to what list_runs gives, and those readers add on request
# (repro_of and amended are on every read: None and {} for a plain run)
_EXTRA = {"artifacts", "used_artifacts", "edits", "record_sha256", "repro", "children"}


def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    return [
        (p.name, p.kind, p.default)
        for p in inspect.signature(fn).parameters.values()
        if p.name != "self"
    ]


@pytest.mark.parametrize("method", ["list_runs", "count_runs"])
def test_list_runs_has_one_signature(method: str) -> None:
    want = _params(getattr(RunStore, method))
    assert _params(getattr(SqlStore, method)) == want
    assert _params(getattr(HttpStore, method)) == want


def test_a_run_record_has_the_typed_fields_on_every_read(any_store_uri: str) -> None:
    run_id = uuid.uuid4().hex
    run = {"id": run_id, "project": "p", "name": "n", "config": {"lr": 0.1}, "author": "me"}
    sql = SqlStore(any_store_uri)
    try:
        sql.create_run(run)
        t = time.time()
        sql.write_batch(Batch(run_id, {"loss": ([0, 1], [0.5, 0.25], [t, t])}))
        base = set(RunRecord.__annotations__) - _EXTRA
        listed = sql.list_runs(project="p")
        assert [set(r) for r in listed] == [base]
        got = sql.get_run(run_id)
        assert base <= set(got) <= set(RunRecord.__annotations__)
        assert set(got["metrics"]["loss"]) == {
            "last",
            "min",
            "max",
            "count",
            "last_step",
            "last_ts",
        }
        assert got["summary"] == {"loss": 0.25}
        assert got["repro_of"] is None and got["amended"] == {}
        with Ledger(sql, reap=False) as ledger:
            assert ledger.get(run_id)["config"] == {"lr": 0.1}
            assert [r["id"] for r in ledger.runs(project="p")] == [run_id]
    finally:
        sql.close()


def test_projects_narrows_list_and_count_on_every_sql_path(tmp_path: Path) -> None:
    store = LiteStore(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        for project in ("a", "b", "c"):
            store.create_run({"id": uuid.uuid4().hex, "project": project, "name": project})
        # LiteStore reads through SqlStore: the same signature, the same answer
        got = store.list_runs(projects=["a", "b"], order_by="name")
        assert [r["project"] for r in got] == ["a", "b"]
        assert store.count_runs(projects=["c"]) == 1
        assert store.list_runs(projects=[]) == []
    finally:
        store.close()
