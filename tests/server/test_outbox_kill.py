"""Clients SIGKILLed 0.1-1 s after ``init()`` returned, on a loaded machine, leave every run.

The run is in the outbox (or durably in the store) before ``init()`` returns, and the
writer keeps batches there until the store is open (issue 19, item 3). Real processes:
a tracking server (uvicorn subprocess) or an embedded SQLite store, two CPU hogs
(``yes > /dev/null``) beside them, clients killed at random moments; then
``labledger sync`` catches up and every run is there, ``crashed``, with at least every
point the client had seen ``flush()`` confirm, each value the one logged at its step.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labledger import Ledger
from labledger.remote.http import HttpStore

from .conftest import Server, cli_env, labledger

CLIENTS = 8

CLIENT = """
import sys, labledger
run = labledger.init(project="kill", name="c" + sys.argv[1], capture=False, store=sys.argv[2])
print("ready", run.id, flush=True)
i = 0
while True:
    run.log({"loss": i * 0.5}, step=i)
    i += 1
    if i % 200 == 0:
        run.flush()
        print("flushed", i, flush=True)
"""


@pytest.fixture
def cpu_hogs() -> Iterator[None]:
    hogs = [
        subprocess.Popen(["yes"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        yield
    finally:
        for h in hogs:
            h.kill()
            h.wait(10)


def _kill_clients(store: str, env: dict[str, str], cwd: Path, seed: int) -> dict[str, int]:
    """Start the clients, SIGKILL each 0.1-1 s after its ``ready``; run id -> points flushed."""
    rng = random.Random(seed)
    delays = [rng.uniform(0.1, 1.0) for _ in range(CLIENTS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(i), store],
            cwd=cwd,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(CLIENTS)
    ]
    out: dict[int, tuple[str, int, str]] = {}

    def drive(i: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until init() returned (or the client died)
        if not line.startswith("ready"):
            proc.kill()
            out[i] = ("", 0, line + proc.communicate(timeout=60)[1])
            return
        run_id = line.split()[1]
        time.sleep(delays[i])  # the kill schedule under test: 0.1-1 s after init() returned
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=60)
        flushed = [int(ln.split()[1]) for ln in rest.splitlines() if ln.startswith("flushed")]
        out[i] = (run_id, max(flushed, default=0), err)

    threads = [threading.Thread(target=drive, args=(i, p)) for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    ids: dict[str, int] = {}
    for i in range(CLIENTS):
        run_id, flushed, err = out[i]
        assert run_id, f"client {i} never returned from init(): {err[-2000:]}"
        ids[run_id] = flushed
    return ids


def _check(
    runs: dict[str, dict[str, Any]], history: Callable[[str], Any], ids: dict[str, int]
) -> None:
    for run_id, flushed in ids.items():
        assert run_id in runs, f"run {run_id[:8]} is missing after catch-up"
        assert runs[run_id]["status"] == "crashed", runs[run_id]["status"]
        h = history(run_id)
        steps = np.asarray(h.steps)
        assert len(steps) >= flushed, (run_id[:8], len(steps), flushed)
        assert len(np.unique(steps)) == len(steps)  # each point once
        assert np.array_equal(np.asarray(h.values), steps * 0.5)


def _sync(spool: Path) -> None:
    res = labledger("sync", "--spool-dir", str(spool))
    assert res.returncode == 0, res.stdout + res.stderr
    assert not list(spool.glob("*/*.json")), list(spool.glob("*/*"))


@pytest.mark.slow
def test_clients_killed_after_init_leave_every_run_on_the_server(
    tmp_path: Path, make_server: Callable[..., Server], cpu_hogs: None
) -> None:
    srv = make_server(f"sqlite:///{tmp_path / 'server.db'}")
    spool = tmp_path / "spool"
    env = cli_env({"LABLEDGER_SPOOL_DIR": str(spool), "LABLEDGER_SYSTEM_METRICS": "off"})
    ids = _kill_clients(srv.url, env, tmp_path, seed=19)
    _sync(spool)
    store = HttpStore(srv.url, spool_dir=tmp_path / "reader-spool")
    try:
        # the server reaps on reads: a run whose process is gone (same host) is crashed
        runs = {r["id"]: r for r in store.list_runs(project="kill")}
        _check(runs, lambda rid: store.history(rid, "loss"), ids)
    finally:
        store.close()


@pytest.mark.slow
def test_clients_killed_after_init_leave_every_run_in_the_embedded_store(
    tmp_path: Path, cpu_hogs: None
) -> None:
    db = tmp_path / "runs.db"
    uri = f"sqlite:///{db}"
    spool = tmp_path / "spool"
    env = cli_env({"LABLEDGER_SPOOL_DIR": str(spool), "LABLEDGER_SYSTEM_METRICS": "off"})
    Ledger(uri)  # the store exists (no schema work in the clients)
    ids = _kill_clients(uri, env, tmp_path, seed=26)  # the store takes the runs at once
    # another process holds the write lock: init() cannot register (250 ms at most), the
    # run and its batches wait in the outbox while the clients are killed
    lock = sqlite3.connect(db, timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        ids.update(_kill_clients(uri, env, tmp_path, seed=27))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    _sync(spool)
    ledger = Ledger(uri)  # reaps: a run whose process is gone is crashed
    runs = {r["id"]: r for r in ledger.runs(project="kill")}
    _check(runs, lambda rid: ledger.store.history(rid, "loss"), ids)


def test_the_next_process_catches_up_without_sync(tmp_path: Path) -> None:
    """A run killed while only the outbox had it is written by the next run on that store."""
    db = tmp_path / "runs.db"
    uri = f"sqlite:///{db}"
    spool = tmp_path / "spool"
    env = cli_env({"LABLEDGER_SPOOL_DIR": str(spool), "LABLEDGER_SYSTEM_METRICS": "off"})
    Ledger(uri)
    lock = sqlite3.connect(db, timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        killed = _kill_clients(uri, env, tmp_path, seed=3)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert list(spool.glob("*/*.json"))  # the runs are in the outbox only
    later = subprocess.run(
        [sys.executable, "-c", "import sys, labledger; labledger.init('later', store=sys.argv[1], capture=False).finish()", uri],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert later.returncode == 0, later.stderr
    assert not list(spool.glob("*/*.json"))
    ledger = Ledger(uri)
    runs = {r["id"]: r for r in ledger.runs(project="kill")}
    _check(runs, lambda rid: ledger.store.history(rid, "loss"), killed)
