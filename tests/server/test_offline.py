"""A client that starts while the server is down spools to disk; `labledger sync` uploads it later."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from labledger.store.sql import SqlStore

from .conftest import Server, cli_env, labledger

SCRIPT = """
import labledger, math
run = labledger.init(project="offline", config={"lr": 0.5})
for i in range(5000):
    run.log({"loss": 1.0 / (i + 1), "acc": i % 7})
run.log({"loss": math.nan})
run.summary["best"] = math.inf
run.finish()
print(run.id)
"""


def test_client_started_while_server_down_syncs_later(
    pg_uri: str, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    from tests.conftest import run_script

    spool = tmp_path / "spool"
    srv = Server(pg_uri, tmp_path)  # its port is free: nothing listens yet
    env = cli_env(
        {"LABLEDGER_URI": srv.url, "LABLEDGER_SPOOL_DIR": str(spool), "LABLEDGER_SYNC_TIMEOUT": "1"}
    )
    proc = run_script(SCRIPT, cwd=tmp_path, env=env, timeout=90)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip().splitlines()[-1]
    assert "labledger sync" in proc.stderr  # it says what it left behind
    files = sorted(p for p in spool.rglob("*.json"))
    assert files, "nothing was spooled"
    kinds = [json.loads(p.read_text())["kind"] for p in files]
    assert kinds[0] == "run" and "batch" in kinds  # creation first, then its batches

    # sync while the server is still down: nothing lost, exit 1
    down = labledger("sync", "--spool-dir", str(spool))
    assert down.returncode == 1 and "left" in down.stdout
    assert len(list(spool.rglob("*.json"))) == len(files)

    srv.start()
    try:
        up = labledger("sync", "--spool-dir", str(spool), "--json")
        assert up.returncode == 0, up.stderr
        assert json.loads(up.stdout)["uploaded"] == len(files)
        assert not list(spool.rglob("*.json"))
        again = labledger("sync", "--spool-dir", str(spool), "--json")
        assert json.loads(again.stdout)["uploaded"] == 0
    finally:
        srv.stop()

    store = SqlStore(pg_uri)
    try:
        run = store.get_run(run_id)
        assert run["status"] == "finished" and run["config"] == {"lr": 0.5}
        assert run["summary"]["best"] == float("inf")
        h = store.history(run_id, "loss")
        assert h.total == 5001
        assert h.steps.tolist() == list(range(5001))
        assert np.isnan(h.values[-1]) and h.values[0] == 1.0
        assert store.history(run_id, "acc").total == 5000
    finally:
        store.close()


def _wait_for(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_live_client_session_is_not_taken_by_sync(
    pg_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labledger as ll

    spool = tmp_path / "spool"
    monkeypatch.setenv("LABLEDGER_SPOOL_DIR", str(spool))
    srv = Server(pg_uri, tmp_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = ll.init("p", store=srv.url, capture=False, system_metrics=False)
            run.log({"x": 1.0})
            run.log({"x": 2.0})
            _wait_for(lambda: bool(list(spool.rglob("*-batch.json"))), "the batch in the outbox")
            srv.start()
            # the owner holds its session's lock: sync skips it, the owner uploads it itself
            out = labledger("sync", "--spool-dir", str(spool), "--json")
            assert json.loads(out.stdout)["uploaded"] == 0
            run.finish()
        assert not list(spool.rglob("*.json"))
        sql = SqlStore(pg_uri)
        try:
            assert sql.history(run.id, "x").total == 2
            assert sql.get_run(run.id)["status"] == "finished"
        finally:
            sql.close()
    finally:
        srv.stop()


def test_one_failure_model_store_raises_writer_keeps_everything(
    pg_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store raises and keeps nothing; init()+log()+finish() keep every point in the
    outbox, and `labledger sync` creates the run with all of them once the server is up."""
    import labledger as ll
    from labledger import StoreUnavailableError
    from labledger.remote.http import HttpStore
    from labledger.store import Batch

    spool = tmp_path / "spool"
    monkeypatch.setenv("LABLEDGER_SPOOL_DIR", str(spool))
    monkeypatch.setenv("LABLEDGER_SYNC_TIMEOUT", "1")
    srv = Server(pg_uri, tmp_path)  # its port is free: nothing listens yet
    rid = uuid.uuid4().hex
    store = HttpStore(srv.url)
    try:
        with pytest.raises(StoreUnavailableError):
            store.create_run({"id": rid, "project": "p", "name": "n", "created_at": time.time()})
        with pytest.raises(StoreUnavailableError):
            store.write_batch(Batch(run_id=rid, metrics={"x": ([1], [1.0], [0.0])}))
    finally:
        store.close()
    assert not spool.exists()  # the store kept nothing by itself

    with pytest.warns(RuntimeWarning) as caught:
        run = ll.init("offline-model", store=srv.url, capture=False, system_metrics=False)
        for i in range(1000):
            run.log({"loss": i * 0.5}, step=i)
        run.finish()
    messages = [str(w.message) for w in caught]
    left = [m for m in messages if "labledger sync" in m]
    assert len(left) == 1 and "stay in the spool" in left[0], messages
    assert list(spool.rglob("*-run.json")) and list(spool.rglob("*-batch.json"))

    srv.start()
    try:
        up = labledger("sync", "--spool-dir", str(spool), "--json")
        assert up.returncode == 0, up.stdout + up.stderr
        assert not list(spool.rglob("*.json"))
    finally:
        srv.stop()
    sql = SqlStore(pg_uri)
    try:
        got = sql.get_run(run.id)
        assert got["status"] == "finished"
        h = sql.history(run.id, "loss")
        assert h.steps.tolist() == list(range(1000))
        assert h.values.tolist() == [i * 0.5 for i in range(1000)]
    finally:
        sql.close()
