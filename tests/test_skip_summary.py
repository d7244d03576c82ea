"""`make test` says what it skipped and how to run it (issue #26)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_summary_counts_skipped_postgres_tests_and_names_the_fix(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LABLEDGER_TEST_POSTGRES_URL"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "tests/core/test_store.py",
            "-k",
            "postgres or any_store",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "skipped tests, and how to run them" in out.stdout, out.stdout[-2000:]
    line = next(
        ln for ln in out.stdout.splitlines() if "skipped: LABLEDGER_TEST_POSTGRES_URL" in ln
    )
    assert line.split()[1] in ("test", "tests") and int(line.split()[0]) >= 1
    assert "to run them: export LABLEDGER_TEST_POSTGRES_URL=postgresql+psycopg://" in out.stdout
