"""A client that starts while the server is down spools to disk; `labledger sync` uploads it later."""

from __future__ import annotations

import json
import time
import uuid
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


def test_live_client_session_is_not_taken_by_sync(pg_uri: str, tmp_path: Path) -> None:
    from labledger.remote.http import HttpStore
    from labledger.store import Batch

    srv = Server(pg_uri, tmp_path)
    store = HttpStore(srv.url, spool_dir=tmp_path / "spool", sync_timeout=0.1)
    try:
        rid = uuid.uuid4().hex
        with pytest.warns(RuntimeWarning, match="spool"):
            store.create_run({"id": rid, "project": "p", "name": "n", "created_at": time.time()})
        store.write_batch(Batch(run_id=rid, metrics={"x": ([1, 2], [1.0, 2.0], [0.0, 0.0])}))
        assert store.pending() == 2
        srv.start()
        # the owner holds its session's lock: sync skips it, the owner uploads it itself
        out = labledger("sync", "--spool-dir", str(tmp_path / "spool"), "--json")
        assert json.loads(out.stdout)["uploaded"] == 0
        assert store.wait_synced(20)
        assert store.history(rid, "x").total == 2
    finally:
        store.close()
        srv.stop()
