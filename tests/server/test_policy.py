"""Project policy: the server refuses to mark a run finished without a git commit, a seed, a dataset."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from labledger.store.sql import SqlStore

from .conftest import Server, cli_env, labledger

SCRIPT = """
import sys, labledger
seed = int(sys.argv[1]) if len(sys.argv) > 1 else None
run = labledger.init(project="strict", name="r", seed=seed)
run.log({"loss": 0.5})
run.finish()
print(run.id)
"""


def _script(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env({"LABLEDGER_URI": url, "LABLEDGER_SPOOL_DIR": str(tmp / "spool")})
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _git_repo(path: Path) -> None:
    path.mkdir()
    (path / "train.py").write_text("print('hi')\n")
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "."],
        ["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x"],
    ):
        subprocess.run(cmd, cwd=path, check=True)


def test_policy_is_set_by_an_admin_and_enforced_at_finish(
    pg_uri: str, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    srv = make_server(pg_uri)
    out = labledger(
        "server", "policy", "strict", "--require", "git", "--require", "seed",
        "--backend-uri", pg_uri, "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"project": "strict", "require": ["git", "seed"]}
    shown = labledger("server", "policy", "strict", "--backend-uri", pg_uri)
    assert "git" in shown.stdout and "seed" in shown.stdout

    # outside git and without a seed: said at init, refused at finish, recorded as failed
    bare = tmp_path / "bare"
    bare.mkdir()
    p = _script(bare, srv.url)
    assert p.returncode == 0, p.stderr
    assert "requires every finished run to carry: git, seed" in p.stderr
    assert "recorded as failed, not finished" in p.stderr and "a git commit" in p.stderr
    sql = SqlStore(pg_uri)
    try:
        run = sql.get_run(p.stdout.split()[-1])
        assert run["status"] == "failed"
        assert "missing a git commit" in run["error"] and "a seed" in run["error"]
        assert run["metrics"]["loss"]["count"] == 1  # the points were kept

        # in a git checkout with a seed: finished
        repo = tmp_path / "repo"
        _git_repo(repo)
        p = _script(repo, srv.url, "7")
        assert p.returncode == 0, p.stderr
        assert "recorded as failed" not in p.stderr, p.stderr
        assert sql.get_run(p.stdout.split()[-1])["status"] == "finished"

        # raw API calls cannot bypass it: batch route, replay route, creation as finished
        with httpx.Client(base_url=srv.url) as c:
            rid = uuid.uuid4().hex
            r = c.post("/api/v1/runs", json={"id": rid, "project": "strict", "name": "raw"})
            assert r.status_code == 201 and r.json()["policy"] == {"require": ["git", "seed"]}
            r = c.post(
                f"/api/v1/runs/{rid}/batches",
                json={"id": uuid.uuid4().hex, "run_update": {"status": "finished", "seed": 1}},
            )
            assert r.status_code == 200 and r.json()["policy"]["missing"] == ["git"]
            assert sql.get_run(rid)["status"] == "failed"
            rid2 = uuid.uuid4().hex
            r = c.post(
                "/api/v1/replay",
                json={
                    "requests": [
                        {"kind": "run", "body": {"id": rid2, "project": "strict", "name": "rp"}},
                        {
                            "kind": "batch",
                            "run_id": rid2,
                            "body": {"id": uuid.uuid4().hex, "run_update": {"status": "finished"}},
                        },
                    ]
                },
            )
            assert r.status_code == 200
            assert r.json()["results"][1]["body"]["policy"]["missing"] == ["git", "seed"]
            assert sql.get_run(rid2)["status"] == "failed"
            r = c.post(
                "/api/v1/runs",
                json={
                    "id": uuid.uuid4().hex,
                    "project": "strict",
                    "name": "x",
                    "status": "finished",
                },
            )
            assert r.status_code == 422 and r.json()["code"] == "policy_violation"
            # other projects are not concerned
            rid3 = uuid.uuid4().hex
            c.post("/api/v1/runs", json={"id": rid3, "project": "free", "name": "f"})
            c.post(
                f"/api/v1/runs/{rid3}/batches",
                json={"id": uuid.uuid4().hex, "run_update": {"status": "finished"}},
            )
            assert sql.get_run(rid3)["status"] == "finished"
            assert c.get("/api/v1/projects/strict/policy").json() == {
                "project": "strict",
                "require": ["git", "seed"],
            }
    finally:
        sql.close()

    # over HTTP, only an admin of the project may change it
    def tok(user: str, project: str, role: str) -> str:
        out = labledger(
            "server", "token", "create", "--backend-uri", pg_uri, "--user", user,
            "--project", project, "--role", role, "--json",
        )  # fmt: skip
        return str(json.loads(out.stdout)["token"])

    writer, admin = tok("w", "strict", "write"), tok("a", "strict", "admin")
    body = {"require": ["dataset"]}
    r = httpx.put(
        srv.url + "/api/v1/projects/strict/policy",
        json=body,
        headers={"Authorization": f"Bearer {writer}"},
    )
    assert r.status_code == 403
    r = httpx.put(
        srv.url + "/api/v1/projects/strict/policy",
        json=body,
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert r.status_code == 200 and r.json()["require"] == ["dataset"]
    r = httpx.put(
        srv.url + "/api/v1/projects/strict/policy",
        json={"require": ["nonsense"]},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert r.status_code == 422
