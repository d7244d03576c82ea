"""Git state of the code a run executes: commit, branch, remote, and the uncommitted patch.

Everything goes through the ``git`` command line (no GitPython): a handful of
subprocess calls, each a few milliseconds. ``GIT_OPTIONAL_LOCKS=0`` keeps ``git
status`` from taking the index lock, so capture never collides with the user's own
git commands.

The patch is ``git diff HEAD --binary`` (every tracked change, staged or not) followed
by one "new file" section per untracked, not-ignored text file, so ``git apply`` on a
checkout of the commit recreates the working tree. Caps per file and in total keep a
stray large file out; what a cap (or a binary untracked file, or a nested repository)
left out is listed in ``excluded`` with the reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._settings import setting
from .secrets import strip_url_credentials

__all__ = [
    "BUNDLE_MAX",
    "OUTPUT_PATTERNS",
    "PATCH_FILE_MAX",
    "PATCH_TOTAL_MAX",
    "UNTRACKED_MAX",
    "GitError",
    "capture_bundle",
    "capture_git",
    "find_root",
    "git_info",
    "git_patch",
    "looks_like_output",
]

PATCH_FILE_MAX = 1 << 20  # bytes of patch text per file
PATCH_TOTAL_MAX = 10 << 20  # bytes of patch text in all
UNTRACKED_MAX = 1_000_000  # an untracked file larger than this is data or a model, not code
BUNDLE_MAX = 10 << 20  # bytes of git bundle (commits no remote has)
# Untracked paths that are what a run writes, not what it runs: experiment-tracker and
# framework output folders, and model/checkpoint/array files. LABLEDGER_CAPTURE_EXCLUDE
# adds comma-separated patterns of the same forms ("dir/" or "*.ext" or a glob).
OUTPUT_PATTERNS: tuple[str, ...] = (
    "multirun/",
    "outputs/",
    "wandb/",
    "mlruns/",
    "lightning_logs/",
    ".labledger/",
    "*.pt",
    "*.ckpt",
    "*.pth",
    "*.safetensors",
    "*.h5",
    "*.onnx",
    "*.pkl",
)
_EXCLUDED_LIST_MAX = 200  # entries of ``excluded`` recorded (a count says how many more)
_TIMEOUT = 10.0


class GitError(Exception):
    """A git command failed (never raised out of capture: recorded under env.errors)."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"})
    for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(k, None)  # a hook's environment must not redirect us to another repository
    return env


def _git(
    args: list[str], cwd: str | Path, *, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=cwd,
            env=_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} timed out after {_TIMEOUT:.0f}s") from exc
    if check and proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {' '.join(args[:2])} failed: {msg[-1] if msg else proc.returncode}")
    return proc


def find_root(start: str | Path) -> Path | None:
    """The work tree root containing ``start`` (the innermost, for nested repositories)."""
    try:
        proc = _git(["rev-parse", "--show-toplevel"], start, check=False)
    except GitError:
        return None
    if proc.returncode != 0:
        return None
    out = proc.stdout.decode("utf-8", "surrogateescape").strip()
    return Path(out) if out else None


def _remote(root: Path, branch: str | None) -> str | None:
    proc = _git(["config", "--get-regexp", r"^remote\..*\.url$"], root, check=False)
    urls: dict[str, str] = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        key, _, url = line.partition(" ")
        urls[key[len("remote.") : -len(".url")]] = url
    if not urls:
        return None
    name = None
    if branch:
        p = _git(["config", "--get", f"branch.{branch}.remote"], root, check=False)
        name = p.stdout.decode().strip() or None
    if name not in urls:
        name = "origin" if "origin" in urls else sorted(urls)[0]
    return strip_url_credentials(urls[name])


def _ignored_by_us(path: str, ignore: frozenset[str]) -> bool:
    # labledger's own store (.labledger/ at the git root, or a store file the run writes)
    # is not part of the code, whether or not the user has a .gitignore entry for it.
    return (
        ".labledger" in path.split("/")
        or path in ignore
        or any(
            path.startswith(p + "-")
            for p in ignore  # ledger.db-wal, ledger.db-shm
        )
    )


def _status(root: Path, ignore: frozenset[str] = frozenset()) -> tuple[bool, list[str]]:
    """(tracked changes exist, untracked not-ignored paths)."""
    out = _git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], root).stdout
    tracked = False
    untracked: list[str] = []
    entries = out.split(b"\0")
    i = 0
    while i < len(entries):
        e = entries[i]
        i += 1
        if len(e) < 4:
            continue
        code, path = e[:2], e[3:].decode("utf-8", "surrogateescape")
        if code == b"??":
            if not _ignored_by_us(path, ignore):
                untracked.append(path)
        else:
            tracked = True
            if code[:1] in (b"R", b"C"):
                i += 1  # the rename's source path follows
    return tracked, sorted(untracked)


def git_info(start: str | Path, ignore: Iterable[str | Path] = ()) -> dict[str, Any] | None:
    """commit, branch, remote, dirty, root, untracked for the repository at ``start``.

    ``ignore``: absolute paths (the run's own store file) never reported as untracked.
    """
    root = find_root(start)
    if root is None:
        return None
    rel_ignore = set()
    for p in ignore:
        try:
            rel_ignore.add(Path(p).resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            pass
    head = _git(["rev-parse", "--verify", "-q", "HEAD"], root, check=False)
    commit = head.stdout.decode().strip() or None if head.returncode == 0 else None
    sym = _git(["symbolic-ref", "-q", "--short", "HEAD"], root, check=False)
    branch = sym.stdout.decode("utf-8", "replace").strip() or None if sym.returncode == 0 else None
    tracked, untracked = _status(root, frozenset(rel_ignore))
    return {
        "root": str(root),
        "commit": commit,
        "branch": branch,
        "detached": commit is not None and branch is None,
        "remote": _remote(root, branch),
        "dirty": tracked or bool(untracked),
        "untracked": untracked,
        "_tracked_changes": tracked,
    }


def _env_int(name: str, default: int) -> int:
    raw = (setting(name) or "").strip().lower().replace("_", "")
    if not raw:
        return default
    scale = 1
    for suffix, mult in (
        ("kb", 1000),
        ("mb", 1000**2),
        ("gb", 1000**3),
        ("k", 1000),
        ("m", 1000**2),
    ):
        if raw.endswith(suffix):
            raw, scale = raw[: -len(suffix)], mult
            break
    try:
        return max(0, int(float(raw) * scale))
    except ValueError:
        return default


def _output_patterns() -> tuple[str, ...]:
    extra = setting("LABLEDGER_CAPTURE_EXCLUDE") or ""
    return OUTPUT_PATTERNS + tuple(p.strip() for p in extra.split(",") if p.strip())


def looks_like_output(path: str, patterns: Iterable[str] | None = None) -> str | None:
    """The pattern that marks ``path`` (relative, ``/``-separated) as a run's output, or None.

    ``dir/`` matches a folder of that name at any depth; other patterns are globs matched
    against the file name (``*.pt``) or, when they contain ``/``, the whole path.
    """
    import fnmatch

    parts = path.split("/")
    for pat in _output_patterns() if patterns is None else patterns:
        if pat.endswith("/"):
            if pat[:-1] in parts[:-1]:
                return pat
        elif "/" in pat:
            if fnmatch.fnmatchcase(path, pat):
                return pat
        elif fnmatch.fnmatchcase(parts[-1], pat):
            return pat
    return None


_SECTION = re.compile(rb"^diff --git a/.*? b/(.*)$", re.MULTILINE)


def _split_sections(patch: bytes) -> list[tuple[str, bytes]]:
    starts = list(_SECTION.finditer(patch))
    out = []
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(patch)
        out.append((m.group(1).decode("utf-8", "surrogateescape"), patch[m.start() : end]))
    return out


def _new_file_section(path: str, data: bytes, mode: int) -> bytes:
    """A ``git apply``-able "new file" section for an untracked text file."""
    p = path.encode("utf-8", "surrogateescape")
    head = b"diff --git a/%s b/%s\nnew file mode %s\n" % (
        p,
        p,
        b"100755" if mode & 0o111 else b"100644",
    )
    if not data:
        return head
    lines = data.split(b"\n")
    last_newline = lines[-1] == b""
    if last_newline:
        lines.pop()
    body = b"".join(b"+" + line + b"\n" for line in lines)
    if not last_newline:
        body += b"\\ No newline at end of file\n"
    n = len(lines)
    return head + b"--- /dev/null\n+++ b/%s\n@@ -0,0 +1,%d @@\n" % (p, n) + body


def git_patch(
    root: Path,
    commit: str | None,
    untracked: list[str],
    *,
    file_max: int = PATCH_FILE_MAX,
    total_max: int = PATCH_TOTAL_MAX,
    tracked_changes: bool = True,
    untracked_max: int | None = None,
) -> tuple[bytes, list[dict[str, Any]]]:
    """The patch of uncommitted work, and what the caps left out (``excluded``).

    Untracked files that look like outputs (:data:`OUTPUT_PATTERNS`) or are larger than
    ``untracked_max`` (default :data:`UNTRACKED_MAX`, env ``LABLEDGER_CAPTURE_UNTRACKED_MAX``,
    e.g. ``5MB``) are left out and listed.
    """
    if untracked_max is None:
        untracked_max = _env_int("LABLEDGER_CAPTURE_UNTRACKED_MAX", UNTRACKED_MAX)
    excluded: list[dict[str, Any]] = []
    more = 0

    def exclude(path: str, reason: str, size: int | None) -> None:
        nonlocal more
        if len(excluded) < _EXCLUDED_LIST_MAX:
            excluded.append({"path": path, "reason": reason, "size": size})
        else:
            more += 1

    parts: list[bytes] = []
    total = 0
    if tracked_changes:
        if commit is not None:
            raw = _git(["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"], root).stdout
        else:  # no commit yet: everything staged or not, against the empty tree
            raw = _git(["diff", "--cached", "--binary", "--no-color", "--no-ext-diff"], root).stdout
        for path, section in _split_sections(raw):
            if len(section) > file_max:
                exclude(path, "file cap", len(section))
            elif total + len(section) > total_max:
                exclude(path, "total cap", len(section))
            else:
                parts.append(section)
                total += len(section)
    patterns = _output_patterns()
    for path in untracked:
        full = root / path
        try:
            st = full.lstat()
            if path.endswith("/") or full.is_dir():
                exclude(path, "nested repository", None)
                continue
            if not full.is_file() or full.is_symlink():
                exclude(path, "not a regular file", None)
                continue
            pattern = looks_like_output(path, patterns)
            if pattern is not None:
                exclude(path, f"output ({pattern})", st.st_size)
                continue
            if st.st_size > untracked_max:
                exclude(path, f"large (over {untracked_max} bytes)", st.st_size)
                continue
            if st.st_size > file_max:
                exclude(path, "file cap", st.st_size)
                continue
            if total + st.st_size > total_max:
                exclude(path, "total cap", st.st_size)
                continue
            data = full.read_bytes()
        except OSError as exc:
            exclude(path, f"unreadable: {exc.strerror or exc}", None)
            continue
        if b"\0" in data[:8192]:
            exclude(path, "binary", len(data))
            continue
        section = _new_file_section(path, data, st.st_mode)
        if total + len(section) > total_max:
            exclude(path, "total cap", len(data))
            continue
        parts.append(section)
        total += len(section)
    if more:
        excluded.append({"path": None, "reason": f"{more} more not listed", "size": None})
    return b"".join(parts), excluded


def _bundle_cache(root: Path, head: bytes, remote_refs: bytes) -> Path | None:
    """The cache file of the bundle for this HEAD and these remote-tracking refs.

    Packing is the one costly step (about 0.1 s for a small project's whole history),
    and every run from the same HEAD would repeat it: the bundle is kept in the user
    cache directory (``$LABLEDGER_CACHE_DIR/bundles``) under a hash of what decides its
    content, so the next run only reads it.
    """
    try:
        from .data import cache_dir

        key = hashlib.sha256(
            str(root.resolve()).encode() + b"\0" + head + b"\0" + remote_refs
        ).hexdigest()
        return cache_dir().parent / "bundles" / f"{key}.bundle"
    except (OSError, RuntimeError):  # no home directory
        return None


def _read_cached(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def _write_cached(path: Path | None, data: bytes, max_bytes: int) -> None:
    if path is None or len(data) > max_bytes:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # whole or absent, also with concurrent runs
    except OSError:
        pass  # a read-only cache only costs speed


def _make_bundle(root: Path, exclude: list[str]) -> bytes:
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix="labledger-", suffix=".bundle")
    os.close(fd)
    try:
        _git(["bundle", "create", "--quiet", tmp, "HEAD", *exclude], root)
        return Path(tmp).read_bytes()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def capture_bundle(
    root: Path,
    put_blob: Callable[[bytes], str] | None,
    *,
    max_bytes: int | None = None,
    head: str | None = None,
) -> dict[str, Any] | None:
    """A git bundle of the commits no remote has, when HEAD is on no remote branch.

    With remote-tracking branches: the commits of HEAD not reachable from any of them
    (``git bundle create B HEAD --not --remotes``: the bundle needs the remote's history
    to be applied, which a clone of the remote has). Without any: all of HEAD's history.
    None when HEAD is on a remote branch (a clone of the remote has the commit). Larger
    than ``max_bytes`` (default :data:`BUNDLE_MAX`, env ``LABLEDGER_CAPTURE_BUNDLE_MAX``):
    ``{"stored": false, "reason": ...}`` with the size, and nothing stored.
    """
    if max_bytes is None:
        max_bytes = _env_int("LABLEDGER_CAPTURE_BUNDLE_MAX", BUNDLE_MAX)
    remotes = _git(
        ["for-each-ref", "--format=%(objectname) %(refname)", "refs/remotes"], root
    ).stdout.split(b"\n")
    remotes = [r for r in remotes if r.strip()]
    if remotes:
        on_remote = _git(
            ["for-each-ref", "--contains", "HEAD", "--format=%(refname)", "refs/remotes"], root
        ).stdout.split()
        if on_remote:
            return None
        exclude = ["--not", "--remotes"]
        reason = "HEAD is on no remote branch"
    else:
        exclude = []
        reason = "the repository has no remote branch"
    count = int(_git(["rev-list", "--count", "HEAD", *exclude], root).stdout.strip() or 0)
    out: dict[str, Any] = {"reason": reason, "commits": count, "sha256": None, "size": None}
    if count == 0:
        return None
    if head is None:
        head = _git(["rev-parse", "HEAD"], root).stdout.decode().strip()
    cached = _bundle_cache(root, head.encode(), b"\n".join(sorted(remotes)))
    data = _read_cached(cached)
    if data is None:
        # a cheap estimate first, so a huge history is not packed just to be refused
        est = _git(["rev-list", "--objects", "--disk-usage", "HEAD", *exclude], root, check=False)
        estimate = est.stdout.strip()
        if est.returncode == 0 and estimate.isdigit() and int(estimate) > 4 * max_bytes:
            out.update(stored=False, size=int(estimate), why="over the bundle cap")
            return out
        data = _make_bundle(root, exclude)
        _write_cached(cached, data, max_bytes)
    out["size"] = len(data)
    if len(data) > max_bytes:
        out.update(stored=False, why="over the bundle cap")
        return out
    digest = hashlib.sha256(data).hexdigest()
    if put_blob is not None:
        digest = put_blob(data)
    out.update(stored=True, sha256=digest)
    return out


def capture_git(
    start: str | Path, put_blob: Callable[[bytes], str] | None, ignore: Iterable[str | Path] = ()
) -> dict[str, Any] | None:
    """The ``env.git`` section (None outside a repository); stores the patch via ``put_blob``,
    and a bundle of unpushed commits (``bundle``) when HEAD is on no remote branch."""
    info = git_info(start, ignore)
    if info is None:
        return None
    tracked = info.pop("_tracked_changes")
    info["diff_sha256"] = None
    info["excluded"] = []
    if info["dirty"]:
        patch, excluded = git_patch(
            Path(info["root"]), info["commit"], info["untracked"], tracked_changes=tracked
        )
        info["excluded"] = excluded
        if patch:
            digest = hashlib.sha256(patch).hexdigest()
            if put_blob is not None:
                digest = put_blob(patch)
            info["diff_sha256"] = digest
            info["diff_size"] = len(patch)
    if info["commit"] is not None:
        bundle = capture_bundle(Path(info["root"]), put_blob, head=info["commit"])
        if bundle is not None:
            info["bundle"] = bundle
    return info
