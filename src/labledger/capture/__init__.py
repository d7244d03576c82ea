"""Automatic capture of what produced a run: code, environment, hardware, seeds, data.

``collect(run)`` runs in a background thread right after ``init()`` and returns the
``env`` dict stored on the run. Every probe is isolated: a failing probe records its
error under ``env.errors`` and the others carry on. ``finalize()`` adds what is known
only at the end (runtime, exit status, seed), and ``strict_check()`` is the only part
that runs synchronously in ``init()``; it does real work only in strict mode.

Layout of ``env`` (field by field in docs/capture.md): git, code_snapshot, python,
packages, package_sources, os, hardware, command, env_vars, seed, runtime, errors.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import StrictModeError

if TYPE_CHECKING:
    from .._run import Run

__all__ = [
    "capture_env",
    "collect",
    "finalize",
    "is_strict",
    "reset_warnings",
    "strict_check",
    "warn_once",
]

_T0_CPU = time.process_time()
_RUN_CPU0: dict[str, float] = {}
_WARNED: set[str] = set()
_WARN_LOCK = threading.Lock()


def _git_start() -> Path:
    """Where to look for the repository: cwd when inside one, else the entry script's folder."""
    from .git import find_root
    from .platform import entry_script

    cwd = Path(os.getcwd())
    if find_root(cwd) is not None:
        return cwd
    script = entry_script()
    return script.parent if script is not None else cwd


def capture_env(
    *,
    put_blob: Callable[[bytes], str] | None = None,
    ignore_paths: list[str] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Capture the current process's environment (the ``env`` of a run, minus seed/runtime)."""
    env: dict[str, Any] = {}
    errs: dict[str, str] = {} if errors is None else errors

    def probe(name: str, fn: Callable[[], Any]) -> None:
        try:
            env[name] = fn()
        except Exception as exc:  # a failing probe records its error and moves on
            errs[name] = f"{type(exc).__name__}: {exc}"

    from .git import capture_git
    from .hardware import capture_hardware
    from .packages import capture_packages
    from .platform import capture_command, capture_os, capture_python, entry_script
    from .secrets import allowed_env_vars

    start = _git_start()
    probe("git", lambda: capture_git(start, put_blob, ignore_paths or ()))
    if env.get("git") is None and "git" not in errs:
        env.pop("git", None)
        script = entry_script()
        from .snapshot import capture_snapshot, is_installed

        if script is not None and not is_installed(script):
            probe("code_snapshot", lambda: capture_snapshot(script, put_blob))
    from .notebook import in_notebook, notebook_snapshot

    if in_notebook():  # Jupyter/IPython: the notebook's cells are the run's code
        probe("notebook", lambda: notebook_snapshot(put_blob))
        if "code_snapshot" not in env and env.get("git") is None and env.get("notebook"):
            env["code_snapshot"] = {
                "sha256": env["notebook"]["sha256"],
                "root": None,
                "files": env["notebook"]["files"],
                "excluded": [],
                "notebook": True,
            }
    git_root = (env.get("git") or {}).get("root")
    probe("python", capture_python)
    try:
        env["packages"], env["package_sources"] = capture_packages()
    except Exception as exc:
        errs["packages"] = f"{type(exc).__name__}: {exc}"
    probe("os", capture_os)
    probe("hardware", capture_hardware)
    probe("command", lambda: capture_command(git_root))
    probe("env_vars", allowed_env_vars)
    from .._seed import current_seed_info

    info = current_seed_info()
    if info:
        env["seed"] = info
    if errs and errors is None:
        env["errors"] = errs
    return env


def _store_ignore(run: Run) -> list[str]:
    if run.store_uri.startswith("sqlite"):
        from ..store._locate import sqlite_path

        return [str(sqlite_path(run.store_uri))]
    return []


def collect(run: Run) -> dict[str, Any]:
    """Everything known at start, for ``run`` (called in the capture thread)."""
    _RUN_CPU0[run.id] = time.process_time()
    errors: dict[str, str] = {}

    def put_blob(data: bytes) -> str:
        try:
            return str(run.store().put_blob(data))
        except Exception as exc:  # keep the hash even if the store is away
            import hashlib

            errors["blob"] = f"{type(exc).__name__}: {exc}"
            return hashlib.sha256(data).hexdigest()

    env = capture_env(put_blob=put_blob, ignore_paths=_store_ignore(run), errors=errors)
    # the seed is recorded by seed_everything()/finalize(); never overwrite it from here
    env.pop("seed", None)
    if errors:
        env["errors"] = errors
    try:
        _start_warnings(run, env)
    except Exception:
        pass
    return env


# -- reproducibility warnings -------------------------------------------------------


def reset_warnings() -> None:
    """Forget which warnings were printed (tests; long-lived processes that want them again)."""
    with _WARN_LOCK:
        _WARNED.clear()


def _quiet() -> bool:
    return os.environ.get("LABLEDGER_QUIET", "").lower() in ("1", "true", "yes", "on")


def warn_once(kind: str, message: str) -> bool:
    """Print ``labledger: warning: message`` to stderr once per process for each ``kind``."""
    if _quiet():
        return False
    with _WARN_LOCK:
        if kind in _WARNED:
            return False
        _WARNED.add(kind)
    try:
        sys.stderr.write(f"labledger: warning: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return True


def _start_warnings(run: Run, env: dict[str, Any]) -> None:
    git = env.get("git")
    if git:
        if git.get("commit") is None:
            warn_once(
                "no-commit",
                "the git repository has no commit yet; the whole tree is captured as a patch",
            )
        elif git.get("dirty"):
            n = len(git.get("untracked") or [])
            extra = f", {n} untracked file(s) included" if n else ""
            left = len(git.get("excluded") or [])
            extra += f", {left} left out (see env.git.excluded)" if left else ""
            warn_once("dirty", f"uncommitted changes captured as a patch{extra}")
    elif "code_snapshot" in env and (env["code_snapshot"] or {}).get("notebook"):
        warn_once(
            "no-git-notebook",
            "not in a git repository; the notebook's code cells were stored as the run's code",
        )
    elif "code_snapshot" in env:
        warn_once(
            "no-git",
            "not in a git repository; a snapshot of the entry script and its local modules was stored",
        )
    else:
        warn_once(
            "no-code",
            "not in a git repository and no entry script: the code of this run is not captured",
        )
    from .._seed import current_seed_info

    if run._seed is None and not current_seed_info():
        warn_once(
            "no-seed",
            "no seed set; call labledger.seed_everything() or init(seed=...) to make the run repeatable",
        )


# -- end of run ---------------------------------------------------------------------


def finalize(run: Run, *, status: str, exit_code: int | None) -> dict[str, Any]:
    """Facts known only at the end: end time, wall and CPU runtime, exit status, seed."""
    now = time.time()
    cpu0 = _RUN_CPU0.pop(run.id, _T0_CPU)
    out: dict[str, Any] = {
        "runtime": {
            "wall_s": now - run.created_at,
            "cpu_s": time.process_time() - cpu0,
            "ended_at": now,
            "status": status,
            "exit_code": exit_code,
        }
    }
    from .._seed import current_seed_info

    info = current_seed_info()
    if run._seed is not None:
        if info.get("seed") == run._seed:
            out["seed"] = info
        else:
            out["seed"] = {"seed": run._seed, "deterministic": False, "seeded": []}
    else:
        out["seed"] = {"seed": None, "deterministic": False, "seeded": []}
    captured = getattr(run, "_capture_thread", None) is not None  # init(capture=False): no warnings
    if not run._datasets and status == "finished" and captured:
        warn_once(
            "no-dataset",
            "no dataset fingerprint recorded; call run.log_dataset(path) for the data a run reads",
        )
    return out


# -- strict mode --------------------------------------------------------------------


def _project_strict(start: Path) -> bool:
    """``[tool.labledger] strict = true`` in the nearest pyproject.toml (cwd upwards)."""
    for d in (start, *start.parents):
        f = d / "pyproject.toml"
        if f.is_file():
            try:
                text = f.read_text(encoding="utf-8")
            except OSError:
                return False
            if "[tool.labledger]" not in text:
                return False
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import re

                section = text.split("[tool.labledger]", 1)[1].split("\n[", 1)[0]
                return bool(re.search(r"^\s*strict\s*=\s*true\s*$", section, re.MULTILINE))
            try:
                data = tomllib.loads(text)
            except ValueError:
                return False
            return bool(data.get("tool", {}).get("labledger", {}).get("strict", False))
        if (d / ".git").exists():
            return False
    return False


def is_strict() -> bool:
    """LABLEDGER_STRICT=1 (0 turns it off), else the project's pyproject.toml setting."""
    v = os.environ.get("LABLEDGER_STRICT")
    if v is not None and v.strip() != "":
        return v.strip().lower() in ("1", "true", "yes", "on")
    try:
        return _project_strict(Path(os.getcwd()))
    except OSError:
        return False


def strict_check(*, seed: int | None) -> None:
    """Refuse to start in strict mode when the run could not be reproduced.

    Outside strict mode this costs a few stat calls. In strict mode it runs ``git``
    synchronously: the run needs a commit (uncommitted changes are fine, they are
    captured as a patch) and a seed (``init(seed=...)`` or an earlier
    ``seed_everything()``).
    """
    if not is_strict():
        return None
    from .._seed import current_seed_info
    from .git import GitError, _git, find_root

    reasons: list[str] = []
    root = find_root(_git_start())
    if root is None:
        reasons.append("the code is not in a git repository")
    else:
        try:
            ok = _git(["rev-parse", "--verify", "-q", "HEAD"], root, check=False).returncode == 0
        except GitError:
            ok = False
        if not ok:
            reasons.append(f"the git repository at {root} has no commit")
    if seed is None and not current_seed_info():
        reasons.append("no seed (pass init(seed=...) or call labledger.seed_everything() first)")
    if reasons:
        raise StrictModeError(reasons)
    return None
