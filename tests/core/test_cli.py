"""``labledger ls`` and ``labledger show``: JSON contract, exit codes, no tracebacks."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

import labledger

from .conftest import Script

CONTRACT = {
    "id",
    "project",
    "name",
    "status",
    "created_at",
    "ended_at",
    "runtime_s",
    "config",
    "summary",
    "tags",
    "seed",
}


@pytest.fixture
def two_runs(store_uri: str) -> list[labledger.Run]:
    runs = []
    for lr in (0.1, 0.01):
        run = labledger.init(
            "cli",
            store=store_uri,
            capture=False,
            config={"lr": lr, "net": {"depth": 2}},
            tags=["grid"],
        )
        run.log({"loss": lr * 10})
        run.log({"loss": math.nan})
        run.summary["acc"] = 1 - lr
        run.finish()
        runs.append(run)
    return runs


def test_ls_json_has_the_contract_fields(
    script: Script, store_uri: str, two_runs: list[labledger.Run]
) -> None:
    out = script.cli("ls", "--json", "--store", store_uri)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)  # strict JSON: NaN is spelled as a string
    assert [r["id"] for r in rows] == [two_runs[1].id, two_runs[0].id]  # newest first
    for r, run in zip(rows, reversed(two_runs), strict=True):
        assert set(r) >= CONTRACT
        assert r["status"] == "finished" and r["project"] == "cli" and r["name"] == run.name
        assert r["config"]["net"] == {"depth": 2}
        assert r["summary"]["loss"] == "NaN"
        assert r["tags"] == ["grid"]
    assert rows[1]["summary"]["acc"] == pytest.approx(0.9)
    only = script.cli("ls", "--json", "--project", "nope", "--store", store_uri)
    assert json.loads(only.stdout) == []


def test_ls_table_and_show_table(
    script: Script, store_uri: str, two_runs: list[labledger.Run]
) -> None:
    out = script.cli("ls", "--store", store_uri, env={"COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert two_runs[0].id[:8] in out.stdout and "finished" in out.stdout
    show = script.cli("show", two_runs[0].id[:6], "--store", store_uri, env={"COLUMNS": "200"})
    assert show.returncode == 0, show.stderr
    assert two_runs[0].id in show.stdout and "net.depth" in show.stdout


def test_show_json_by_prefix_and_name(
    script: Script, store_uri: str, two_runs: list[labledger.Run]
) -> None:
    run = two_runs[0]
    for ref in (run.id, run.id[:7], run.name):
        out = script.cli("show", ref, "--json", "--store", store_uri)
        if ref == run.name and two_runs[0].name == two_runs[1].name:
            continue
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert set(doc) >= CONTRACT
        assert doc["id"] == run.id and doc["config"]["lr"] == 0.1
        assert doc["metrics"]["loss"]["count"] == 2 and doc["metrics"]["loss"]["min"] == 1.0
        assert doc["exit_code"] is None and isinstance(
            doc["env"], dict
        )  # finish() is no process exit


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["show", "ffffffff"], "no run matches"),
        (["show", "zzz-not-a-run"], "no run matches"),
    ],
)
def test_expected_failures_exit_1_with_one_line(
    script: Script, store_uri: str, two_runs: list[labledger.Run], args: list[str], needle: str
) -> None:
    out = script.cli(*args, "--store", store_uri)
    assert out.returncode == 1
    assert needle in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_ambiguous_prefix_exits_1(script: Script, store_uri: str) -> None:
    from labledger.store import open_store

    store = open_store(store_uri)
    try:
        for k in "12":
            store.create_run({"id": "ee" + k * 30, "project": "p", "name": f"n{k}"})
    finally:
        store.close()
    out = script.cli("show", "ee", "--store", store_uri)
    assert out.returncode == 1 and "ambiguous" in out.stderr and "Traceback" not in out.stderr


def test_foreign_file_and_newer_schema_exit_1(script: Script, tmp_path: Any) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("not a database at all")
    out = script.cli("ls", "--store", f"sqlite:///{bad}")
    assert out.returncode == 1 and "not a labledger store" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert bad.read_text() == "not a database at all"


def test_usage_errors_exit_2(script: Script, store_uri: str) -> None:
    for args in (
        ["show"],
        ["ls", "--limit", "zero"],
        ["ls", "--no-such-flag"],
        ["no-such-command"],
    ):
        out = (
            script.cli(*args, "--store", store_uri)
            if args[0] != "no-such-command"
            else script.cli(*args)
        )
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_ls_on_an_empty_store(script: Script, store_uri: str) -> None:
    from labledger.store import open_store

    open_store(store_uri).close()  # an existing store with no runs (no store at all: tests/e2e)
    out = script.cli("ls", "--json", "--store", store_uri)
    assert out.returncode == 0 and json.loads(out.stdout) == []
    out = script.cli("ls", "--store", store_uri)
    assert out.returncode == 0 and "no runs yet" in out.stdout
