"""Fixtures shared by every test area (each area has its own folder and conftest.py).

- ``store_uri``: a fresh embedded SQLite store in a temporary folder.
- ``pg_uri``: a fresh PostgreSQL database (from LABLEDGER_TEST_POSTGRES_URL); the test is
  skipped only when that variable is unset, and CI always sets it.
- ``any_store_uri``: parametrised over both.
- ``isolated_env``: cwd in a temp dir and no LABLEDGER_* variables leaking in.
- ``moto_endpoint``: one real ``moto_server`` process (the S3 API over HTTP) on a free
  loopback port for the whole session, shared by the artifact and server tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PG_ENV = "LABLEDGER_TEST_POSTGRES_URL"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for k in list(os.environ):
        if k.startswith("LABLEDGER_") and k != PG_ENV:
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("LABLEDGER_CONSOLE", "off")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'ledger.db'}"


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV)


@pytest.fixture
def pg_uri() -> Iterator[str]:
    base = _pg_admin_url()
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    import sqlalchemy as sa

    name = "ll_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'ledger.db'}"
    return str(request.getfixturevalue("pg_uri"))


def run_script(
    code: str, *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` in a real subprocess with labledger importable."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto_server process on a free loopback port, for the whole session."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    exe = Path(sys.executable).parent / "moto_server"
    cmd = (
        [str(exe), "-H", "127.0.0.1", "-p", str(port)]
        if exe.exists()
        else [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# What each known skip reason needs, said at the end of the run (issue #26: 167 tests were
# skipped for want of PostgreSQL without a word about it).
_SKIP_FIXES = {
    f"{PG_ENV} is not set": (
        f"export {PG_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/labledger_test "
        "(any database the user may CREATE DATABASE from; `make test` sets it when "
        "PostgreSQL answers on 127.0.0.1:5432)"
    ),
}


def skip_summary(reports: list[Any]) -> list[str]:
    """Lines counting the skipped tests by reason, each with how to run them."""
    counts: dict[str, int] = {}
    for rep in reports:
        longrepr = getattr(rep, "longrepr", None)
        reason = (
            longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        )
        reason = str(reason).removeprefix("Skipped: ")
        counts[reason] = counts.get(reason, 0) + 1
    lines = []
    for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"{n} test{'s' if n != 1 else ''} skipped: {reason}")
        fix = _SKIP_FIXES.get(reason)
        if fix:
            lines.append(f"  to run them: {fix}")
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    terminalreporter.section("skipped tests, and how to run them", sep="-", yellow=True)
    for line in skip_summary(skipped):
        terminalreporter.write_line(line)
