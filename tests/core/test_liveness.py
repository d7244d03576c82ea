"""Crash detection by pid *and* start time on the same host, and the writer flushing on its own."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from labledger._procinfo import boot_id, host_id, process_token
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
                "host": host_id(),  # this host: liveness is decided by the process, not a timeout
                "pid": os.getpid(),  # a live pid ...
                "pid_start": pid_start,
                "created_at": now - 10,
                "heartbeat_at": now - 1,  # ... and a fresh heartbeat
            }
        )
    finally:
        store.close()


@pytest.mark.parametrize("hostname_capture", ["on", "off"])
def test_a_reused_pid_is_not_mistaken_for_the_writer(
    any_store_uri: str, ledger_of: Any, monkeypatch: pytest.MonkeyPatch, hostname_capture: str
) -> None:
    """The pid is alive, but it belongs to another process (other start time): crashed at once.

    With LABLEDGER_CAPTURE_HOSTNAME=off the run records an opaque host token instead of the
    name, and this host still recognises its own runs."""
    monkeypatch.setenv("LABLEDGER_CAPTURE_HOSTNAME", hostname_capture)
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
    deadline = time.monotonic() + 120  # a liveness bound, not a speed test
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


def test_hostname_off_keeps_the_name_out_of_the_run_record(
    store_uri: str, finish_all: list[Any], ledger_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import labledger

    monkeypatch.setenv("LABLEDGER_CAPTURE_HOSTNAME", "off")
    run = labledger.init("p", store=store_uri, capture=False)
    finish_all.append(run)
    run.flush()
    rec = ledger_of(store_uri).get(run.id)
    assert rec["host"] != socket.gethostname() and rec["host"].startswith("anon:")
    assert rec["status"] == "running"  # recognised as this host's live process, not reaped
    monkeypatch.delenv("LABLEDGER_CAPTURE_HOSTNAME")
    assert ledger_of(store_uri).get(run.id)["status"] == "running"  # also by a default reader
