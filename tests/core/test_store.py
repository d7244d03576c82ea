"""The store under stress and misuse: concurrent writers, migration races, foreign files."""

from __future__ import annotations

import hashlib
import math
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import labledger
from labledger import NotAStoreError, SchemaTooNewError, StoreUnwritableError
from labledger.store import Batch, open_store

from .conftest import Script

WRITER = """
import os, sys, time, labledger
t0 = float(os.environ["T0"])
run = labledger.init("conc", store=os.environ["URI"], name="w" + os.environ["K"])
n = int(os.environ["N"])
while time.time() < t0:
    time.sleep(0.001)
for i in range(n):
    run.log({"x": float(i), "y": float(-i)})
    if i % 5000 == 0:
        time.sleep(0.001)  # give the other writers a chance on 2 cores
run.finish()
print("RUN", run.id, flush=True)
"""


def _concurrent_writers(script: Script, uri: str, procs: int, points: int) -> list[str]:
    t0 = time.time() + 2.0
    ps = [
        script.start(WRITER, env={"URI": uri, "K": str(k), "N": str(points), "T0": str(t0)})
        for k in range(procs)
    ]
    ids = []
    for p in ps:
        out, err = p.communicate(timeout=170)
        assert p.returncode == 0, err[-2000:]
        assert "locked" not in err.lower(), err[-2000:]
        assert "Warning" not in err, err[-2000:]
        ids += [line.split()[1] for line in out.splitlines() if line.startswith("RUN ")]
    assert len(ids) == procs
    return ids


def test_eight_processes_times_50k_points_into_one_sqlite_store(
    script: Script, store_uri: str, ledger_of: Any
) -> None:
    n = 25_000  # 25k steps x 2 keys = 50k points per process
    ids = _concurrent_writers(script, store_uri, 8, n)
    led = ledger_of(store_uri)
    expected = np.arange(n, dtype=float)
    for rid in ids:
        r = led.get(rid)
        assert r["status"] == "finished"
        hx = led.history(rid, "x")
        assert np.array_equal(hx.values, expected) and np.array_equal(hx.steps, np.arange(n))
        assert np.array_equal(led.history(rid, "y").values, -expected)
        assert r["metrics"]["x"]["count"] == n and r["metrics"]["x"]["max"] == n - 1


def test_concurrent_processes_into_postgresql(script: Script, pg_uri: str, ledger_of: Any) -> None:
    n = 5_000
    ids = _concurrent_writers(script, pg_uri, 4, n)
    led = ledger_of(pg_uri)
    for rid in ids:
        assert led.history(rid, "x").values.tolist() == [float(i) for i in range(n)]
        assert led.get(rid)["metrics"]["y"]["min"] == -(n - 1)


def test_processes_opening_a_brand_new_store_at_once(
    script: Script, tmp_path: Path, ledger_of: Any
) -> None:
    uri = f"sqlite:///{tmp_path / 'fresh' / 'ledger.db'}"
    _concurrent_writers(script, uri, 6, 10)
    assert len(ledger_of(uri).runs()) == 6


def test_migrations_race_on_postgresql(script: Script, pg_uri: str, ledger_of: Any) -> None:
    _concurrent_writers(script, pg_uri, 4, 10)
    assert len(ledger_of(pg_uri).runs()) == 4


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_a_foreign_sqlite_file_is_refused_and_untouched(tmp_path: Path) -> None:
    (tmp_path / "foreign").mkdir()
    path = tmp_path / "foreign" / "other.db"
    con = sqlite3.connect(path)
    con.execute("create table customers (id integer primary key, name text)")
    con.execute("insert into customers values (1, 'ada')")
    con.commit()
    con.close()
    before = _digest(path)
    with pytest.raises(NotAStoreError, match="not a labledger store"):
        labledger.init("p", store=f"sqlite:///{path}", capture=False)
    with pytest.raises(NotAStoreError):
        open_store(f"sqlite:///{path}")
    assert _digest(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["other.db"]  # no -wal, no lock file


@pytest.mark.parametrize("content", [b"hello, not a database\n" * 10, b"\x00" * 4096])
def test_a_non_sqlite_file_is_refused_and_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(content)
    with pytest.raises(NotAStoreError):
        labledger.init("p", store=str(path), capture=False)
    assert path.read_bytes() == content


def test_a_store_from_a_newer_labledger_is_refused_and_untouched(store_uri: str) -> None:
    open_store(store_uri).close()
    path = Path(store_uri.split(":///", 1)[1])
    con = sqlite3.connect(path)
    con.execute("update labledger_meta set value = value || ',9999' where key = 'revisions'")
    con.commit()
    con.close()
    before = _digest(path)
    with pytest.raises(SchemaTooNewError, match="9999"):
        labledger.init("p", store=store_uri, capture=False)
    with pytest.raises(SchemaTooNewError):
        open_store(store_uri)
    assert _digest(path) == before


def test_newer_schema_on_postgresql_is_refused(pg_uri: str) -> None:
    import sqlalchemy as sa

    open_store(pg_uri).close()
    eng = sa.create_engine(pg_uri)
    with eng.begin() as conn:
        conn.execute(
            sa.text("update labledger_meta set value = value || ',9999' where key = 'revisions'")
        )
    eng.dispose()
    with pytest.raises(SchemaTooNewError):
        open_store(pg_uri)


def test_unwritable_store_path_fails_at_init(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StoreUnwritableError, match="a-file"):
        labledger.init("p", store=f"sqlite:///{blocker}/sub/ledger.db", capture=False)
    with pytest.raises(NotAStoreError, match="directory"):
        (tmp_path / "dir.db").mkdir()
        labledger.init("p", store=f"sqlite:///{tmp_path / 'dir.db'}", capture=False)


def test_downsampling_keeps_a_single_spike_in_a_million_points(
    store_uri: str, ledger_of: Any
) -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    vals = rng.normal(0.0, 1.0, n)
    vals[777_777] = 1e6
    vals[123_456] = -1e6
    vals[5] = math.nan
    store = open_store(store_uri)
    try:
        store.create_run({"id": "c" * 32, "project": "p", "name": "big"})
        store.write_batch(Batch("c" * 32, {"loss": (np.arange(n), vals, np.zeros(n))}))
    finally:
        store.close()
    led = ledger_of(store_uri)
    full = led.history("c" * 32, "loss")
    assert len(full) == n and full.total == n
    assert np.array_equal(full.values, vals, equal_nan=True)
    small = led.history("cccc", "loss", max_points=1000)
    assert 900 <= len(small) <= 1000 and small.total == n
    assert 1e6 in small.values and -1e6 in small.values
    assert 777_777 in small.steps and 123_456 in small.steps
    assert bool(np.all(np.diff(small.steps) > 0))
    assert not np.isnan(small.values).any()  # NaN only survives in an all-NaN bucket
    with pytest.raises(labledger.UsageError):
        led.history("cccc", "loss", max_points=1)


def test_store_that_breaks_mid_run_warns_once_and_catches_up(
    any_store_uri: str, ledger_of: Any
) -> None:
    """A real fault: the metric table disappears under the writer, then comes back."""
    import sqlalchemy as sa

    from labledger.store.sql import SqlStore

    run = labledger.init("p", store=any_store_uri, capture=False)
    run.log({"x": 0.0})
    assert run.flush(30)
    admin = SqlStore(any_store_uri)
    with admin._tx() as conn:
        conn.execute(sa.text("ALTER TABLE metric_chunks RENAME TO metric_chunks_away"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = time.perf_counter()
        for i in range(1, 50_001):
            run.log({"x": float(i)})
        elapsed = time.perf_counter() - t
        time.sleep(0.6)  # several failed write attempts
        assert not run.flush(0.2)
    assert elapsed < 10  # logging never waited on the broken store (a loose, non-timing bound)
    mine = [w for w in caught if "could not write run" in str(w.message)]
    assert len(mine) == 1, [str(w.message) for w in caught]
    assert issubclass(mine[0].category, RuntimeWarning)
    with admin._tx() as conn:
        conn.execute(sa.text("ALTER TABLE metric_chunks_away RENAME TO metric_chunks"))
    admin.close()
    run.finish()
    h = ledger_of(any_store_uri).history(run.id, "x")
    assert h.values.tolist() == [float(i) for i in range(50_001)]
    assert ledger_of(any_store_uri).get(run.id)["status"] == "finished"


def test_batches_are_applied_at_most_once(any_store_uri: str, ledger_of: Any) -> None:
    store = open_store(any_store_uri)
    try:
        store.create_run({"id": "d" * 32, "project": "p", "name": "idem"})
        b = Batch("d" * 32, {"x": ([0, 1], [1.0, 2.0], [0.0, 0.0])})
        assert store.write_batch(b) is True
        assert store.write_batch(b) is False
    finally:
        store.close()
    led = ledger_of(any_store_uri)
    assert led.history("d" * 32, "x").values.tolist() == [1.0, 2.0]
    assert led.get("d" * 32)["metrics"]["x"]["count"] == 2


def test_long_series_spans_chunks_and_reads_back(
    any_store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    run = labledger.init("p", store=any_store_uri, capture=False)
    finish_all.append(run)
    n = 30_000
    for i in range(n):
        run.log({"a": float(i)})
        if i % 7000 == 0:
            run.flush()  # several batches, so the open tail chunk is extended
    run.finish()
    h = ledger_of(any_store_uri).history(run.id, "a")
    assert h.values.tolist() == [float(i) for i in range(n)]


def test_default_store_folder_is_ignored_by_git(tmp_path: Path) -> None:
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    from labledger.store._locate import default_store_uri, precheck_sqlite, sqlite_path

    db = sqlite_path(default_store_uri(repo))
    precheck_sqlite(db)
    db.write_bytes(b"")
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert status.stdout.strip() == ""
    assert (db.parent / ".gitignore").read_text().strip().endswith("*")


def test_create_runs_in_bulk_matches_create_run(any_store_uri: str, ledger_of: Any) -> None:
    """create_runs: one transaction, new projects created, ended runs chained, all or none."""
    store = open_store(any_store_uri)
    try:
        t = time.time()
        records = [
            {
                "id": f"{i:032x}",
                "project": f"bulk{i % 2}",
                "name": f"r{i}",
                "status": "finished" if i % 3 == 0 else "running",
                "created_at": t + i,
                "ended_at": t + i + 1 if i % 3 == 0 else None,
                "config": {"lr": i / 10, "opt": "adam"},
                "tags": ["bulk", f"t{i}"],
                "author": "carol" if i == 4 else None,
                "metrics": {"acc": ([2, 1], [i / 10, 0.0], [t, t])} if i % 2 else {},
            }
            for i in range(1, 7)
        ]
        assert store.create_runs(records, actor="alice") == 6
        assert store.create_runs([]) == 0
        store.create_run({"id": "e" * 32, "project": "one", "name": "single"})
        with pytest.raises(sa.exc.IntegrityError):  # a duplicate id: none of that call is created
            store.create_runs(
                [{"id": "f" * 32, "project": "bulk9", "name": "x"}, records[0]], actor="alice"
            )
        assert store.audit_verify()["ok"] is True
        chained = {r["id"] for r in records if store.record_history(r["id"])}
    finally:
        store.close()
    led = ledger_of(any_store_uri)
    assert {p["project"] for p in led.projects()} == {"bulk0", "bulk1", "one"}
    got = {r["id"]: r for r in led.runs(project="bulk1")} | {
        r["id"]: r for r in led.runs(project="bulk0")
    }
    assert len(got) == 6
    r4 = got[f"{4:032x}"]
    assert (r4["author"], r4["config"], r4["tags"]) == (
        "carol",
        {"lr": 0.4, "opt": "adam"},
        ["bulk", "t4"],
    )
    assert got[f"{5:032x}"]["author"] == "alice"
    assert chained == {f"{i:032x}" for i in (3, 6)}
    assert led.history(f"{3:032x}", "acc").steps.tolist() == [1, 2]
    assert led.get(f"{3:032x}")["summary"]["acc"] == 0.3
    assert [r["name"] for r in led.runs(order_by="-summary.acc", limit=2)] == ["r5", "r3"]
    assert [r["name"] for r in led.runs(filter="config.lr > 0.35", order_by="config.lr")] == [
        "r4",
        "r5",
        "r6",
    ]


def test_reading_back_records_plans_with_their_values_on_postgresql(pg_uri: str) -> None:
    """The record read-back that bulk creation, sealing and ``audit verify`` run (``IN``
    lists of up to 500 ids) is planned with its values for its transaction
    (``plan_cache_mode``), and only for it: a generic plan fixed while ``runs`` was small
    made bulk creation 5x slower by 60k runs, and custom plans for every statement made
    ``export`` 17% slower. A statement prepared in that transaction and run past the
    point where PostgreSQL may switch to a generic plan is still planned with its values."""
    from labledger.store._sqla import SaDb
    from labledger.store._statements import record_fields
    from labledger.store.sql import SqlStore

    store = SqlStore(pg_uri)
    try:
        rid = "ab" * 16
        store.create_runs([{"id": rid, "project": "p", "name": "n", "created_at": time.time()}])
        with store.engine.begin() as conn:
            assert conn.execute(sa.text("SHOW plan_cache_mode")).scalar() == "auto"
            assert set(record_fields(SaDb(conn, "postgresql"), [rid])) == {rid}
            assert conn.execute(sa.text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
            conn.execute(
                sa.text("PREPARE ids(text, text) AS SELECT id FROM runs WHERE id IN ($1, $2)")
            )
            for _ in range(8):  # past the 5 custom plans after which a generic one may win
                conn.execute(sa.text("EXECUTE ids('a', 'b')")).all()
            plan = "\n".join(r[0] for r in conn.execute(sa.text("EXPLAIN EXECUTE ids('a', 'b')")))
            assert "$1" not in plan and "{a,b}" in plan, plan
        with store.engine.begin() as conn:  # the setting ended with its transaction
            assert conn.execute(sa.text("SHOW plan_cache_mode")).scalar() == "auto"
    finally:
        store.close()
