"""`labledger watch RUN` follows a run on a tracking server (LABLEDGER_URI=http://...)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from labledger.remote.http import HttpStore
from labledger.store import Batch

from .conftest import Server, cli_env

WATCH_OPTS = ("--interval", "0.2", "--timeout", "60")


def test_watch_follows_a_run_on_the_server_until_it_ends(
    pg_uri: str, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    srv = make_server(pg_uri)
    client = HttpStore(srv.url, spool_dir=tmp_path / "spool", sync_timeout=5)
    rid = uuid.uuid4().hex
    now = time.time()
    client.create_run(
        {
            "id": rid,
            "project": "w",
            "name": "watched",
            "status": "running",
            "created_at": now,
            "heartbeat_at": now,
            "host": "elsewhere",
            "pid": 1,
        }
    )
    client.write_batch(Batch(run_id=rid, metrics={"loss": ([0], [1.0], [now])}))

    def train_then_finish() -> None:
        for step in range(1, 4):
            t = time.time()
            client.write_batch(
                Batch(run_id=rid, metrics={"loss": ([step], [1.0 / (step + 1)], [t])}, heartbeat=t)
            )
            time.sleep(0.2)
        client.write_batch(
            Batch(run_id=rid, run_update={"status": "finished", "ended_at": time.time()})
        )

    proc = subprocess.Popen(
        [sys.executable, "-m", "labledger.cli", "watch", rid[:10], "--json", *WATCH_OPTS],
        env=cli_env({"LABLEDGER_URI": srv.url}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        first = ""
        while not first.endswith("}\n"):  # the first snapshot: watch follows the live run
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            first += line
        train_then_finish()
        rest, err = proc.communicate(timeout=180)
    finally:  # reap the child and close its pipes even when an assertion failed
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)
        client.close()
    assert proc.returncode == 0, err
    out = first + rest
    decoder, snaps, rest = json.JSONDecoder(), [], out.lstrip()
    while rest:  # one JSON object per snapshot
        snap, used = decoder.raw_decode(rest)
        snaps.append(snap)
        rest = rest[used:].lstrip()
    assert snaps[0]["status"] == "running"
    assert snaps[-1]["status"] == "finished"
    assert snaps[-1]["step"] == 3 and snaps[-1]["metrics"] == {"loss": 0.25}
