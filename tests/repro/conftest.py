"""Fixtures for repro tests (helpers in _rhelpers.py): real git, real subprocesses, the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _rhelpers import HELPER, TRAIN_COMMITTED, TRAIN_EDITED, Project, base_env, git, make_data


@pytest.fixture
def project(tmp_path: Path, store_uri: str) -> Project:
    repo = tmp_path / "proj"
    repo.mkdir()
    other = tmp_path / "elsewhere"
    other.mkdir()
    env = base_env(store_uri, tmp_path)
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text(TRAIN_COMMITTED)
    (repo / ".gitignore").write_text("data/\n")
    git(repo, "add", "train.py", ".gitignore")
    subprocess.run(["git", "commit", "-qm", "train"], cwd=repo, env=env, check=True)
    (repo / "train.py").write_text(TRAIN_EDITED)
    (repo / "helper.py").write_text(HELPER)
    data_dir = tmp_path / "datasets"
    data_dir.mkdir()
    return Project(repo, make_data(data_dir / "train.csv"), store_uri, env, other)
