"""Who is running this process: the author recorded on runs of an embedded store.

Git's ``user.email`` (what the user's commits carry), else the OS user. Resolved on
first use in a background thread (the writer's, before it creates the run), never in
``init()``: ``git config`` costs a few milliseconds. A tracking server ignores this
claim and records the token's user instead (see docs/trust.md).
"""

from __future__ import annotations

import functools
import getpass
import os
import subprocess

__all__ = ["local_author"]


@functools.cache
def local_author(cwd: str | None = None) -> str:
    """Git ``user.email`` as seen from ``cwd`` (default: the current directory), else the OS user."""
    try:
        out = subprocess.run(
            ["git", "config", "--get", "user.email"],
            cwd=cwd or os.getcwd(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        email = out.stdout.strip()
        if out.returncode == 0 and email:
            return email
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
