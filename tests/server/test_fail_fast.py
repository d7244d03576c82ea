"""Configuration faults stop tracking at once, with the fix named (issue 26, item 4).

A refused token and a PostgreSQL database that does not exist are not outages: the
store is opened once, nothing is retried or kept in the outbox, ``finish()`` does not
wait, and the one warning says what to change. Transient faults still go to the outbox
(``test_offline.py``, ``test_outbox_kill.py``).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import labledger
from labledger import AuthError, StoreConfigError, UsageError
from labledger.tracking import _run

from .conftest import PG_ENV, Server, make_token


def _track(monkeypatch: pytest.MonkeyPatch, store: str) -> tuple[Any, list[str], list[int]]:
    """init(), log, finish(); (run, warnings, opens): how often the store was opened."""
    opens: list[int] = []
    real = _run.Run._open_store

    def counted(self: Any) -> Any:
        opens.append(1)
        return real(self)

    monkeypatch.setattr(_run.Run, "_open_store", counted)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = labledger.init("p", store=store, capture=False, system_metrics=False)
        for i in range(1000):
            run.log({"loss": float(i)})
        run.finish()
    return run, [str(w.message) for w in caught], opens


def _stopped_at_once(run: Any, said: list[str], opens: list[int], spool: Path) -> str:
    writer = run._writer
    assert writer.fatal is not None, said
    assert not writer.is_alive()  # no retry loop left behind
    assert opens == [1]  # opened once: no retry
    assert not list(spool.rglob("*.json"))  # nothing kept in the outbox
    fatal = [m for m in said if "is not being recorded" in m]
    assert len(fatal) == 1, said
    assert not [m for m in said if "retrying" in m or "labledger sync" in m], said
    return fatal[0]


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    spool = tmp_path / "spool"
    monkeypatch.setenv("LABLEDGER_SPOOL_DIR", str(spool))
    return spool


@pytest.fixture
def guarded(tmp_path: Path, make_server: Callable[..., Server]) -> Server:
    srv = make_server(f"sqlite:///{tmp_path / 'server.db'}")
    make_token(srv, "alice", "p", "write")  # from now on the server wants a token
    return srv


def test_a_wrong_token_stops_tracking_at_once_with_the_fix(
    guarded: Server, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABLEDGER_TOKEN", "llt_" + "0" * 40)
    run, said, opens = _track(monkeypatch, guarded.url)
    message = _stopped_at_once(run, said, opens, spool)
    assert isinstance(run._writer.fatal, AuthError) and run._writer.fatal.status_code == 401
    assert "set LABLEDGER_TOKEN to a valid token" in message
    assert "not reachable" not in message


def test_a_missing_token_stops_tracking_at_once_with_the_fix(
    guarded: Server, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABLEDGER_TOKEN", raising=False)
    run, said, opens = _track(monkeypatch, guarded.url)
    message = _stopped_at_once(run, said, opens, spool)
    assert "requires a token: set LABLEDGER_TOKEN" in message


def test_a_read_only_token_stops_tracking_at_once_with_the_fix(
    guarded: Server, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABLEDGER_TOKEN", make_token(guarded, "bob", "p", "read"))
    run, said, opens = _track(monkeypatch, guarded.url)
    message = _stopped_at_once(run, said, opens, spool)
    assert run._writer.fatal.status_code == 403
    assert "write role" in message


def test_a_missing_database_stops_tracking_at_once_with_the_fix(
    spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    missing = base.rsplit("/", 1)[0] + "/lls_missing_" + uuid.uuid4().hex[:8]
    run, said, opens = _track(monkeypatch, missing)
    message = _stopped_at_once(run, said, opens, spool)
    assert isinstance(run._writer.fatal, StoreConfigError)
    assert "does not exist" in message
    assert "create the database or correct LABLEDGER_URI" in message


def test_an_unknown_scheme_is_refused_by_init_itself(spool: Path) -> None:
    with pytest.raises(UsageError, match="unsupported store URI"):
        labledger.init("p", store="postgress://db/x", capture=False)
    assert not list(spool.rglob("*.json"))


def test_sync_with_a_refused_token_keeps_the_outbox_and_names_the_fix(
    guarded: Server, tmp_path: Path
) -> None:
    from labledger.remote._outbox import run_record
    from labledger.remote.spool import Spool

    from .conftest import labledger as cli

    spool = tmp_path / "outbox"
    box = Spool(spool)
    box.put(run_record(guarded.url, {"id": "a" * 32, "project": "p", "name": "n"}))
    box.close()  # its process is gone: sync takes it
    res = cli("sync", "--spool-dir", str(spool), "--token", "llt_" + "1" * 40)
    assert res.returncode == 1
    assert "set LABLEDGER_TOKEN to a valid token" in res.stdout + res.stderr
    assert len(list(spool.glob("*/*.json"))) == 1  # kept for a sync with the right token
    token = make_token(guarded, "carol", "p", "write")
    res = cli("sync", "--spool-dir", str(spool), "--token", token)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not list(spool.glob("*/*.json"))
