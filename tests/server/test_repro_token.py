"""`labledger repro` against a token-protected server: the token reaches the re-run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .conftest import Server, labledger
from .test_auth import token

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "repro"))

from _rhelpers import TRAIN_COMMITTED, base_env, git, make_data


def test_repro_on_a_token_protected_server_reproduces_with_token_option(
    module_pg: str, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    srv = make_server(module_pg)
    _, secret = token(srv, "alice", "proj", "write")
    repo = tmp_path / "proj"
    repo.mkdir()
    env = base_env(srv.url, tmp_path)
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text(TRAIN_COMMITTED)
    git(repo, "add", "train.py")
    subprocess.run(["git", "commit", "-qm", "train"], cwd=repo, env=env, check=True)
    data = make_data(tmp_path / "train.csv")
    res = subprocess.run(
        [sys.executable, "train.py", str(data)],
        cwd=repo,
        env={**env, "LABLEDGER_TOKEN": secret},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    (run,) = json.loads(
        labledger("ls", "--json", "--store", srv.url, env={"LABLEDGER_TOKEN": secret}).stdout
    )

    # no LABLEDGER_TOKEN in the environment: only --token, which the re-run must get too
    out = labledger(
        "repro",
        run["id"],
        "--store",
        srv.url,
        "--token",
        secret,
        "--json",
        env={"LABLEDGER_CACHE_DIR": str(tmp_path / "cache")},
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["verdict"] == "reproduced", result["reason"]
    assert result["repro_run_id"] is not None
    assert secret not in out.stdout  # the token is never printed
    shown = json.loads(
        labledger(
            "show", run["id"], "--json", "--store", srv.url, env={"LABLEDGER_TOKEN": secret}
        ).stdout
    )
    assert shown["repro"]["verdict"] == "reproduced"
