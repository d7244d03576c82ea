"""The server marks a run crashed when its heartbeats stop for longer than the timeout."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from labledger.remote.http import HttpStore
from labledger.store import Batch
from labledger.store.sql import SqlStore

from .conftest import Server


def _status(store: SqlStore, run_id: str) -> str:
    return str(store.get_run(run_id)["status"])


def test_silent_run_is_marked_crashed_and_heartbeating_one_is_not(
    pg_uri: str, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    srv = make_server(pg_uri, heartbeat_timeout=1.5)
    client = HttpStore(srv.url, spool_dir=tmp_path / "spool")
    sql = SqlStore(pg_uri)
    try:
        silent, alive = uuid.uuid4().hex, uuid.uuid4().hex
        for rid in (silent, alive):
            # another host: only heartbeats can tell whether its writer lives
            client.create_run(
                {
                    "id": rid,
                    "project": "hb",
                    "name": rid[:6],
                    "host": "gpu-node-7",
                    "pid": 4242,
                    "created_at": time.time(),
                    "heartbeat_at": time.time(),
                }
            )
            client.write_batch(
                Batch(run_id=rid, metrics={"x": ([0], [1.0], [0.0])}, heartbeat=time.time())
            )
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=srv.url) as http:
            # no reads through the server meanwhile: the background reaper must do it
            while _status(sql, silent) == "running" and time.monotonic() < deadline:
                assert http.post(f"/api/v1/runs/{alive}/heartbeat").status_code == 200
                time.sleep(0.3)
        assert _status(sql, silent) == "crashed"
        assert _status(sql, alive) == "running"
        run = client.get_run(silent)
        assert run["status"] == "crashed" and run["ended_at"] is not None
        # a late heartbeat (e.g. after a network outage) brings it back
        client.write_batch(Batch(run_id=silent, heartbeat=time.time()))
        assert _status(sql, silent) == "running"
    finally:
        client.close()
        sql.close()
