"""Crash detection by pid *and* start time on the same host, and the writer flushing on its own."""

from __future__ import annotations

import os
import time
from typing import Any

from labledger._procinfo import boot_id, hostname, process_token
from labledger.store import open_store


def _plant_running(uri: str, run_id: str, name: str, pid_start: str) -> None:
    now = time.time()
    store = open_store(uri)
    try:
        store.create_run(
            {
                "id": run_id,
                "project": "p",
                "name": name,
                "host": hostname(),  # this host: liveness is decided by the process, not a timeout
                "pid": os.getpid(),  # a live pid ...
                "pid_start": pid_start,
                "created_at": now - 10,
                "heartbeat_at": now - 1,  # ... and a fresh heartbeat
            }
        )
    finally:
        store.close()


def test_a_reused_pid_is_not_mistaken_for_the_writer(any_store_uri: str, ledger_of: Any) -> None:
    """The pid is alive, but it belongs to another process (other start time): crashed at once."""
    _plant_running(any_store_uri, "1" * 32, "reused", f"{boot_id()}:1")
    _plant_running(any_store_uri, "2" * 32, "alive", process_token())
    _plant_running(any_store_uri, "3" * 32, "rebooted", "another-boot-id:" + process_token()[-8:])
    status = {r["name"]: r["status"] for r in ledger_of(any_store_uri).runs()}
    assert status == {"reused": "crashed", "alive": "running", "rebooted": "crashed"}


def test_points_become_durable_without_flush_or_finish(
    any_store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    """log() only buffers; the background writer makes the point visible to other readers."""
    import labledger

    run = labledger.init("p", store=any_store_uri, capture=False)
    finish_all.append(run)
    run.log({"x": 42.0})
    led = ledger_of(any_store_uri)
    deadline = time.monotonic() + 20  # a liveness bound, not a speed test
    values: list[float] = []
    while time.monotonic() < deadline:
        try:
            values = led.history(run.id, "x").values.tolist()
        except labledger.LabledgerError:  # the run record itself may not be written yet
            values = []
        if values:
            break
        time.sleep(0.05)
    assert values == [42.0]
    assert led.get(run.id)["status"] == "running"
