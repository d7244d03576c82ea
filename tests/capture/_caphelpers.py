"""Helpers shared by the capture tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Script:
    """Writes ``code`` to a file and runs it with this interpreter (a real entry script)."""

    def __init__(self, store_uri: str) -> None:
        self.store_uri = store_uri

    def run(
        self,
        code: str,
        *,
        cwd: Path,
        name: str = "script.py",
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        path = cwd / name
        path.write_text(textwrap.dedent(code))
        full = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "LABLEDGER_URI": self.store_uri,
            "LABLEDGER_SYSTEM_METRICS": "off",
            **(env or {}),
        }
        proc = subprocess.run(
            [sys.executable, str(path), *(args or [])],
            cwd=cwd,
            env=full,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc


def load_run(store_uri: str, ref: str | None = None) -> dict[str, Any]:
    from labledger import Ledger

    with Ledger(store_uri) as ledger:
        if ref is None:
            runs = ledger.runs()
            assert runs, "no run was recorded"
            return runs[0]
        return ledger.get(ref)


def get_blob(store_uri: str, sha: str) -> bytes:
    from labledger.store import open_store

    st = open_store(store_uri)
    try:
        return bytes(st.get_blob(sha))
    finally:
        st.close()


def all_store_bytes(store_uri: str) -> bytes:
    """Every byte of the SQLite store (db, WAL, journal) plus every blob decompressed."""
    from labledger.store._locate import sqlite_path

    db = sqlite_path(store_uri)
    data = b""
    for p in db.parent.iterdir():
        if p.name.startswith(db.name):
            data += p.read_bytes()
    con = sqlite3.connect(db)
    try:
        for (blob,) in con.execute("SELECT data FROM blobs"):
            data += zlib.decompress(blob)
    finally:
        con.close()
    return data


def cli(*args: str, store_uri: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "LABLEDGER_URI": store_uri}
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def json_out(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
