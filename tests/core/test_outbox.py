"""The outbox: one record format and one directory layout (issue 19, item 3)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import labledger
from labledger.remote import _outbox, spool
from labledger.store import Batch
from labledger.store._wire import batch_from_wire, batch_to_wire


def test_a_batch_of_lists_is_the_wire_format_of_the_same_arrays() -> None:
    steps, vals, ts = [0, 1, 2**40], [0.5, float("nan"), -float("inf")], [1.0, 2.0, 3.5]
    listed = Batch("r" * 32, {"loss": (steps, vals, ts)}, {"status": "running"}, 7.0, id="b1")
    arrays = Batch(
        "r" * 32,
        {"loss": (np.array(steps), np.array(vals), np.array(ts))},
        {"status": "running"},
        7.0,
        id="b1",
    )
    assert _outbox.batch_wire(listed) == batch_to_wire(arrays)
    back = batch_from_wire("r" * 32, _outbox.batch_record("sqlite:///x.db", listed)["body"])
    assert back.metrics["loss"][0].tolist() == steps
    assert np.array_equal(back.metrics["loss"][1], np.array(vals), equal_nan=True)


def test_a_new_session_is_never_seen_empty_and_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sync` (or a catch-up) removes empty sessions it can lock: a session being made
    must never be one of them, or its owner loses its folder."""
    root = tmp_path / "spool"
    seen: list[list[Path]] = []
    real_rename = os.rename

    def rename(src: Any, dst: Any) -> None:
        with spool.locked_sessions(root) as sessions:  # another process, in between
            seen.append(list(sessions))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)  # the one spool.py calls
    box = spool.Spool(root)
    try:
        path = box.put({"kind": "run", "uri": "sqlite:///x.db"})
        assert seen == [[]]
        assert path.exists()
        with spool.locked_sessions(root) as sessions:
            assert sessions == []  # locked by its owner
    finally:
        box.close()


def test_init_puts_the_run_in_the_outbox_when_the_store_cannot_take_it_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABLEDGER_SPOOL_DIR", str(tmp_path / "spool"))
    db = tmp_path / "runs.db"
    labledger.Ledger(f"sqlite:///{db}")  # the store exists
    lock = sqlite3.connect(db, timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another process's write lock: init() cannot register
    try:
        run = labledger.init("p", store=f"sqlite:///{db}", capture=False, config={"lr": 0.1})
        files = list((tmp_path / "spool").glob("*/*-run.json"))  # before anything else ran
        assert len(files) == 1
        rec = json.loads(files[0].read_bytes())
        assert rec["kind"] == "run" and rec["uri"] == f"sqlite:///{db}"
        assert rec["body"]["id"] == run.id and rec["body"]["config"] == {"lr": 0.1}
        for i in range(100):
            run.log({"loss": float(i)})
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    run.finish()
    assert not list((tmp_path / "spool").glob("*/*.json"))  # replayed into the store
    ledger = labledger.Ledger(f"sqlite:///{db}")
    assert ledger.get(run.id)["status"] == "finished"
    assert ledger.store.history(run.id, "loss").total == 100


def test_a_batch_record_carries_its_rich_results_in_the_wire_format() -> None:
    from labledger.store import MediaItem

    item = MediaItem("val/img", 3, 1, "image", b"\x89PNG\x00\xff", {"w": 2}, "cap", 5.5)
    batch = Batch("r" * 32, {"loss": ([3], [0.25], [5.5])}, {}, None, id="b2", media=[item])
    wire = _outbox.batch_wire(batch)
    assert wire == batch_to_wire(batch)
    back = batch_from_wire("r" * 32, _outbox.batch_record("sqlite:///x.db", batch)["body"])
    assert back.media == [item]


def test_an_image_logged_while_the_store_is_not_open_survives_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABLEDGER_SPOOL_DIR", str(tmp_path / "spool"))
    db = tmp_path / "runs.db"
    labledger.Ledger(f"sqlite:///{db}")
    lock = sqlite3.connect(db, timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # init() cannot register: batches go to the outbox
    pixels = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    try:
        run = labledger.init("p", store=f"sqlite:///{db}", capture=False)
        run.log({"sample": labledger.Image(pixels, caption="c"), "x": 1.0}, step=0)
        run.log({"note": labledger.Text("outboxed")}, step=1)
        deadline = time.monotonic() + 60
        keys: list[str] = []
        while keys != ["note", "sample"] and time.monotonic() < deadline:
            run.flush(0.1)  # the writer takes them while the store is still locked
            records = [
                json.loads(f.read_bytes()) for f in (tmp_path / "spool").glob("*/*-batch.json")
            ]
            keys = sorted(m["key"] for r in records for m in r["body"].get("media", []))
        assert keys == ["note", "sample"]  # in the outbox, encoded
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    run.finish()
    assert not list((tmp_path / "spool").glob("*/*.json"))  # caught up into the store
    with labledger.Ledger(f"sqlite:///{db}") as ledger:
        [img] = ledger.media(run.id, "sample")
        assert img["kind"] == "image" and img["caption"] == "c" and img["step"] == 0
        assert ledger.media_bytes(run.id, img).startswith(b"\x89PNG")
        [note] = ledger.media(run.id, "note")
        assert ledger.media_bytes(run.id, note) == b"outboxed"
        assert ledger.store.history(run.id, "x").total == 1


def test_a_session_released_while_written_keeps_every_record(tmp_path: Path) -> None:
    """The writer thread puts records while finish() (or the writer's own end) releases
    the session from another thread: no record is removed with an "empty" folder, and
    releasing twice at once is harmless."""
    import threading

    session = spool.Spool(tmp_path / "spool")
    written: list[Path] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def put() -> None:
        try:
            for i in range(300):
                written.append(session.put({"kind": "batch", "n": i}, durable=False))
        except BaseException as exc:  # the test reads it
            errors.append(exc)
        finally:
            stop.set()

    def release() -> None:
        try:
            while not stop.is_set():
                session.close()
        except BaseException as exc:  # the test reads it
            errors.append(exc)

    threads = [threading.Thread(target=put), *(threading.Thread(target=release) for _ in range(2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(written) == 300 and all(p.exists() for p in written)
    session.close()
    assert sorted(json.loads(p.read_bytes())["n"] for p in written) == list(range(300))
