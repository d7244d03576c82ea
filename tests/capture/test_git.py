"""Git capture against real repositories: clean, dirty, untracked, ignored, detached, nested, none."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from _caphelpers import git

from labledger.capture.git import capture_git, git_patch


def _blobs() -> tuple[dict[str, bytes], object]:
    stored: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        stored[sha] = data
        return sha

    return stored, put


def test_clean_repo_records_commit_branch_and_no_patch(repo: Path) -> None:
    info = capture_git(repo, None)
    assert info is not None
    assert info["commit"] == git(repo, "rev-parse", "HEAD")
    assert info["branch"] == "main"
    assert info["dirty"] is False
    assert info["diff_sha256"] is None
    assert info["untracked"] == []
    assert Path(info["root"]) == repo


def test_dirty_patch_recreates_the_working_tree_on_a_fresh_checkout(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "train.py").write_text("print('train')\nprint('changed')\n")
    (repo / "lib.py").unlink()
    (repo / "notes.md").write_text("no trailing newline")
    (repo / "sub").mkdir()
    (repo / "sub" / "extra.py").write_text("Y = 2\n")
    (repo / "sub" / "empty.txt").write_text("")
    (repo / "run.log").write_text("ignored\n")
    (repo / "data").mkdir()
    (repo / "data" / "big.csv").write_text("1,2,3\n")
    stored, put = _blobs()
    info = capture_git(repo, put)  # type: ignore[arg-type]
    assert info is not None and info["dirty"] is True
    assert info["untracked"] == ["notes.md", "sub/empty.txt", "sub/extra.py"]
    patch = stored[info["diff_sha256"]]
    assert hashlib.sha256(patch).hexdigest() == info["diff_sha256"]
    assert b"run.log" not in patch and b"big.csv" not in patch  # ignored files stay out

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-q", info["commit"])
    subprocess.run(["git", "apply", "-"], cwd=clone, input=patch, check=True, capture_output=True)
    assert (clone / "train.py").read_text() == "print('train')\nprint('changed')\n"
    assert not (clone / "lib.py").exists()
    assert (clone / "notes.md").read_text() == "no trailing newline"
    assert (clone / "sub" / "extra.py").read_text() == "Y = 2\n"
    assert (clone / "sub" / "empty.txt").read_text() == ""


def test_staged_changes_are_in_the_patch(repo: Path) -> None:
    (repo / "lib.py").write_text("X = 3\n")
    git(repo, "add", "lib.py")
    stored, put = _blobs()
    info = capture_git(repo, put)  # type: ignore[arg-type]
    assert info is not None and info["dirty"]
    assert b"+X = 3" in stored[info["diff_sha256"]]


def test_binary_and_oversized_untracked_files_are_listed_as_excluded(repo: Path) -> None:
    (repo / "weights.bin").write_bytes(b"\x00\x01\x02" * 100)
    (repo / "huge.txt").write_text("x" * 5000 + "\n")
    (repo / "small.txt").write_text("ok\n")
    patch, excluded = git_patch(
        repo,
        git(repo, "rev-parse", "HEAD"),
        ["huge.txt", "small.txt", "weights.bin"],
        file_max=1000,
    )
    reasons = {e["path"]: e["reason"] for e in excluded}
    assert reasons == {"huge.txt": "file cap", "weights.bin": "binary"}
    assert b"+ok" in patch and b"xxxxx" not in patch


def test_total_cap_leaves_out_later_files_and_says_so(repo: Path) -> None:
    for i in range(5):
        (repo / f"f{i}.txt").write_text(f"{i}" * 300 + "\n")
    patch, excluded = git_patch(
        repo, git(repo, "rev-parse", "HEAD"), [f"f{i}.txt" for i in range(5)], total_max=800
    )
    assert len(excluded) >= 3 and {e["reason"] for e in excluded} == {"total cap"}
    assert len(patch) <= 800


def test_detached_head(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "lib.py").write_text("X = 2\n")
    git(repo, "commit", "-qam", "second")
    git(repo, "checkout", "-q", first)
    info = capture_git(repo, None)
    assert info is not None
    assert info["commit"] == first
    assert info["branch"] is None and info["detached"] is True
    assert info["dirty"] is False


def test_nested_repository_is_captured_from_inside_and_excluded_from_outside(repo: Path) -> None:
    inner = repo / "vendor" / "inner"
    inner.mkdir(parents=True)
    git(inner, "init", "-q", "-b", "dev")
    (inner / "a.py").write_text("A = 1\n")
    git(inner, "add", ".")
    git(inner, "commit", "-q", "-m", "inner")
    info_in = capture_git(inner, None)
    assert info_in is not None
    assert Path(info_in["root"]) == inner and info_in["branch"] == "dev"
    assert info_in["commit"] == git(inner, "rev-parse", "HEAD")
    info_out = capture_git(repo, lambda b: hashlib.sha256(b).hexdigest())
    assert info_out is not None and Path(info_out["root"]) == repo
    assert {"path": "vendor/inner/", "reason": "nested repository", "size": None} in info_out[
        "excluded"
    ]


def test_repository_without_commits(tmp_path: Path) -> None:
    r = tmp_path / "fresh"
    r.mkdir()
    git(r, "init", "-q")
    (r / "a.py").write_text("A = 1\n")
    stored, put = _blobs()
    info = capture_git(r, put)  # type: ignore[arg-type]
    assert info is not None and info["commit"] is None
    assert info["dirty"] is True and b"+A = 1" in stored[info["diff_sha256"]]


def test_remote_credentials_are_stripped(repo: Path) -> None:
    git(
        repo,
        "remote",
        "add",
        "origin",
        "https://alice:ghp_FAKEtoken1234567890abcdefXYZ@github.com/org/proj.git",
    )
    info = capture_git(repo, None)
    assert info is not None
    assert info["remote"] == "https://github.com/org/proj.git"


def test_store_folder_in_the_repository_does_not_make_it_dirty(repo: Path) -> None:
    (repo / ".labledger").mkdir()
    (repo / ".labledger" / "ledger.db").write_bytes(b"SQLite format 3\x00")
    (repo / "mystore.db").write_bytes(b"x")
    (repo / "mystore.db-wal").write_bytes(b"x")
    info = capture_git(repo, None, ignore=[repo / "mystore.db"])
    assert info is not None and info["dirty"] is False and info["untracked"] == []


def test_outside_git_returns_none(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    assert capture_git(d, None) is None


def test_a_failing_probe_is_recorded_and_the_others_carry_on(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labledger.capture import capture_env

    (repo / ".git" / "index").write_bytes(b"garbage, not an index")
    monkeypatch.chdir(repo)
    env = capture_env()
    assert "git" in env["errors"] and "index" in env["errors"]["git"].lower()
    assert "git" not in env
    assert env["packages"] and env["python"]["version"] and env["hardware"]["cpu_count"]
