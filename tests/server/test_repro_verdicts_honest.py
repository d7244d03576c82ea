"""A verdict exists only with its reproduction run (issue 20, item 5), on a real server on
PostgreSQL with two users: a forged "not-reproduced" is refused with 400 and the author's
citation still passes ``check``; a real reproduction by another writer is stored, with
the caller as the one who reproduced, and stays out of the leaderboard."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from labledger._exceptions import VerdictRefusedError
from labledger.remote.http import HttpStore

from .conftest import Server, labledger, make_token

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "repro"))

from _rhelpers import TRAIN_COMMITTED, base_env, git, make_data


def test_forged_verdict_is_refused_and_a_real_reproduction_records_who(
    module_pg: str, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    srv = make_server(module_pg)
    alice = make_token(srv, "alice", "proj", "write")
    bob = make_token(srv, "bob", "proj", "write")
    repo = tmp_path / "proj"
    repo.mkdir()
    env = base_env(srv.url, tmp_path)
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text(TRAIN_COMMITTED)
    git(repo, "add", "train.py")
    subprocess.run(["git", "commit", "-qm", "train"], cwd=repo, env=env, check=True)
    data = make_data(tmp_path / "train.csv")
    for _ in range(2):  # the winner, and another ordinary run of alice's
        res = subprocess.run(
            [sys.executable, "train.py", str(data)],
            cwd=repo,
            env={**env, "LABLEDGER_TOKEN": alice},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
    as_alice = {"LABLEDGER_TOKEN": alice}
    runs = json.loads(labledger("ls", "--json", "--store", srv.url, env=as_alice).stdout)
    original, other = runs[1]["id"], runs[0]["id"]
    cited = labledger("cite", original, "--metric", "w0", "--store", srv.url, env=as_alice)
    assert cited.returncode == 0, cited.stderr
    citation = cited.stdout.strip()

    # bob, a writer of the project, forges verdicts on alice's run: none is stored
    headers = {"Authorization": f"Bearer {bob}"}
    url = f"{srv.url}/api/v1/repro-verdicts"
    for body in (
        {"original_run_id": original, "verdict": "not-reproduced"},
        {"original_run_id": original, "repro_run_id": other, "verdict": "not-reproduced"},
        {"original_run_id": original, "verdict": "not-reproducible", "reason": "trust me"},
    ):
        resp = httpx.post(url, json=body, headers=headers)
        assert resp.status_code == 400, resp.text
        assert resp.json()["details"]["error"]["type"] == "VerdictRefusedError"
    bob_store = HttpStore(srv.url, token=bob, spool_dir=tmp_path / "spool")
    try:
        with pytest.raises(VerdictRefusedError, match="exists only with its reproduction run"):
            bob_store.add_repro_verdict({"original_run_id": original, "verdict": "not-reproduced"})
        assert bob_store.repro_verdicts([original]) == []
    finally:
        bob_store.close()
    checked = labledger("check", citation, "--store", srv.url, env=as_alice)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # bob reproduces for real: the verdict is stored with bob as the one who reproduced
    out = labledger(
        "repro",
        original,
        "--store",
        srv.url,
        "--token",
        bob,
        "--json",
        env={"LABLEDGER_CACHE_DIR": str(tmp_path / "cache")},
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["verdict"] == "reproduced", result["reason"]
    shown = json.loads(
        labledger("show", original, "--json", "--store", srv.url, env=as_alice).stdout
    )["repro"]
    (verdict,) = shown["verdicts"]
    assert verdict["by"] == "bob" and verdict["repro_run_id"] == result["repro_run_id"]
    repro_run = json.loads(
        labledger("show", result["repro_run_id"], "--json", "--store", srv.url, env=as_alice).stdout
    )
    assert repro_run["job_type"] == "repro" and repro_run["author"] == "bob"

    # naming that real reproduction does not make a forged "not-reproduced" true
    resp = httpx.post(
        url,
        json={
            "original_run_id": original,
            "repro_run_id": result["repro_run_id"],
            "verdict": "not-reproduced",
            "details": {"metrics": [{"key": "w0", "status": "differs"}]},
        },
        headers=headers,
    )
    assert resp.status_code == 400 and "give 'reproduced'" in resp.json()["message"]

    # the reproduction ties with its original but does not take a place on the board
    best = json.loads(
        labledger("best", "-m", "w0", "--json", "--store", srv.url, env=as_alice).stdout
    )
    assert result["repro_run_id"] not in [r["id"] for r in best]
    board = httpx.get(
        f"{srv.url}/api/v1/leaderboard",
        params={"metric": "w0", "project": "proj"},
        headers=headers,
    ).json()["runs"]
    assert result["repro_run_id"] not in [r["id"] for r in board]
    listed = httpx.get(
        f"{srv.url}/api/v1/runs", params={"include_repro": "false"}, headers=headers
    ).json()
    assert listed["total"] == 2 and result["repro_run_id"] not in [r["id"] for r in listed["runs"]]
    checked = labledger("check", citation, "--store", srv.url, env=as_alice)
    assert checked.returncode == 0, checked.stdout + checked.stderr
