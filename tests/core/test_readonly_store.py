"""A store that cannot be written (a colleague's shared folder, a read-only volume) can be
read: ``ls``/``show``/``best`` and ``Ledger`` work, writes fail with one clear error
(issue #12 item 10). Tests run as root, whom ``chmod`` does not stop, so the same paths
are pinned with ``?mode=ro`` and, where ``setpriv`` works, as the user ``nobody``."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import labledger
from labledger._exceptions import StoreUnwritableError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A store with two finished runs, in a folder every user may traverse."""
    base = Path(tempfile.mkdtemp(prefix="ll-shared-", dir="/tmp"))
    base.chmod(0o755)
    store = base / "store"
    uri = f"sqlite:///{store / 'ledger.db'}"
    for acc in (0.8, 0.9):
        with labledger.init("p", store=uri, config={"lr": acc / 10}, capture=False) as run:
            run.log({"acc": acc})
    try:
        yield store
    finally:
        for p in (store, *store.iterdir()):
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(base, ignore_errors=True)


def _cli(*args: str, uri: str, user: list[str] | None = None, cwd: Path | None = None) -> Any:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT / "src"),
        "LABLEDGER_URI": uri,
        "LABLEDGER_CONSOLE": "off",
        "HOME": str(cwd or "/tmp"),
    }
    return subprocess.run(
        [*(user or []), sys.executable, "-m", "labledger.cli", *args],
        env=env,
        cwd=cwd or "/tmp",
        capture_output=True,
        text=True,
        timeout=120,
    )


def _read_everything(uri: str, user: list[str] | None = None) -> None:
    out = _cli("ls", "--json", uri=uri, user=user)
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)
    assert sorted(r["summary"]["acc"] for r in runs) == [0.8, 0.9]
    show = _cli("show", "--json", runs[0]["id"][:8], uri=uri, user=user)
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["id"] == runs[0]["id"]
    best = _cli("best", "--metric", "acc", "--json", uri=uri, user=user)
    assert best.returncode == 0, best.stderr
    assert json.loads(best.stdout)[0]["value"] == 0.9
    assert "cannot write" not in out.stderr + show.stderr + best.stderr


def test_mode_ro_uri_reads_and_refuses_writes(shared: Path) -> None:
    uri = f"sqlite:///{shared / 'ledger.db'}?mode=ro"
    db = shared / "ledger.db"
    before = (db.stat().st_mtime_ns, db.read_bytes())
    _read_everything(uri)
    with labledger.Ledger(uri) as ledger:
        runs = ledger.runs(filter="summary.acc > 0.85")
        assert [r["summary"]["acc"] for r in runs] == [0.9]
        assert ledger.history(runs[0]["id"], "acc").values.tolist() == [0.9]
        with pytest.raises(StoreUnwritableError, match="read-only"):
            ledger.store.create_run({"id": "f" * 32, "project": "p", "name": "x"})
    with pytest.raises(StoreUnwritableError, match="read-only"):
        labledger.init("p", store=uri, capture=False)
    # the database is unchanged (SQLite may still create its -shm index beside it)
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before
    with labledger.Ledger(uri) as ledger:
        assert len(ledger.runs()) == 2


def test_chmod_store_is_readable_by_another_user(shared: Path) -> None:
    probe = (
        subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                "1",
            ],
            capture_output=True,
            timeout=60,
        )
        if shutil.which("setpriv")
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("cannot run a process as the user nobody here")
    for p in shared.iterdir():
        p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    shared.chmod(0o555)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    uri = f"sqlite:///{shared / 'ledger.db'}"
    _read_everything(uri, user=nobody)
    # a write by that user fails with one clear line, not a traceback
    home = Path(tempfile.mkdtemp(prefix="ll-nobody-", dir="/tmp"))
    home.chmod(0o777)
    try:
        (home / "w.py").write_text(
            f"import labledger\nlabledger.init('p', store={uri!r}, capture=False)\n"
        )
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "src"), "HOME": str(home)}
        w = subprocess.run(
            [*nobody, sys.executable, str(home / "w.py")],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert w.returncode != 0
        assert "StoreUnwritableError: cannot write the store" in w.stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)
