"""Final status for every way a script can end, with real interpreters and signals."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import Script, kill, wait_for_line

PRELUDE = """
import os, sys, time, labledger
run = labledger.init("status", store=os.environ["URI"])
run.log({"loss": 1.0})
run.log({"loss": 0.5})
print("RUN", run.id, flush=True)
"""


def _run_id(proc: subprocess.CompletedProcess[str]) -> str:
    for line in proc.stdout.splitlines():
        if line.startswith("RUN "):
            return line.split()[1]
    raise AssertionError(f"no run id printed; rc={proc.returncode} stderr={proc.stderr[-2000:]}")


ENDINGS = [
    ("normal_end", "", "finished", 0, 0),
    ("exit_0", "sys.exit(0)", "finished", 0, 0),
    ("exit_3", "sys.exit(3)", "failed", 3, 3),
    ("exit_message", "sys.exit('bad config')", "failed", 1, 1),
    ("exception", "raise ValueError('boom')", "failed", 1, 1),
    ("keyboard_interrupt", "raise KeyboardInterrupt", "killed", None, 130),
    ("explicit_finish", "run.finish()\nsys.exit(5)", "finished", 5, None),
    (
        "custom_excepthook",
        "sys.excepthook = lambda *a: None\nraise RuntimeError('hidden')",
        "failed",
        1,
        1,
    ),
]


@pytest.mark.parametrize(
    ("ending", "tail", "status", "rc", "exit_code"), ENDINGS, ids=[e[0] for e in ENDINGS]
)
def test_status_for_each_way_a_script_ends(
    script: Script,
    store_uri: str,
    ledger_of: Any,
    ending: str,
    tail: str,
    status: str,
    rc: int | None,
    exit_code: int | None,
) -> None:
    proc = script.run(PRELUDE + tail, env={"URI": store_uri})
    if rc is not None:  # (the interpreter's own status for KeyboardInterrupt varies)
        assert proc.returncode == rc, proc.stderr[-2000:]
    r = ledger_of(store_uri).get(_run_id(proc))
    assert r["status"] == status, r
    if exit_code is not None:
        assert r["exit_code"] == exit_code
    assert r["metrics"]["loss"]["count"] == 2  # every point made it before exit
    assert r["ended_at"] is not None
    if ending == "exception":
        assert "ValueError: boom" in r["error"]
        assert "ValueError: boom" in proc.stderr  # the user still sees their traceback


def test_sigterm_marks_killed_and_keeps_default_exit(
    script: Script, store_uri: str, ledger_of: Any
) -> None:
    proc = script.start(
        PRELUDE + "run.flush()\nprint('READY', flush=True)\ntime.sleep(60)\n",
        env={"URI": store_uri},
    )
    run_id = wait_for_line(proc, "RUN").split()[1]
    wait_for_line(proc, "READY")
    assert kill(proc, signal.SIGTERM) == -signal.SIGTERM
    r = ledger_of(store_uri).get(run_id)
    assert r["status"] == "killed"
    assert r["exit_code"] == 128 + signal.SIGTERM
    assert r["metrics"]["loss"]["count"] == 2


def test_real_sigint_marks_killed(script: Script, store_uri: str, ledger_of: Any) -> None:
    proc = script.start(
        PRELUDE + "run.flush()\nprint('READY', flush=True)\ntime.sleep(60)\n",
        env={"URI": store_uri},
    )
    run_id = wait_for_line(proc, "RUN").split()[1]
    wait_for_line(proc, "READY")
    assert kill(proc, signal.SIGINT) != 0
    r = ledger_of(store_uri).get(run_id)
    assert (r["status"], r["exit_code"]) == ("killed", 130)


def test_sigterm_chains_to_a_handler_installed_before_init(
    script: Script, store_uri: str, ledger_of: Any
) -> None:
    code = (
        """
    import signal, sys, os, time
    def on_term(signum, frame):
        print("USER HANDLER", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    """
        + PRELUDE.replace("\n", "\n    ")
        + """
    print("READY", flush=True)
    time.sleep(60)
    """
    )
    proc = script.start(code, env={"URI": store_uri})
    run_id = wait_for_line(proc, "RUN").split()[1]
    wait_for_line(proc, "READY")
    proc.send_signal(signal.SIGTERM)
    wait_for_line(proc, "USER HANDLER")
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert ledger_of(store_uri).get(run_id)["status"] == "killed"


def test_sigkill_is_crashed_on_next_ls(script: Script, store_uri: str) -> None:
    proc = script.start(
        PRELUDE + "run.flush()\nprint('READY', flush=True)\ntime.sleep(60)\n",
        env={"URI": store_uri},
    )
    run_id = wait_for_line(proc, "RUN").split()[1]
    wait_for_line(proc, "READY")
    kill(proc, signal.SIGKILL)
    out = script.cli("ls", "--json", "--store", store_uri)
    assert out.returncode == 0, out.stderr
    import json

    (row,) = [r for r in json.loads(out.stdout) if r["id"] == run_id]
    assert row["status"] == "crashed"
    assert row["summary"]["loss"] == 0.5


def test_running_run_stays_running_while_its_process_lives(
    script: Script, store_uri: str, ledger_of: Any
) -> None:
    proc = script.start(
        PRELUDE + "run.flush()\nprint('READY', flush=True)\ntime.sleep(60)\n",
        env={"URI": store_uri},
    )
    try:
        run_id = wait_for_line(proc, "RUN").split()[1]
        wait_for_line(proc, "READY")
        led = ledger_of(store_uri)
        assert led.get(run_id)["status"] == "running"
        assert [r["status"] for r in led.runs()] == ["running"]
    finally:
        kill(proc)


def test_heartbeat_timeout_marks_runs_of_other_hosts_crashed(
    store_uri: str, ledger_of: Any
) -> None:
    import time

    from labledger.store import open_store

    store = open_store(store_uri)
    now = time.time()
    try:
        store.create_run(
            {
                "id": "a" * 32,
                "project": "p",
                "name": "old",
                "host": "gpu-node-17",
                "pid": 1,
                "created_at": now - 4000,
                "heartbeat_at": now - 3600,
            }
        )
        store.create_run(
            {
                "id": "b" * 32,
                "project": "p",
                "name": "fresh",
                "host": "gpu-node-17",
                "pid": 1,
                "created_at": now - 100,
                "heartbeat_at": now - 5,
            }
        )
    finally:
        store.close()
    led = ledger_of(store_uri)
    status = {r["name"]: r for r in led.runs()}
    assert status["old"]["status"] == "crashed"
    assert status["old"]["ended_at"] == pytest.approx(now - 3600)
    assert status["fresh"]["status"] == "running"  # another host, recent heartbeat: alive
    assert led.store.reap_stale_runs(heartbeat_timeout=1.0) == ["b" * 32]


def test_forked_children_do_not_corrupt_the_run(
    script: Script, store_uri: str, ledger_of: Any, tmp_path: Path
) -> None:
    code = """
    import os, sys, multiprocessing as mp, labledger
    run = labledger.init("fork", store=os.environ["URI"])
    for i in range(1000):
        run.log({"parent": float(i)})
    def worker(k):
        run.log({f"child/{k}": float(k)}, step=k)
        if k == 1:
            raise RuntimeError("worker failed")  # must not fail the parent's run
    ctx = mp.get_context("fork")
    ps = [ctx.Process(target=worker, args=(k,)) for k in range(3)]
    for p in ps: p.start()
    for p in ps: p.join()
    print("MP", [p.exitcode for p in ps], flush=True)
    pid = os.fork()
    if pid == 0:
        run.log({"forked": 7.0}, step=0)
        sys.exit(4)  # a child's exit code is not the run's
    _, status = os.waitpid(pid, 0)
    print("FORK", os.waitstatus_to_exitcode(status), flush=True)
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # a child that logs nothing and leaves at once
    os.waitpid(pid, 0)
    for i in range(1000, 2000):
        run.log({"parent": float(i)})
    print("RUN", run.id, flush=True)
    """
    proc = script.run(code, env={"URI": store_uri})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MP [0, 1, 0]" in proc.stdout
    assert "FORK 4" in proc.stdout
    led = ledger_of(store_uri)
    run_id = _run_id(proc)
    r = led.get(run_id)
    assert r["status"] == "finished" and r["exit_code"] == 0
    h = led.history(run_id, "parent")
    assert h.values.tolist() == [float(i) for i in range(2000)]  # all there, none twice
    for k in range(3):
        assert led.history(run_id, f"child/{k}").values.tolist() == [float(k)]
    assert led.history(run_id, "forked").values.tolist() == [7.0]
    assert [x["status"] for x in led.runs()] == ["finished"]
