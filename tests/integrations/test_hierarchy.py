"""Run hierarchy: group, job_type, parent_run_id and the pruned status, through SQLite,
PostgreSQL, the Python evaluator and the HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import labledger
from labledger.query import evaluate, parse

from .conftest import ROOT


def _family(store: str) -> tuple[labledger.Run, list[labledger.Run]]:
    parent = labledger.init("fam", store=store, group="sweep-1", job_type="sweep", capture=False)
    kids = []
    for i, status in enumerate(["finished", "pruned", "failed"]):
        kid = labledger.init(
            "fam",
            store=store,
            group="sweep-1",
            job_type="trial",
            parent_run_id=parent.id,
            name=f"kid-{i}",
            capture=False,
        )
        kid.log({"value": float(i)})
        kid.finish(status)
        kids.append(kid)
    parent.finish()
    return parent, kids


def _check_queries(store: str, parent: labledger.Run, kids: list[labledger.Run]) -> None:
    L = labledger.Ledger(store)
    try:

        def ids(f: str) -> set[str]:
            return {r["id"] for r in L.runs(filter=f)}

        assert ids(f'parent_run_id = "{parent.id}"') == {k.id for k in kids}
        assert ids('group = "sweep-1" and job_type = "sweep"') == {parent.id}
        assert ids('status = "pruned"') == {kids[1].id}
        assert ids('job_type in ("trial") and not status = "pruned"') == {kids[0].id, kids[2].id}
        assert ids("parent_run_id exists") == {k.id for k in kids}
        assert ids('group like "sweep-*"') == {parent.id, *(k.id for k in kids)}
        rec = L.get(kids[1].id)
        assert (rec["status"], rec["group"], rec["job_type"], rec["parent_run_id"]) == (
            "pruned",
            "sweep-1",
            "trial",
            parent.id,
        )
        # the Python evaluator agrees with SQL on every run
        for f in ('group = "sweep-1"', f'parent_run_id = "{parent.id}"', 'status = "pruned"'):
            assert {r["id"] for r in L.runs() if evaluate(parse(f), r)} == ids(f)
    finally:
        L.close()


def test_hierarchy_fields_and_pruned_status_on_sqlite(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    parent, kids = _family(store)
    _check_queries(store, parent, kids)


@pytest.mark.postgres
def test_hierarchy_fields_and_pruned_status_on_postgres(pg_uri: str) -> None:
    parent, kids = _family(pg_uri)
    _check_queries(pg_uri, parent, kids)


def test_hierarchy_through_the_http_server(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "server"))
    try:
        from conftest import Server  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    srv = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path)
    srv.start()
    try:
        parent, kids = _family(srv.url)
        _check_queries(srv.url, parent, kids)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "labledger.cli",
                "show",
                parent.id,
                "--json",
                "--store",
                srv.url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        assert out.returncode == 0, out.stderr
        shown = json.loads(out.stdout)
        assert (shown["group"], shown["job_type"], shown["parent_run_id"]) == (
            "sweep-1",
            "sweep",
            None,
        )
        assert [c["name"] for c in shown["children"]] == ["kid-0", "kid-1", "kid-2"]
        assert [c["status"] for c in shown["children"]] == ["finished", "pruned", "failed"]
    finally:
        srv.stop()


def test_show_and_ls_print_the_hierarchy(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    parent, kids = _family(store)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}

    def cli(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "labledger.cli", *args, "--store", store],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    shown = cli("show", parent.id)
    assert "group sweep-1" in shown and "job type sweep" in shown
    assert "children" in shown and all(k.id[:8] in shown for k in kids)
    assert f"parent {parent.id}" in cli("show", kids[0].id)
    listing = cli("ls")
    assert "group" in next(ln for ln in listing.splitlines() if ln.startswith("┃"))
    tree = [ln for ln in cli("ls", "--tree").splitlines() if ln.startswith("│")]
    assert parent.id[:8] in tree[0] and all("└" in ln for ln in tree[1:])
    rows = json.loads(cli("ls", "--json"))
    assert {r["id"]: r["parent_run_id"] for r in rows}[kids[0].id] == parent.id


def test_init_rejects_bad_hierarchy_values(tmp_path: Path) -> None:
    with pytest.raises(labledger.UsageError, match="group"):
        labledger.init("x", store=f"sqlite:///{tmp_path / 's.db'}", group="")
    with pytest.raises(labledger.UsageError, match="job_type"):
        labledger.init("x", store=f"sqlite:///{tmp_path / 's.db'}", job_type=3)  # type: ignore[arg-type]


def test_finish_accepts_pruned_and_rejects_unknown(tmp_path: Path) -> None:
    run = labledger.init("x", store=f"sqlite:///{tmp_path / 's.db'}", capture=False)
    with pytest.raises(labledger.UsageError, match="pruned"):
        run.finish("skipped")
    run.finish("pruned")
    assert run.status == "pruned"
