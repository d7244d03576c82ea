"""Clients catch up by themselves after the server was SIGKILLed: no `labledger sync` needed.

Ten real client processes log through a real server on PostgreSQL; the server is
SIGKILLed while they log and restarted once every client spooled, and the clients end
their work. Every client must drain its spool before it exits (finish() waits while the
spool drains) and every point must be on the server exactly once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from labledger.store.sql import SqlStore

from .conftest import Server, cli_env

CLIENTS = 10
SPOOLED = 150  # requests each client has spooled before the server comes back

# Logs until the test creates the file "stop", then finishes and prints how many points.
CLIENT = """
import os, sys, time, labledger
run = labledger.init(project="catchup", name="client-" + sys.argv[1], capture=False)
print(run.id, flush=True)
i = 0
while not os.path.exists("stop") and i < 2_000_000:
    for _ in range(300):
        run.log({"loss": i * 0.5, "acc": 1.0 / (i + 1)}, step=i)
        i += 1
    time.sleep(0.05)
run.finish()
print(i, flush=True)
"""


def _spooled_sessions(root: Path, at_least: int = 1) -> int:
    """Client sessions holding at least ``at_least`` spooled requests."""
    if not root.exists():
        return 0
    return sum(1 for d in root.iterdir() if d.is_dir() and len(list(d.glob("*.json"))) >= at_least)


def _wait(cond: Callable[[], bool], what: str, timeout: float, srv: Server, spool: Path) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            files = {d.name[-8:]: len(list(d.glob("*.json"))) for d in spool.glob("*")}
            raise AssertionError(f"timed out waiting for {what}; spool {files}: {srv.log()}")
        time.sleep(0.1)


@pytest.mark.slow
def test_clients_drain_their_spool_after_a_server_sigkill_without_sync(
    pg_uri: str, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    srv = make_server(pg_uri)
    spool = tmp_path / "spool"
    env = cli_env(
        {
            "LABLEDGER_URI": srv.url,
            "LABLEDGER_SPOOL_DIR": str(spool),
            "LABLEDGER_SYSTEM_METRICS": "off",
            # finish() gives up after 10 s *without progress*; a long spool that keeps
            # draining is waited for (before: a hard 30 s, and 100+ requests were left)
            "LABLEDGER_SYNC_TIMEOUT": "10",
        }
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(i)],
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(CLIENTS)
    ]
    sql = SqlStore(pg_uri)
    try:
        _wait(lambda: sql.count_runs(project="catchup") == CLIENTS, "every run", 120, srv, spool)
        srv.kill()
        # down until every client has a long spool (they keep logging meanwhile)
        _wait(
            lambda: _spooled_sessions(spool, SPOOLED) == CLIENTS,
            "every client to spool",
            180,
            srv,
            spool,
        )
        srv.start()
        # the clients end their work now: finish() must wait for their spools to drain
        (tmp_path / "stop").touch()
        outs = [p.communicate(timeout=600) for p in procs]
        for p, (_out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err[-2000:]
            assert "stay in the spool" not in err, err[-2000:]
        assert any("spool" in err for _, err in outs), "no client noticed the outage"
        assert not list(spool.rglob("*.json")), "a client exited with requests in its spool"
        for out, _ in outs:
            rid, count = out.split()[0], int(out.split()[1])
            for key in ("loss", "acc"):
                h = sql.history(rid, key)
                assert h.total == count, (rid, key, h.total, count)
                # each step exactly once: nothing lost, nothing stored twice
                assert np.array_equal(h.steps, np.arange(count))
            assert np.array_equal(sql.history(rid, "loss").values, np.arange(count) * 0.5)
            run = sql.get_run(rid)
            assert run["status"] == "finished", run["status"]
            assert run["metrics"]["loss"]["count"] == count
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()  # reaps it and closes its pipes
        sql.close()
