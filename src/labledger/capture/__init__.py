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

from .._exceptions import StoreUnavailableError, StrictModeError
from .._settings import setting

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Protocol

    class Run(Protocol):
        """What capture needs of a run. ``labledger.tracking``'s Run is one; capture sits
        below the engine, so it names the shape instead of importing the class."""

        id: str
        store_uri: str
        created_at: float
        _seed: int | None
        _seed_info: dict[str, Any] | None
        _datasets: list[dict[str, Any]]

        def store(self, timeout: float | None = 30.0) -> Any: ...

        def log_dataset(self, path: Any, name: str | None = None) -> dict[str, Any]: ...

        def _log_internal(self, data: Mapping[str, float], step: int) -> None: ...


__all__ = [
    "DEFAULT_CAPTURE_TIMEOUT",
    "PARTS",
    "CaptureProgress",
    "capture_env",
    "capture_timeout",
    "collect",
    "finalize",
    "is_strict",
    "reset_warnings",
    "strict_check",
    "warn",
    "warn_once",
]

_T0_CPU = time.process_time()
_RUN_CPU0: dict[str, float] = {}
_WARNED: set[str] = set()
_WARN_LOCK = threading.Lock()


_UNSET: Any = object()

#: The parts of ``env`` that capture writes, in the order it writes them. ``git`` stands
#: for the code (``env.git``, or ``env.code_snapshot`` outside git). A part that did not
#: finish before ``finish()``'s bound is listed in ``env.missing``.
PARTS: tuple[str, ...] = ("git", "command", "python", "os", "env_vars", "hardware", "packages")

#: Test hook: called with each part's name before that part is captured (in the capture
#: thread). Tests use it to make one part slow; it is never set by labledger itself.
_PROBE_HOOK: Callable[[str], None] | None = None

DEFAULT_CAPTURE_TIMEOUT = 60.0


def capture_timeout() -> float:
    """How long ``finish()`` waits for capture (env ``LABLEDGER_CAPTURE_TIMEOUT``, default 60 s)."""
    raw = (setting("LABLEDGER_CAPTURE_TIMEOUT") or "").strip()
    try:
        value = float(raw) if raw else DEFAULT_CAPTURE_TIMEOUT
    except ValueError:
        return DEFAULT_CAPTURE_TIMEOUT
    return value if value >= 0 else DEFAULT_CAPTURE_TIMEOUT


def _git_start(script: Path | None = _UNSET) -> Path:
    """Where to look for the repository: cwd when inside one, else the entry script's folder."""
    from .git import find_root
    from .platform import entry_script

    cwd = Path(os.getcwd())
    if find_root(cwd) is not None:
        return cwd
    if script is _UNSET:
        script = entry_script()
    return script.parent if script is not None else cwd


def capture_env(
    *,
    put_blob: Callable[[bytes], str] | None = None,
    ignore_paths: list[str] | None = None,
    errors: dict[str, str] | None = None,
    script: Path | None = _UNSET,
    emit: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Capture the current process's environment (the ``env`` of a run, minus seed/runtime).

    ``script``: the entry script, found by the caller while ``__main__.__file__`` still
    exists (CPython deletes it when the script's last line has run, before ``atexit``);
    default: looked up now. ``emit(part, fields)`` is called after each part of
    :data:`PARTS` with the ``env`` keys it produced, so a caller can store each part as
    it comes instead of all at the end.
    """
    env: dict[str, Any] = {}
    errs: dict[str, str] = {} if errors is None else errors

    def probe(name: str, fn: Callable[[], Any]) -> None:
        try:
            env[name] = fn()
        except Exception as exc:  # a failing probe records its error and moves on
            errs[name] = f"{type(exc).__name__}: {exc}"

    def part(name: str, fn: Callable[[], list[str]]) -> None:
        hook = _PROBE_HOOK
        if hook is not None:
            hook(name)
        n_errs = len(errs)
        keys = fn()
        if emit is not None:
            fields = {k: env[k] for k in keys if k in env}
            if len(errs) != n_errs:
                fields["errors"] = dict(errs)
            emit(name, fields)

    from .git import capture_git
    from .hardware import capture_hardware
    from .packages import capture_packages
    from .platform import capture_command, capture_os, capture_python, entry_script
    from .secrets import allowed_env_vars

    if script is _UNSET:
        script = entry_script()

    def code() -> list[str]:
        start = _git_start(script)
        probe("git", lambda: capture_git(start, put_blob, ignore_paths or ()))
        if env.get("git") is None and "git" not in errs:
            env.pop("git", None)
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
        return ["git", "code_snapshot", "notebook"]

    def packages() -> list[str]:
        try:
            env["packages"], env["package_sources"] = capture_packages()
        except Exception as exc:
            errs["packages"] = f"{type(exc).__name__}: {exc}"
        return ["packages", "package_sources"]

    def one(name: str, fn: Callable[[], Any]) -> Callable[[], list[str]]:
        def run() -> list[str]:
            probe(name, fn)
            return [name]

        return run

    part("git", code)
    git_root = (env.get("git") or {}).get("root")
    part("command", one("command", lambda: capture_command(git_root, script=script)))
    part("python", one("python", capture_python))
    part("os", one("os", capture_os))
    part("env_vars", one("env_vars", allowed_env_vars))
    part("hardware", one("hardware", capture_hardware))
    part("packages", packages)
    from .seeds import current_seed_info

    info = current_seed_info()
    if info:
        env["seed"] = info
    if errs and errors is None:
        env["errors"] = errs
    return env


def _store_ignore(run: Run) -> list[str]:
    from ..store import scheme_family, sqlite_path

    if scheme_family(run.store_uri) == "sqlite":
        return [str(sqlite_path(run.store_uri))]
    return []


class CaptureProgress:
    """Which parts of a run's capture are stored, shared by the capture thread and ``finish()``.

    The capture thread ``publish``es each part as a run update as soon as it is
    captured; ``finish()`` ``close``s it when its bound runs out, which returns the parts
    still missing and makes any later ``publish`` a no-op (the final update, with
    ``env.missing``, must be the last word).
    """

    def __init__(self, update: Callable[[dict[str, Any]], None]) -> None:
        self._update = update
        self._lock = threading.Lock()
        self.done: list[str] = []
        self.closed = False

    def publish(self, part: str | None, fields: dict[str, Any]) -> bool:
        with self._lock:
            if self.closed:
                return False
            if fields:
                self._update(fields)
            if part is not None and part not in self.done:
                self.done.append(part)
            return True

    def close(self) -> list[str]:
        """Stop accepting parts; the parts of :data:`PARTS` not stored."""
        with self._lock:
            self.closed = True
            return [p for p in PARTS if p not in self.done]


def collect(
    run: Run, *, script: Path | None = _UNSET, progress: CaptureProgress | None = None
) -> dict[str, Any]:
    """Everything known at start, for ``run`` (called in the capture thread).

    With ``progress``, each part is stored as it is captured (git and the command
    first); the returned dict is then only used for the start-up warnings.
    """
    _RUN_CPU0[run.id] = time.process_time()
    errors: dict[str, str] = {}

    def put_blob(data: bytes) -> str:
        try:
            return str(run.store().put_blob(data))
        except Exception as exc:  # keep the hash even if the store is away
            defer = getattr(run, "defer_blob", None)
            server = run.store_uri.lower().startswith(("http:", "https:"))
            if isinstance(exc, StoreUnavailableError) and defer is not None and server:
                return str(defer(data))  # kept in the run's outbox, with its batches
            import hashlib

            errors["blob"] = f"{type(exc).__name__}: {exc}"
            return hashlib.sha256(data).hexdigest()

    def emit(part: str, fields: dict[str, Any]) -> None:
        if progress is not None:
            fields.pop("seed", None)
            if errors:
                fields["errors"] = dict(errors)
            progress.publish(part, fields)

    env = capture_env(
        put_blob=put_blob,
        ignore_paths=_store_ignore(run),
        errors=errors,
        script=script,
        emit=emit,
    )
    # the seed is recorded by seed_everything()/finalize(); never overwrite it from here
    env.pop("seed", None)
    if errors:
        env["errors"] = errors
    if progress is not None and progress.closed:
        return env  # finish() gave up waiting and said what is missing: no warnings now
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
    return (setting("LABLEDGER_QUIET") or "").lower() in ("1", "true", "yes", "on")


def warn(message: str) -> bool:
    """Print ``labledger: warning: message`` to stderr (unless LABLEDGER_QUIET)."""
    if _quiet():
        return False
    try:
        sys.stderr.write(f"labledger: warning: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return True


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
            left_paths = {e.get("path") for e in git.get("excluded") or []}
            n = len([p for p in git.get("untracked") or [] if p not in left_paths])
            extra = f", {n} untracked file(s) included" if n else ""
            left = len(git.get("excluded") or [])
            extra += f", {left} left out (see env.git.excluded)" if left else ""
            warn_once("dirty", f"uncommitted changes captured as a patch{extra}")
    elif "git" in (env.get("errors") or {}):
        warn_once("git-error", f"could not read the git state: {env['errors']['git']}")
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
    from .seeds import current_seed_info

    info = current_seed_info()
    own = getattr(run, "_seed_info", None)
    if run._seed is not None and own and own.get("seed") == run._seed:
        out["seed"] = dict(own)  # what seeded it: seed_everything, or a framework's seed
    elif run._seed is not None:
        if info.get("seed") == run._seed:
            out["seed"] = info
        else:
            out["seed"] = {"seed": run._seed, "deterministic": False, "seeded": []}
    else:
        out["seed"] = {"seed": None, "deterministic": False, "seeded": []}
    captured = getattr(run, "_capture_thread", None) is not None  # init(capture=False): no warnings
    # said at the end, not at start: an integration records the framework's seed
    # (random_state, seed_everything, TrainingArguments.seed) once training begins
    if run._seed is None and not info and status == "finished" and captured:
        warn_once(
            "no-seed",
            "no seed set; call labledger.seed_everything() or init(seed=...) to make the run repeatable",
        )
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
    v = setting("LABLEDGER_STRICT")
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
    from .git import GitError, _git, find_root
    from .seeds import current_seed_info

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
