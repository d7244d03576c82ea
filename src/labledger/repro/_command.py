"""The recorded command, mapped into the new checkout."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["Command", "recorded_command"]

REDACTED = "<redacted>"


@dataclass
class Command:
    """``python [opts] (SCRIPT | -m MODULE) ARGS`` with the script relative to the checkout when possible."""

    interpreter_opts: list[str] = field(default_factory=list)
    script: str | None = None  # relative to the checkout (inside=True) or an absolute path
    script_inside: bool = True
    module: str | None = None
    args: list[str] = field(default_factory=list)
    rel_cwd: str = "."
    problems: list[str] = field(default_factory=list)  # cannot run at all
    warnings: list[str] = field(default_factory=list)

    def argv(self, python: str, checkout: Path) -> list[str]:
        head = [python, *self.interpreter_opts]
        if self.module:
            return [*head, "-m", self.module, *self.args]
        assert self.script is not None
        script = str(checkout / self.script) if self.script_inside else self.script
        return [*head, script, *self.args]

    def describe(self) -> str:
        target = f"-m {self.module}" if self.module else (self.script or "?")
        where = "<checkout>/" if self.script_inside and not self.module else ""
        opts = " ".join(self.interpreter_opts)
        return " ".join(p for p in ("python", opts, f"{where}{target}", *self.args) if p)


def _relative(path: str, base: str | None) -> str | None:
    if not base:
        return None
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except (ValueError, OSError):
        return None


def _console_module(script: str) -> str | None:
    """The runnable module behind a console-script launcher (``bin/labledger``), else None.

    A launcher is a file in a ``bin``/``Scripts`` folder named after a ``console_scripts``
    entry point of an installed distribution whose module runs with ``python -m``.
    """
    import importlib.metadata as md
    import importlib.util

    path = PurePosixPath(script.replace("\\", "/"))
    if path.parent.name not in ("bin", "Scripts") or path.suffix == ".py":
        return None
    name = path.name.removesuffix(".exe")
    for ep in md.entry_points(group="console_scripts"):
        if ep.name != name:
            continue
        module = ep.value.split(":", 1)[0].strip()
        try:
            if importlib.util.find_spec(f"{module}.__main__") is not None:
                return module
        except (ImportError, ValueError):
            return None
    return None


def recorded_command(
    env: Mapping[str, Any], *, base: str | None, snapshot_files: list[str] | None = None
) -> Command:
    """Rebuild the command of a run's ``env.command``.

    ``base`` is the directory the checkout stands for: the recorded git root, or the
    directory the snapshot's relative paths start from.
    """
    rec = env.get("command") or {}
    argv = [str(a) for a in rec.get("argv") or []]
    orig = [str(a) for a in rec.get("orig_argv") or []]
    cwd = rec.get("cwd")
    entry = rec.get("entry_point")
    cmd = Command()
    if not argv:
        cmd.problems.append("the run recorded no command")
        return cmd
    cmd.args = argv[1:]
    if orig and len(orig) > len(argv):
        opts = orig[1 : len(orig) - len(argv)]
        if opts and opts[-1] == "-m":
            opts = opts[:-1]
        cmd.interpreter_opts = [o for o in opts if o != "-c"]
    rel_cwd = rec.get("rel_cwd")
    if rel_cwd is None and cwd:
        rel_cwd = _relative(cwd, base)
    cmd.rel_cwd = rel_cwd or "."
    if isinstance(entry, str) and entry.startswith("-m "):
        cmd.module = entry[3:].strip()
    elif entry == "-c" or argv[0] == "-c":
        cmd.problems.append("the run was started with python -c: its inline code was not captured")
        return cmd
    elif _console_module(argv[0]) is not None:
        # `.venv/bin/labledger demo`: the launcher lives in a virtual environment, which is
        # never part of the recorded code; run the command's module with this interpreter
        cmd.module = _console_module(argv[0])
    else:
        script = entry if isinstance(entry, str) and entry else argv[0]
        if not os.path.isabs(script) and cwd:
            script = os.path.join(cwd, script)
        rel = _relative(script, base)
        if rel is None and snapshot_files:
            name = PurePosixPath(script).name
            rel = next((f for f in snapshot_files if PurePosixPath(f).name == name), None)
        if rel is not None:
            cmd.script = rel
        else:
            cmd.script, cmd.script_inside = script, False
            cmd.warnings.append(
                f"the entry script {script} is outside the recorded code; it runs from there"
            )
    if REDACTED in argv or any(a.endswith("=" + REDACTED) for a in argv):
        cmd.warnings.append(
            "some arguments were redacted as secrets when recorded; they are passed as "
            f"{REDACTED!r}"
        )
    return cmd
