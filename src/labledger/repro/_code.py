"""The recorded code, recreated in a new directory: git checkout + patch, or the script snapshot.

The user's working tree is only ever read: a ``git worktree add`` writes the new
checkout elsewhere (and a small entry under ``.git/worktrees`` that is removed with it),
and the recorded patch is applied inside the new checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
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
    bundle_sha: str | None = None  # git bundle of the commits no remote had (env.git.bundle)
    method: str | None = None  # "worktree" | "clone" | "bundle" | "snapshot"
    rel_cwd: str = "."
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "git":
            patch = f" + uncommitted patch {self.patch_sha[:12]}" if self.patch_sha else ""
            src = self.root if self.method == "worktree" else self.remote
            if self.method == "bundle":
                src = f"the stored bundle {str(self.bundle_sha)[:12]}"
            elif self.bundle_sha and self.method == "clone":
                src = f"{src} (+ the stored bundle {str(self.bundle_sha)[:12]} if needed)"
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
        bundle = git.get("bundle") or {}
        if bundle.get("stored") and bundle.get("sha256"):
            src.bundle_sha = str(bundle["sha256"])
        if git.get("dirty") and not src.patch_sha:
            src.problems.append("the run had uncommitted changes but no patch was captured")
        if src.root and _has_commit(src.root, src.commit or ""):
            src.method = "worktree"
        elif src.remote:
            src.method = "clone"
        elif src.bundle_sha and bundle.get("reason") == "the repository has no remote branch":
            src.method = "bundle"  # the bundle holds the whole history
        else:
            src.problems.append(
                f"commit {src.commit[:12] if src.commit else '?'} is not in {src.root or 'any local repository'} "
                "and no remote was recorded"
            )
        return src
    snap = env.get("code_snapshot") or {}
    if snap.get("sha256"):
        return CodeSource(kind="snapshot", snapshot_sha=str(snap["sha256"]), method="snapshot")
    if "git" in (env.get("missing") or []):
        why = "the code was not recorded: capture did not finish before the run ended (env.missing)"
        return CodeSource(kind="none", problems=[why])
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
    elif src.method == "bundle":
        assert src.bundle_sha is not None
        with _bundle_file(src.bundle_sha, get_blob) as bundle:
            res = _git(["clone", "--quiet", "--no-checkout", str(bundle), str(dest)])
            if res.returncode != 0:
                raise ReproError(
                    "checkout",
                    f"git clone of the stored bundle failed: {res.stderr.decode(errors='replace').strip()}",
                )
        _checkout(dest, src.commit, "the stored bundle")
        notes.append(f"cloned the stored bundle at {src.commit[:12]} into {dest}")
    else:
        assert src.remote is not None
        res = _git(["clone", "--quiet", "--no-checkout", src.remote, str(dest)])
        if res.returncode != 0:
            raise ReproError(
                "checkout",
                f"git clone of {src.remote} failed: {res.stderr.decode(errors='replace').strip()}",
            )
        found = _git(["cat-file", "-e", f"{src.commit}^{{commit}}"], cwd=dest).returncode == 0
        if not found and src.bundle_sha:
            # the commit was never pushed: its commits since the merge-base were stored
            with _bundle_file(src.bundle_sha, get_blob) as bundle:
                res = _git(["fetch", "--quiet", str(bundle), "HEAD"], cwd=dest)
            if res.returncode != 0:
                raise ReproError(
                    "checkout",
                    f"commit {src.commit[:12]} is not in {src.remote} and the stored bundle "
                    f"does not apply: {res.stderr.decode(errors='replace').strip()}",
                )
            notes.append(
                f"commit {src.commit[:12]} is not in {src.remote}: fetched it from the stored bundle"
            )
        _checkout(dest, src.commit, src.remote)
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


@contextlib.contextmanager
def _bundle_file(sha: str, get_blob: Callable[[str], bytes]) -> Iterator[Path]:
    """The stored bundle blob as a temporary file (git reads bundles from files)."""
    fd, tmp = tempfile.mkstemp(prefix="labledger-", suffix=".bundle")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(get_blob(sha))
        yield Path(tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _checkout(dest: Path, commit: str, where: str | None) -> None:
    res = _git(["checkout", "--quiet", "--detach", commit], cwd=dest)
    if res.returncode != 0:
        raise ReproError(
            "checkout",
            f"commit {commit[:12]} not found in {where}: {res.stderr.decode(errors='replace').strip()}",
        )


def remove_code(src: CodeSource, dest: Path) -> None:
    """Delete a checkout made by :func:`prepare_code` (and its worktree registration)."""
    if src.method == "worktree" and src.root and Path(src.root).is_dir():
        res = _git(["worktree", "remove", "--force", str(dest)], cwd=src.root)
        if res.returncode == 0:
            return
    shutil.rmtree(dest, ignore_errors=True)
    if src.method == "worktree" and src.root and Path(src.root).is_dir():
        _git(["worktree", "prune"], cwd=src.root)
