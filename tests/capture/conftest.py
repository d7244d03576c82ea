"""Fixtures for the capture tests: real git repositories and real training subprocesses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _caphelpers import Script, git


@pytest.fixture(autouse=True)
def _capture_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABLEDGER_CACHE_DIR", str(tmp_path / "cache"))
    for k, v in {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }.items():
        monkeypatch.setenv(k, v)
    from labledger.capture import reset_warnings

    reset_warnings()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit: train.py, lib.py and a .gitignore for *.log and data/."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "train.py").write_text("print('train')\n")
    (r / "lib.py").write_text("X = 1\n")
    (r / ".gitignore").write_text("*.log\ndata/\n")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "first")
    return r


@pytest.fixture
def script(store_uri: str) -> Script:
    return Script(store_uri)
