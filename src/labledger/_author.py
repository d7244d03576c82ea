"""Who is running this process: the author recorded on runs of an embedded store.

Git's ``user.email`` (what the user's commits carry), else the OS user. Read from git's
configuration files directly (the repository's ``.git/config``, then
``~/.gitconfig``, ``$XDG_CONFIG_HOME/git/config`` and ``/etc/gitconfig``, git's own
precedence) instead of running ``git config``: a few file reads, so ``init()`` can put
the author in the run record before it returns. ``GIT_AUTHOR_EMAIL`` wins when set.
``include``/``includeIf`` sections are not followed. A tracking server ignores this
claim and records the token's user instead (see docs/trust.md).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

__all__ = ["local_author"]


@functools.cache
def local_author(cwd: str | None = None) -> str:
    """Git ``user.email`` as seen from ``cwd`` (default: the current directory), else the OS user."""
    email = os.environ.get("GIT_AUTHOR_EMAIL") or _config_email(Path(cwd or os.getcwd()))
    if email:
        return email
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _config_email(start: Path) -> str | None:
    home = Path(os.environ.get("HOME") or "~").expanduser()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [
        *([gd / "config"] if (gd := _git_dir(start)) is not None else []),
        home / ".gitconfig",
        xdg / "git" / "config",
        Path("/etc/gitconfig"),
    ]
    for path in files:
        email = _user_email(path)
        if email:
            return email
    return None


def _git_dir(start: Path) -> Path | None:
    for d in (start, *start.parents):
        dot = d / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():  # a worktree or submodule: "gitdir: PATH"
            try:
                line = dot.read_text(errors="replace").strip()
            except OSError:
                return None
            if line.startswith("gitdir:"):
                gd = Path(line[7:].strip())
                gd = gd if gd.is_absolute() else d / gd
                common = gd / "commondir"  # worktrees keep their config in the main .git
                if common.is_file():
                    try:
                        return (gd / common.read_text().strip()).resolve()
                    except OSError:
                        return gd
                return gd
            return None
    return None


def _user_email(path: Path) -> str | None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    section = ""
    found = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line[1 : line.find("]")].strip().lower() if "]" in line else ""
            continue
        if section == "user" and "=" in line:
            key, _, value = line.partition("=")
            if key.strip().lower() == "email":
                value = value.split(" #")[0].split(" ;")[0].strip().strip('"')
                found = value or found  # the last assignment wins, as in git
    return found
