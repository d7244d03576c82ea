"""Owned runs on a real server over PostgreSQL: two users, two tokens (docs/trust.md).

The author is the token's user, set by the server whatever the client claims; only the
author (or an admin) may write to a run; a finished run is frozen; edits are events;
the server seals records and ``audit verify`` through it catches a direct SQL UPDATE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from .conftest import ROOT, Server
from .test_auth import token

pytestmark = pytest.mark.postgres

TRAIN = """
import labledger
with labledger.init("alpha", name="alice-best", config={"lr": 0.01}) as run:
    for i in range(100):
        run.log({"val_acc": 0.8 + i / 1100})
print(run.id)
"""


def _client_env(server: Server, tok: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        LABLEDGER_URI=server.url,
        LABLEDGER_TOKEN=tok,
        LABLEDGER_CONSOLE="off",
        **extra,
    )
    return env


def _cli(server: Server, tok: str, *args: str, cwd: Path | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        env=_client_env(server, tok),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_users_author_ownership_frozen_runs_and_audit_through_the_server(
    shared_server: Server, tmp_path: Path
) -> None:
    srv = shared_server
    alice = token(srv, "alice", "alpha", "write")[1]
    bob = token(srv, "bob", "alpha", "write")[1]
    root = token(srv, "root", "*", "admin")[1]

    # alice trains from a clone whose git config claims someone else: the server decides
    repo = tmp_path / "clone"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.email", "mallory@evil.example"], cwd=repo, check=True)
    out = subprocess.run(
        [sys.executable, "-c", TRAIN],
        env=_client_env(srv, alice, LABLEDGER_CAPTURE="off"),
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.split()[-1]
    shown = json.loads(_cli(srv, bob, "show", run_id, "--json").stdout)
    assert shown["author"] == "alice" and shown["status"] == "finished"
    assert len(shown["record_sha256"]) == 64  # sealed by the server
    listed = json.loads(_cli(srv, bob, "ls", "--json", "-f", 'author = "alice"').stdout)
    assert [r["id"] for r in listed] == [run_id]

    # a raw client claiming an author gets the token's user instead
    claimed = uuid.uuid4().hex
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {bob}"}) as c:
        r = c.post(
            "/api/v1/runs",
            json={"id": claimed, "project": "alpha", "name": "bob-run", "author": "alice"},
        )
        assert r.status_code == 201, r.text
        assert c.get(f"/api/v1/runs/{claimed}").json()["author"] == "bob"

        # bob may not write to alice's run: not a batch, not a heartbeat, not an edit
        batch = {
            "id": uuid.uuid4().hex,
            "run_update": {"summary": {"val_acc": 0.97}, "config": {"lr": 1.0}},
        }
        r = c.post(f"/api/v1/runs/{run_id}/batches", json=batch)
        assert r.status_code == 403 and r.json()["code"] == "not_owner"
        assert "belongs to 'alice'" in r.json()["message"]
        assert "you are 'bob'" in r.json()["message"]
        assert c.post(f"/api/v1/runs/{run_id}/heartbeat").status_code == 403
        r = c.post(f"/api/v1/runs/{run_id}/edits", json={"notes": "mine now"})
        assert r.status_code == 403 and r.json()["code"] == "not_owner"

    # through the CLI, bob gets the same clear one-line refusal
    refused = _cli(srv, bob, "edit", run_id, "--summary", "val_acc=0.97")
    assert refused.returncode == 1 and "belongs to 'alice'" in refused.stderr

    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {alice}"}) as c:
        # alice owns it, but it has finished: frozen
        r = c.post(
            f"/api/v1/runs/{run_id}/batches",
            json={"id": uuid.uuid4().hex, "run_update": {"config": {"lr": 1.0}}},
        )
        assert r.status_code == 409 and r.json()["code"] == "run_finished"
        assert "config cannot change" in r.json()["message"]
        # notes, tags, summary stay editable: stored as edit events by alice
        r = c.post(
            f"/api/v1/runs/{run_id}/edits", json={"notes": "the winner", "add_tags": ["paper"]}
        )
        assert r.status_code == 200, r.text
        assert {e["author"] for e in r.json()["edits"]} == {"alice"}

    # an admin may edit anyone's run; the edit names the admin
    admin_edit = _cli(srv, root, "edit", run_id, "--tag", "reviewed")
    assert admin_edit.returncode == 0, admin_edit.stderr
    history = _cli(srv, bob, "show", run_id, "--history").stdout
    assert "alice  notes: (unset) -> the winner" in history
    assert "root  tags:" in history

    # a citation checked through the server, then the chain verified, then tampered with
    cite = _cli(srv, bob, "cite", run_id, "--metric", "val_acc")
    assert cite.returncode == 0, cite.stderr
    assert _cli(srv, bob, "check", cite.stdout.strip()).returncode == 0
    ok = _cli(srv, root, "audit", "verify", "--project", "alpha")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    head = json.loads(_cli(srv, root, "audit", "head", "--json").stdout)
    assert [h["project"] for h in head] == ["alpha"]

    engine = sa.create_engine(srv.backend_uri)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE runs SET summary = CAST(:s AS jsonb) WHERE id = :r"),
                {"s": '{"val_acc": 0.99}', "r": run_id},
            )
    finally:
        engine.dispose()
    deadline = time.monotonic() + 30
    while True:  # the server caches nothing of the record, but be generous on a busy machine
        bad = _cli(srv, root, "audit", "verify", "--project", "alpha")
        if bad.returncode == 1 or time.monotonic() > deadline:
            break
    assert bad.returncode == 1
    assert f"alpha/{run_id} field summary" in bad.stdout
    assert _cli(srv, bob, "check", cite.stdout.strip()).returncode == 1
