"""20 clients x 20,000 points while the server is SIGKILLed and restarted: every point exactly once."""

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

CLIENTS = 20
POINTS = 20_000

CLIENT = f"""
import sys, time, labledger
run = labledger.init(project="kill", name="client-" + sys.argv[1], capture=False)
print(run.id, flush=True)
for chunk in range(40):
    for i in range(chunk * {POINTS // 40}, (chunk + 1) * {POINTS // 40}):
        run.log({{"loss": i * 0.5}}, step=i)
    time.sleep(0.1)
run.finish()
"""


@pytest.mark.slow
def test_points_survive_server_sigkill_exactly_once(
    pg_uri: str, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    srv = make_server(pg_uri)
    env = cli_env(
        {
            "LABLEDGER_URI": srv.url,
            "LABLEDGER_SPOOL_DIR": str(tmp_path / "spool"),
            "LABLEDGER_SYNC_TIMEOUT": "60",
            "LABLEDGER_SYSTEM_METRICS": "off",
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
        # kill once points are flowing, mid-way through the clients' work
        deadline = time.monotonic() + 60
        while sql.count_runs(project="kill") < CLIENTS or _points(sql) < CLIENTS * POINTS // 8:
            assert time.monotonic() < deadline, srv.log()
            time.sleep(0.1)
        srv.kill()
        killed_at = _points(sql)
        time.sleep(1.5)
        srv.start()
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (_out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err[-2000:]
        assert killed_at < CLIENTS * POINTS, "the kill came too late to test anything"
        assert any("spool" in err for _, err in outs), "no client noticed the outage"
        ids = [out.split()[0] for out, _ in outs]
        for rid in ids:
            h = sql.history(rid, "loss")
            assert h.total == POINTS, (rid, h.total)
            assert np.array_equal(
                h.steps, np.arange(POINTS)
            )  # each step once: no loss, no duplicate
            assert np.array_equal(h.values, np.arange(POINTS) * 0.5)
            run = sql.get_run(rid)
            assert run["status"] == "finished" and run["metrics"]["loss"]["count"] == POINTS
        assert not list((tmp_path / "spool").rglob("*.json"))  # everything was uploaded in time
    finally:
        for p in procs:  # kill and reap: no pipe is left open for a later test to warn about
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=60)
        sql.close()


def _points(sql: SqlStore) -> int:
    import sqlalchemy as sa

    with sql.engine.connect() as conn:
        return int(
            conn.execute(sa.text("select coalesce(sum(count), 0) from metric_summary")).scalar_one()
        )
