"""Python interpreter, operating system and command line of the running process."""

from __future__ import annotations

import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

from .._settings import setting
from .secrets import redact_argv

__all__ = ["capture_command", "capture_os", "capture_python", "entry_script"]


def capture_python() -> dict[str, Any]:
    venv = None
    if sys.prefix != getattr(sys, "base_prefix", sys.prefix):
        venv = sys.prefix
    elif os.environ.get("CONDA_PREFIX"):
        venv = os.environ["CONDA_PREFIX"]
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "venv": venv,
    }


def _libc() -> str | None:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36", without scanning the binary
    except (AttributeError, ValueError, OSError):
        pass
    lib, ver = platform.libc_ver()
    return f"{lib} {ver}".strip() or None


def _container() -> str | None:
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if os.path.exists("/.dockerenv"):
        return "docker"
    if os.path.exists("/run/.containerenv"):
        return "podman"
    if os.environ.get("SINGULARITY_CONTAINER") or os.environ.get("APPTAINER_CONTAINER"):
        return "apptainer"
    try:
        with open("/proc/1/cgroup", encoding="utf-8", errors="replace") as fh:
            text = fh.read(4096)
    except OSError:
        return None
    for marker, name in (
        ("kubepods", "kubernetes"),
        ("docker", "docker"),
        ("containerd", "containerd"),
        ("lxc", "lxc"),
    ):
        if marker in text:
            return name
    return None


def _scheduler() -> dict[str, Any] | None:
    env = os.environ
    if env.get("SLURM_JOB_ID"):
        out: dict[str, Any] = {"name": "slurm", "job_id": env["SLURM_JOB_ID"]}
        if env.get("SLURM_ARRAY_TASK_ID"):
            out["array_task_id"] = env["SLURM_ARRAY_TASK_ID"]
        return out
    for var, name in (("PBS_JOBID", "pbs"), ("LSB_JOBID", "lsf"), ("JOB_ID", "sge")):
        if env.get(var):
            return {"name": name, "job_id": env[var]}
    return None


def capture_os() -> dict[str, Any]:
    """System, release, libc, hostname (``LABLEDGER_CAPTURE_HOSTNAME=off`` omits it), container, scheduler."""
    hide = (setting("LABLEDGER_CAPTURE_HOSTNAME") or "").lower() in ("0", "off", "false", "no")
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "libc": _libc() if platform.system() == "Linux" else None,
        "hostname": None if hide else socket.gethostname(),
        "container": _container(),
        "scheduler": _scheduler(),
    }


def entry_script() -> Path | None:
    """The script file the interpreter runs (``python train.py`` or ``python -m pkg.mod``)."""
    main = sys.modules.get("__main__")
    f = getattr(main, "__file__", None)
    if isinstance(f, str) and os.path.isfile(f):
        return Path(f).resolve()
    return None


_UNSET: Any = object()


def capture_command(git_root: str | None, *, script: Path | None = _UNSET) -> dict[str, Any]:
    """argv (secrets redacted), cwd, entry point; ``script`` as found at ``init()`` time."""
    cwd = os.getcwd()
    rel = None
    if git_root:
        try:
            rel = Path(cwd).resolve().relative_to(Path(git_root).resolve()).as_posix()
        except ValueError:
            rel = None
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    if script is _UNSET:
        script = entry_script()
    entry: str | None = str(script) if script else None
    if "-m" in argv[1:]:
        i = argv.index("-m", 1)
        if i + 1 < len(argv):
            entry = f"-m {argv[i + 1]}"
    elif "-c" in argv[1:]:
        entry = "-c"
    out: dict[str, Any] = {
        "argv": redact_argv(list(sys.argv)),
        "orig_argv": redact_argv(argv),
        "cwd": cwd,
        "rel_cwd": rel,
        "entry_point": entry,
        "executable": sys.executable,
    }
    if script is None:
        from .notebook import in_notebook, notebook_path

        if in_notebook():
            # a kernel's own command (-m ipykernel_launcher -f ...json) cannot be re-run: the
            # entry point is the export of the executed cells (env.notebook, notebook.py)
            out["kernel_argv"] = out["orig_argv"]
            out["argv"] = ["notebook.py"]
            out["orig_argv"] = [sys.executable, "notebook.py"]
            out["entry_point"] = "notebook.py"
            path = notebook_path()
            out["notebook"] = str(path) if path is not None else None
    return out
