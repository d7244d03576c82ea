"""`labledger sync` reports each request the server refuses for good once, moves it aside, goes on."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np

from labledger.remote import batch_record, run_record
from labledger.remote.spool import Spool
from labledger.store import Batch
from labledger.store.sql import SqlStore

from .conftest import Server, labledger


def test_sync_reports_permanent_refusals_once_and_uploads_the_rest(
    pg_uri: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    srv = Server(pg_uri, tmp_path)  # not started: every write is spooled
    # the outbox a client leaves when its server was down the whole time (the record
    # format init() and the tracking writer write)
    box = Spool(spool)
    rid, ghost = uuid.uuid4().hex, uuid.uuid4().hex
    box.put(run_record(srv.url, {"id": rid, "project": "refusals", "name": "good"}))
    for b in range(20):
        steps = np.arange(b * 100, (b + 1) * 100)
        box.put(batch_record(srv.url, Batch(rid, {"x": (steps, steps * 1.0, steps * 0.0)})))
        if b == 5:  # a value the server refuses (422), amid good batches
            box.put(batch_record(srv.url, Batch(rid, {}, {"name": "n" * 5000})))
        if b == 9:  # a batch of a run the server never heard of (404)
            box.put(batch_record(srv.url, Batch(ghost, {"x": ([0], [0.0], [0.0])})))
    box.close()  # as a finished process leaves it
    assert len(list(spool.rglob("*.json"))) == 23

    srv.start()
    try:
        out = labledger("sync", "--spool-dir", str(spool))
        assert out.returncode == 0, out.stdout + out.stderr
        refused = [line for line in out.stderr.splitlines() if line.startswith("refused ")]
        assert len(refused) == 2, out.stderr
        assert any("422" in line for line in refused) and any("404" in line for line in refused)
        assert "2 refused" in out.stdout
        # moved aside with the reason; a second sync has nothing to say and succeeds
        assert len(list((spool / "rejected").glob("*.reason"))) == 2
        again = labledger("sync", "--spool-dir", str(spool), "--json")
        assert again.returncode == 0
        doc = json.loads(again.stdout)
        assert doc["refused"] == [] and doc["uploaded"] == 0 and doc["left"] == 0
    finally:
        srv.stop()
    sql = SqlStore(pg_uri)
    try:
        h = sql.history(rid, "x")
        assert h.steps.tolist() == list(range(2000))
        assert sql.get_run(rid)["name"] == "good"
    finally:
        sql.close()
