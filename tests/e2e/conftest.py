"""Fixtures for the end-to-end QA tests: the real CLI in a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """``cli(*args, block=(), env={})``: run ``labledger ARGS`` in a fresh interpreter.

    ``block`` names modules made unimportable first (``sys.modules[name] = None``), the
    way a user sees an optional extra that is not installed.
    """

    def run(
        *args: str,
        block: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        code = (
            "import sys\n"
            f"for m in {list(block)!r}: sys.modules[m] = None\n"
            "from labledger.cli import main\n"
            f"main({list(args)!r})\n"
        )
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT / "src"),
                "COLUMNS": "200",
                **(env or {}),
            },
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
