"""The recorded code, recreated in a new directory: git checkout + patch, or the script snapshot.

The user's working tree is only ever read: a ``git worktree add`` writes the new
checkout elsewhere (and a small entry under ``.git/worktrees`` that is removed with it),
and the recorded patch is applied inside the new checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .._exceptions import ReproError

__all__ = ["CodeSource", "code_source", "prepare_code", "remove_code"]

# Never run the user's hooks (post-checkout, ...) and never ask for credentials.
_GIT = ["git", "-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false"]


@dataclass
class CodeSource:
    """Where the recorded code comes from, decided before anything is written."""

    kind: str  # "git" | "snapshot" | "none"
    commit: str | None = None
    root: str | None = None
    remote: str | None = None
    patch_sha: str | None = None
    snapshot_sha: str | None = None
    method: str | None = None  # "worktree" | "clone" | "snapshot"
    rel_cwd: str = "."
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "git":
            patch = f" + uncommitted patch {self.patch_sha[:12]}" if self.patch_sha else ""
            src = self.root if self.method == "worktree" else self.remote
            return f"git commit {str(self.commit)[:12]}{patch} via {self.method or '?'} from {src}"
        if self.kind == "snapshot":
            return f"script snapshot {str(self.snapshot_sha)[:12]}"
        return "no code was captured"


def _git(
    args: list[str], cwd: str | Path | None = None, *, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    return subprocess.run(
        [*_GIT, *args], cwd=cwd, input=input, capture_output=True, env=env, check=False
    )


def _has_commit(root: str, commit: str) -> bool:
    if not Path(root).is_dir():
        return False
    return _git(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=root).returncode == 0


def code_source(run: dict[str, Any]) -> CodeSource:
    """Decide how the code of ``run`` can be recreated (reads the user's repository, writes nothing)."""
    env = run.get("env") or {}
    git = env.get("git") or {}
    cmd = env.get("command") or {}
    if git.get("commit"):
        src = CodeSource(
            kind="git",
            commit=str(git["commit"]),
            root=git.get("root"),
            remote=git.get("remote"),
            patch_sha=git.get("diff_sha256") or None,
            rel_cwd=str(cmd.get("rel_cwd") or "."),
        )
        if git.get("dirty") and not src.patch_sha:
            src.problems.append("the run had uncommitted changes but no patch was captured")
        if src.root and _has_commit(src.root, src.commit or ""):
            src.method = "worktree"
        elif src.remote:
            src.method = "clone"
        else:
            src.problems.append(
                f"commit {src.commit[:12] if src.commit else '?'} is not in {src.root or 'any local repository'} "
                "and no remote was recorded"
            )
        return src
    snap = env.get("code_snapshot") or {}
    if snap.get("sha256"):
        return CodeSource(kind="snapshot", snapshot_sha=str(snap["sha256"]), method="snapshot")
    return CodeSource(
        kind="none", problems=["the run recorded neither a git commit nor a code snapshot"]
    )


def _ensure_empty(dest: Path) -> None:
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise ReproError("checkout", f"{dest} exists and is not an empty directory")
        dest.rmdir()  # git worktree/clone create it themselves
    dest.parent.mkdir(parents=True, exist_ok=True)


def prepare_code(src: CodeSource, dest: Path, get_blob: Callable[[str], bytes]) -> list[str]:
    """Write the recorded code into ``dest`` (new or empty); return notes on what was done."""
    notes: list[str] = []
    if src.kind == "none" or (src.kind == "git" and not src.method):
        raise ReproError("checkout", "; ".join(src.problems) or "no code was captured")
    _ensure_empty(dest)
    if src.kind == "snapshot":
        files = json.loads(get_blob(str(src.snapshot_sha)).decode("utf-8"))
        dest.mkdir(parents=True)
        for rel, text in files.items():
            p = PurePosixPath(rel)
            if p.is_absolute() or ".." in p.parts:
                raise ReproError("checkout", f"unsafe path {rel!r} in the code snapshot")
            target = dest.joinpath(*p.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        notes.append(f"wrote {len(files)} snapshot file(s) into {dest}")
        return notes
    assert src.commit is not None
    if src.method == "worktree":
        assert src.root is not None
        res = _git(["worktree", "add", "--detach", str(dest), src.commit], cwd=src.root)
        if res.returncode != 0:
            raise ReproError(
                "checkout",
                f"git worktree add failed: {res.stderr.decode(errors='replace').strip()}",
            )
        notes.append(f"checked out {src.commit[:12]} from {src.root} into {dest} (git worktree)")
    else:
        assert src.remote is not None
        res = _git(["clone", "--quiet", "--no-checkout", src.remote, str(dest)])
        if res.returncode != 0:
            raise ReproError(
                "checkout",
                f"git clone of {src.remote} failed: {res.stderr.decode(errors='replace').strip()}",
            )
        res = _git(["checkout", "--quiet", "--detach", src.commit], cwd=dest)
        if res.returncode != 0:
            raise ReproError(
                "checkout",
                f"commit {src.commit[:12]} not found in {src.remote}: {res.stderr.decode(errors='replace').strip()}",
            )
        notes.append(f"cloned {src.remote} at {src.commit[:12]} into {dest}")
    if src.patch_sha:
        patch = get_blob(src.patch_sha)
        if patch.strip():
            res = _git(["apply", "--binary", "--whitespace=nowarn", "-"], cwd=dest, input=patch)
            if res.returncode != 0:
                raise ReproError(
                    "checkout",
                    f"the recorded patch does not apply: {res.stderr.decode(errors='replace').strip()}",
                )
            notes.append(f"applied the recorded uncommitted patch ({len(patch)} bytes)")
    return notes


def remove_code(src: CodeSource, dest: Path) -> None:
    """Delete a checkout made by :func:`prepare_code` (and its worktree registration)."""
    if src.method == "worktree" and src.root and Path(src.root).is_dir():
        res = _git(["worktree", "remove", "--force", str(dest)], cwd=src.root)
        if res.returncode == 0:
            return
    shutil.rmtree(dest, ignore_errors=True)
    if src.method == "worktree" and src.root and Path(src.root).is_dir():
        _git(["worktree", "prune"], cwd=src.root)
