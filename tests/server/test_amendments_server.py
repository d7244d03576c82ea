"""Amendments through a real server on PostgreSQL, two users (docs/trust.md "Sealed values
and amendments").

Alice's run logged 0.89 and Bob's 0.90; after both finished, Alice amends hers to 0.991
from a clone whose git config claims someone else. The amendment names the token's user
(the true actor), Bob cannot amend Alice's run, an admin's amendment names the admin, and
every reader through the server ranks by the sealed values with the amendment shown.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, Server, make_token

pytestmark = pytest.mark.postgres

TRAIN = """
import labledger
with labledger.init("beta", name={name!r}, config={{"lr": {lr}}}) as run:
    for i in range(40):
        run.log({{"val_acc": {final} - (39 - i) / 1000}})
print(run.id)
"""


def _env(server: Server, tok: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        LABLEDGER_URI=server.url,
        LABLEDGER_TOKEN=tok,
        LABLEDGER_CONSOLE="off",
        LABLEDGER_CAPTURE="off",
        COLUMNS="200",
    )
    return env


def _run(server: Server, tok: str, args: list[str], cwd: Path | None = None) -> Any:
    return subprocess.run(
        args, env=_env(server, tok), cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _cli(server: Server, tok: str, *args: str, cwd: Path | None = None) -> Any:
    return _run(server, tok, [sys.executable, "-m", "labledger.cli", *args], cwd=cwd)


def _train(server: Server, tok: str, cwd: Path, name: str, final: float, lr: float) -> str:
    out = _run(
        server, tok, [sys.executable, "-c", TRAIN.format(name=name, final=final, lr=lr)], cwd
    )
    assert out.returncode == 0, out.stderr
    return str(out.stdout.split()[-1])


def test_an_amendment_names_its_true_actor_and_never_ranks_silently(
    shared_server: Server, tmp_path: Path
) -> None:
    srv = shared_server
    alice = make_token(srv, "alice", "beta", "write")
    bob = make_token(srv, "bob", "beta", "write")
    root = make_token(srv, "root", "*", "admin")
    clone = tmp_path / "clone"
    clone.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=clone, check=True)
    subprocess.run(["git", "config", "user.email", "mallory@evil.example"], cwd=clone, check=True)
    mine = _train(srv, alice, clone, "alice-run", 0.89, lr=0.1)
    theirs = _train(srv, bob, tmp_path, "bob-run", 0.90, lr=0.2)
    before = _cli(srv, alice, "cite", mine, "--metric", "val_acc")
    assert before.returncode == 0, before.stderr

    # alice amends her finished run; her clone claims mallory, the server knows better
    out = _cli(
        srv, alice, "edit", mine, "--summary", "val_acc=0.991", "--reason", "new eval", cwd=clone
    )
    assert out.returncode == 0, out.stderr
    assert "amended summary.val_acc: 0.89 -> 0.991  (by alice)" in out.stdout
    # bob may not amend alice's run
    refused = _cli(srv, bob, "edit", mine, "--summary", "val_acc=0.5")
    assert refused.returncode == 1 and "belongs to 'alice'" in refused.stderr
    # an admin may, and the amendment names the admin
    out = _cli(srv, root, "edit", theirs, "--summary", "val_acc=0.905", "--reason", "rounding")
    assert out.returncode == 0, out.stderr

    doc = json.loads(_cli(srv, bob, "show", mine, "--json").stdout)
    assert doc["author"] == "alice"
    assert doc["summary"]["val_acc"] == 0.89
    a = doc["amended"]["val_acc"]
    assert (a["sealed"], a["value"], a["by"], a["reason"]) == (0.89, 0.991, "alice", "new eval")
    doc = json.loads(_cli(srv, alice, "show", theirs, "--json").stdout)
    assert doc["author"] == "bob" and doc["amended"]["val_acc"]["by"] == "root"

    # every reader through the server: sealed ranking, amendment beside it
    board = json.loads(_cli(srv, bob, "best", "--metric", "val_acc", "-p", "beta", "--json").stdout)
    assert [(r["id"], r["value"]) for r in board] == [(theirs, 0.90), (mine, 0.89)]
    assert board[1]["amended"]["value"] == 0.991 and board[1]["amended"]["by"] == "alice"
    board = json.loads(
        _cli(srv, bob, "best", "-m", "val_acc", "-p", "beta", "--amended", "--json").stdout
    )
    assert [(r["id"], r["value"]) for r in board] == [(mine, 0.991), (theirs, 0.905)]
    table = _cli(srv, bob, "ls", "-p", "beta", "--columns", "val_acc").stdout
    assert "0.89 (amended: 0.991)" in table and "0.9 (amended: 0.905)" in table
    exported = tmp_path / "beta.csv"
    out = _cli(srv, bob, "export", "-p", "beta", "-o", str(exported))
    assert out.returncode == 0, out.stderr
    with open(exported, newline="") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    assert float(rows[mine]["summary.val_acc"]) == 0.89
    assert float(rows[mine]["amended.val_acc"]) == 0.991

    # citations through the server
    assert _cli(srv, bob, "check", before.stdout.strip()).returncode == 0
    marked = _cli(srv, alice, "cite", mine, "--metric", "val_acc", "--amended").stdout.strip()
    assert "0.991 (amended)" in marked
    report = _cli(srv, bob, "check", marked)
    assert report.returncode == 0 and report.stdout.startswith("AMENDED")
    assert "amended by alice" in report.stdout
    record = marked.split("record ")[1].rstrip(")")
    forged = f"val_acc = 0.991 (labledger run {mine[:12]}, record {record})"
    report = _cli(srv, bob, "check", forged)
    assert report.returncode == 1 and "is an amended value" in report.stdout

    verify = _cli(srv, root, "audit", "verify", "--project", "beta")
    assert verify.returncode == 0, verify.stdout + verify.stderr
