"""Helpers for repro tests: a real git project with a seeded numpy training script.

Everything runs for real: git, the training script as a tracked subprocess, and the
``labledger`` CLI as a subprocess from another directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

TRAIN_COMMITTED = """\
import sys

import numpy as np

import labledger

LR = 0.1
data_path = sys.argv[1]
run = labledger.init(config={"lr": LR})
seed = labledger.seed_everything()  # drawn from the OS, recorded, replayed by repro
run.log_dataset(data_path, name="train")
data = np.loadtxt(data_path, delimiter=",")
X, y = data[:, :-1], data[:, -1]
rng = np.random.default_rng(seed)
w = rng.normal(size=X.shape[1])
for step in range(40):
    noise = rng.normal(scale=0.01, size=X.shape[1])
    w -= LR * (X.T @ (X @ w - y) / len(y)) + noise
    run.log({"loss": float(np.mean((X @ w - y) ** 2))})
run.summary["lr_used"] = LR
run.summary["w0"] = float(w[0])
"""

# The uncommitted edit: another learning rate and an untracked helper module.
TRAIN_EDITED = (
    TRAIN_COMMITTED.replace("LR = 0.1", "LR = 0.05")
    .replace("import labledger\n", "import labledger\nfrom helper import clip\n")
    .replace('run.summary["w0"] = float(w[0])', 'run.summary["w0"] = clip(float(w[0]))')
)

HELPER = "def clip(x):\n    return max(-10.0, min(10.0, x))\n"


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout


def make_data(path: Path, seed: int = 0) -> Path:
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(64, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    np.savetxt(path, np.column_stack([X, y]), delimiter=",")
    return path


def base_env(store_uri: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update(
        LABLEDGER_URI=store_uri,
        LABLEDGER_CONSOLE="off",
        LABLEDGER_CACHE_DIR=str(tmp / "cache"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    return env


@dataclass
class Project:
    repo: Path
    data: Path
    store_uri: str
    env: dict[str, str]
    other: Path  # a directory outside the repository, where repro is started from

    def train(self, script: str = "train.py", *args: str, env: dict[str, str] | None = None) -> str:
        """Run the script tracked, as the user would; return the new run id."""
        res = subprocess.run(
            [sys.executable, script, str(self.data), *args],
            cwd=self.repo,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        runs = self.cli_json("ls", "--json")
        return str(runs[0]["id"])

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "labledger.cli", *args],
            cwd=self.other,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=240,
        )

    def cli_json(self, *args: str) -> Any:
        res = self.cli(*args)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def repro(self, *args: str) -> tuple[int, dict[str, Any], str]:
        res = self.cli("repro", *args, "--json")
        assert res.stdout.strip(), res.stderr
        return res.returncode, json.loads(res.stdout), res.stderr


def tree_state(repo: Path) -> dict[str, Any]:
    """Everything a user could see of a working tree: status, HEAD, worktrees, every file's bytes."""
    files = {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    return {
        "status": git(repo, "status", "--porcelain=v1", "-uall"),
        "head": git(repo, "rev-parse", "HEAD"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
        "files": files,
    }
