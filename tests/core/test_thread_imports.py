"""Every thread labledger starts finds the ``importlib`` package already imported.

CPython 3.11 and 3.12 can break ``importlib`` for the rest of a process when two threads
import the package for the first time at once (one ``import importlib``, another
``import importlib.machinery``): the second builds an uninitialised copy of its bootstrap,
and every later ``importlib.import_module`` fails with "NameError: name 'sys' is not
defined". CI saw it: a run's writer thread, opening a tracking server's store (which
imports ``importlib``), raced the training thread and never opened the store. ``python -S``
and a virtual environment do not import ``importlib`` at start-up, so init() imports it
in the caller's thread before it starts any of its own.
"""

from __future__ import annotations

import json
import socket

import pytest

from .conftest import Script

CHILD = """
import json, sys, threading

started = []


def trace(frame, event, arg):
    started.append([threading.current_thread().name, "importlib" in sys.modules])
    return None


threading.settrace(trace)
import labledger

assert "importlib" not in sys.modules, "start-up imported importlib: the test shows nothing"
run = labledger.init("threads", capture=True)
run.log({"loss": 0.5})
run.finish()
print(json.dumps(started))
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("kind", ["sqlite", "http"])
def test_no_labledger_thread_is_first_to_import_importlib(script: Script, kind: str) -> None:
    uri = (
        f"sqlite:///{script.cwd / 'runs.db'}"
        if kind == "sqlite"
        else f"http://127.0.0.1:{_closed_port()}"  # nobody listens: the writer opens it
    )
    proc = script.run(
        CHILD,
        env={
            "LABLEDGER_CAPTURE": "on",
            "LABLEDGER_URI": uri,
            "XDG_CACHE_HOME": str(script.cwd / "cache"),
            "LABLEDGER_SYNC_TIMEOUT": "1",
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    started = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = [(name, ready) for name, ready in started if name.startswith("labledger-")]
    assert any(name.startswith("labledger-writer-") for name, _ in ours), started
    assert [name for name, ready in ours if not ready] == [], started
