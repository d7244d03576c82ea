"""Fixtures for the core tests: real subprocesses and direct store access."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "LABLEDGER_CAPTURE": "off",
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }


class Script:
    """Runs Python source in a real interpreter; the source is dedented."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.started: list[subprocess.Popen[str]] = []

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)

    def run(
        self, code: str, *, env: dict[str, str] | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=self.cwd,
            env=_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, code: str, *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=self.cwd,
            env=_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(proc)
        return proc

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "labledger.cli", *args],
            cwd=self.cwd,
            env=_env(env),
            capture_output=True,
            text=True,
            timeout=180,
        )


@pytest.fixture
def script(isolated_env: Path) -> Iterator[Script]:
    s = Script(isolated_env)
    yield s
    s.close()


def wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 120) -> str:
    """Read the child's stdout until a line starting with ``prefix``; return it."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate(timeout=30)
    raise AssertionError(f"child never printed {prefix!r}; rc={proc.poll()} stderr={err[-2000:]}")


def kill(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> int:
    """Send ``sig``, wait for the process to end (closing its pipes); return its status."""
    proc.send_signal(sig)
    proc.communicate(timeout=90)  # a loaded CI machine can take long to run exit handlers
    return proc.returncode


@pytest.fixture
def ledger_of() -> Iterator[Callable[[str], Any]]:
    """Open ``labledger.Ledger(uri)`` objects that are closed after the test."""
    from labledger import Ledger

    opened: list[Any] = []

    def make(uri: str, **kw: Any) -> Any:
        led = Ledger(uri, **kw)
        opened.append(led)
        return led

    yield make
    for led in opened:
        led.close()


@pytest.fixture
def finish_all() -> Iterator[list[Any]]:
    """Runs appended here are finished after the test even when it fails."""
    runs: list[Any] = []
    yield runs
    for r in runs:
        if not r._finished:
            r.finish()
