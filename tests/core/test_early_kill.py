"""A run killed at any moment after ``init()`` returned is in the store, ``crashed``, with its points.

Real processes: a child calls ``init()`` and logs in a tight loop; the test SIGKILLs it
at several moments (right after ``init()`` returned, once points are stored, with
capture on or off, on a new or an existing store) and reads the store back.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Script, kill, wait_for_line

CHILD = """
import sys, labledger
run = labledger.init(
    "early", name="kill-me", config={"lr": 0.01, "model": {"depth": 3}},
    tags=["a", "b"], notes="killed on purpose", seed=7, store=sys.argv[1] if len(sys.argv) > 1 else None,
)
print("ready", run.id, flush=True)
i = 0
log = run.log
while True:
    log({"loss": i * 1e-3})
    i += 1
"""


def _points(db: Path, run_id: str) -> int:
    """Points of ``loss`` stored so far (read with the stdlib, like a second process would)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = con.execute(
            "select coalesce(sum(n), 0) from metric_chunks where run_id = ? and key = 'loss'",
            (run_id,),
        ).fetchone()
    finally:
        con.close()
    return int(row[0])


def _start(script: Script, db: Path, capture: bool) -> tuple[Any, str]:
    import subprocess
    import sys
    import textwrap

    from .conftest import _env

    env = _env({"LABLEDGER_CAPTURE": "on" if capture else "off"})
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), f"sqlite:///{db}"],
        cwd=script.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    script.started.append(proc)
    line = wait_for_line(proc, "ready", timeout=120)
    return proc, line.split()[1]


def _assert_crashed_with_record(ledger_of: Any, db: Path, run_id: str) -> dict[str, Any]:
    run = ledger_of(f"sqlite:///{db}").get(run_id)
    assert run["status"] == "crashed"
    assert run["name"] == "kill-me"
    assert run["config"] == {"lr": 0.01, "model": {"depth": 3}}
    assert run["tags"] == ["a", "b"]
    assert run["notes"] == "killed on purpose"
    assert run["seed"] == 7
    return run


@pytest.mark.parametrize("existing", [False, True], ids=["new-store", "existing-store"])
def test_run_is_in_the_store_when_init_returns_and_survives_an_immediate_kill(
    script: Script, tmp_path: Path, ledger_of: Any, existing: bool
) -> None:
    db = tmp_path / "s" / "ledger.db"
    if existing:
        proc, _ = _start(script, db, capture=False)
        kill(proc)
    proc, run_id = _start(script, db, capture=False)
    # registered synchronously by init(): visible before the child does anything else
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = con.execute("select status, name from runs where id = ?", (run_id,)).fetchone()
    finally:
        con.close()
    assert row == ("running", "kill-me")
    kill(proc)
    _assert_crashed_with_record(ledger_of, db, run_id)


@pytest.mark.parametrize("capture", [True, False], ids=["capture-on", "capture-off"])
def test_kill_while_logging_keeps_the_points_written_so_far(
    script: Script, tmp_path: Path, ledger_of: Any, capture: bool
) -> None:
    db = tmp_path / "s" / "ledger.db"
    proc, run_id = _start(script, db, capture=capture)
    deadline = time.monotonic() + 120
    seen = 0
    while seen < 50_000 and time.monotonic() < deadline:
        seen = _points(db, run_id)
        time.sleep(0.02)
    assert seen >= 50_000, f"only {seen} points were written while the child logged"
    kill(proc)
    run = _assert_crashed_with_record(ledger_of, db, run_id)
    assert run["metrics"]["loss"]["count"] >= seen
    hist = ledger_of(f"sqlite:///{db}").history(run_id, "loss")
    assert len(hist) == run["metrics"]["loss"]["count"]
    assert list(hist.steps[:3]) == [0, 1, 2]


def test_kill_under_cpu_load_still_leaves_the_run(
    script: Script, tmp_path: Path, ledger_of: Any
) -> None:
    import subprocess

    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(2)]
    try:
        db = tmp_path / "s" / "ledger.db"
        proc, run_id = _start(script, db, capture=True)
        deadline = time.monotonic() + 120
        while _points(db, run_id) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        kill(proc)
    finally:
        for h in hogs:
            h.kill()
            h.wait(timeout=30)
    run = _assert_crashed_with_record(ledger_of, db, run_id)
    assert run["metrics"]["loss"]["count"] > 0
