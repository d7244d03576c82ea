"""Readable lines for a run's captured environment (``labledger show``, ``labledger env``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["fmt_bytes", "render_env_detail", "render_env_diff", "render_env_lines"]


def fmt_bytes(n: Any) -> str:
    """Sizes everywhere in labledger: decimal units (1 KB = 1000 bytes), as ``fmt_size``."""
    if not isinstance(n, (int, float)):
        return "-"
    from .._values import fmt_size

    return fmt_size(int(n))


def _git_line(git: Mapping[str, Any]) -> str:
    commit = str(git.get("commit") or "no commit")[:12]
    where = git.get("branch") or ("detached HEAD" if git.get("detached") else "-")
    text = f"{commit} on {where}"
    if git.get("dirty"):
        n_untracked = len(git.get("untracked") or [])
        sha = git.get("diff_sha256")
        text += " (dirty"
        if sha:
            text += f": patch {str(sha)[:12]} captured"
        if n_untracked:
            text += f", {n_untracked} untracked"
        if git.get("excluded"):
            text += f", {len(git['excluded'])} left out"
        text += ")"
    if git.get("remote"):
        text += f"  {git['remote']}"
    return text


def _bundle_line(bundle: Mapping[str, Any]) -> str:
    n = bundle.get("commits")
    what = f"{n} commit(s)" if isinstance(n, int) else "commits"
    if bundle.get("stored"):
        return (
            f"bundle of {what} stored, {fmt_bytes(bundle.get('size'))} "
            f"({bundle.get('reason')}; repro can rebuild them)"
        )
    return (
        f"bundle of {what} NOT stored: {bundle.get('why') or 'not captured'} "
        f"({fmt_bytes(bundle.get('size'))}; {bundle.get('reason')})"
    )


def _left_out_line(excluded: list[Any], limit: int = 5) -> str:
    items = []
    for e in excluded[:limit]:
        if not isinstance(e, Mapping):
            items.append(str(e))
            continue
        size = f", {fmt_bytes(e['size'])}" if isinstance(e.get("size"), int) else ""
        items.append(f"{e.get('path') or '...'} ({e.get('reason')}{size})")
    more = (
        f", and {len(excluded) - limit} more (labledger env RUN)" if len(excluded) > limit else ""
    )
    return ", ".join(items) + more


def _seed_line(seed: Mapping[str, Any]) -> str:
    if seed.get("seed") is None:
        return "none (unseeded run)"
    det = ", deterministic" if seed.get("deterministic") else ""
    return f"{seed.get('seed')} ({', '.join(seed.get('seeded') or [])}{det})"


def _hardware_line(hw: Mapping[str, Any]) -> str:
    gpus = hw.get("gpus") or []
    if gpus:
        names: dict[str, int] = {}
        for g in gpus:
            label = f"{g.get('name', '?')} {fmt_bytes(g.get('memory_bytes'))}"
            names[label] = names.get(label, 0) + 1
        gpu_txt = ", ".join(f"{n}x {label}" for label, n in names.items())
    else:
        gpu_txt = "no GPU"
    cores = f"{hw.get('cpu_count', '?')} cores"
    if hw.get("cpu_physical"):
        cores = f"{hw['cpu_physical']}/{hw.get('cpu_count', '?')} cores"
    text = (
        f"{hw.get('cpu_model') or '-'}, {cores}, {fmt_bytes(hw.get('memory_bytes'))} RAM, {gpu_txt}"
    )
    if hw.get("cuda"):
        text += f", CUDA {hw['cuda']}"
    if hw.get("cudnn"):
        text += f", cuDNN {hw['cudnn']}"
    return text


def _os_line(osinfo: Mapping[str, Any]) -> str:
    parts = [f"{osinfo.get('system', '-')} {osinfo.get('release', '')}".strip()]
    if osinfo.get("libc"):
        parts.append(str(osinfo["libc"]))
    if osinfo.get("hostname"):
        parts.append(f"host {osinfo['hostname']}")
    if osinfo.get("container"):
        parts.append(f"in {osinfo['container']}")
    sched = osinfo.get("scheduler")
    if isinstance(sched, Mapping):
        parts.append(f"{sched.get('name')} job {sched.get('job_id')}")
    return ", ".join(parts)


def render_env_lines(env: dict[str, Any]) -> list[str]:
    """A compact summary, one line per section."""
    lines: list[str] = []
    git = env.get("git") or {}
    if git:
        lines.append(f"git      {_git_line(git)}")
        if isinstance(git.get("bundle"), Mapping):
            lines.append(f"         {_bundle_line(git['bundle'])}")
        if git.get("excluded"):
            lines.append(f"left out {_left_out_line(list(git['excluded']))}")
    snap = env.get("code_snapshot") or {}
    if snap:
        lines.append(
            f"code     snapshot {str(snap.get('sha256', '-'))[:12]} of {len(snap.get('files') or [])} file(s) (no git)"
        )
    nb = env.get("notebook") or {}
    if nb:
        where = nb.get("path") or "the session's executed cells"
        lines.append(
            f"notebook {where}: {nb.get('cells', 0)} code cell(s), sha256 {str(nb.get('sha256', '-'))[:12]}"
        )
    py = env.get("python") or {}
    if py:
        venv = f", venv {py['venv']}" if py.get("venv") else ""
        impl = f"{py['implementation']} " if py.get("implementation") else ""
        lines.append(f"python   {impl}{py.get('version', '-')} ({py.get('executable', '-')}{venv})")
    if env.get("packages"):
        n_src = len(env.get("package_sources") or {})
        extra = f", {n_src} from source" if n_src else ""
        lines.append(
            f"packages {len(env['packages'])} distributions{extra} (labledger env RUN --requirements)"
        )
    osinfo = env.get("os") or {}
    if osinfo:
        lines.append(f"os       {_os_line(osinfo)}")
    hw = env.get("hardware") or {}
    if hw:
        lines.append(f"hardware {_hardware_line(hw)}")
    cmd = env.get("command") or {}
    if cmd:
        lines.append(f"command  {' '.join(cmd.get('argv') or [])}  (in {cmd.get('cwd', '-')})")
    if env.get("env_vars"):
        lines.append("env vars " + " ".join(f"{k}={v}" for k, v in sorted(env["env_vars"].items())))
    seed = env.get("seed")
    if isinstance(seed, Mapping):
        lines.append(f"seed     {_seed_line(seed)}")
    rt = env.get("runtime") or {}
    if rt:
        wall, cpu = rt.get("wall_s"), rt.get("cpu_s")
        wall_t = f"{wall:.1f}s wall" if isinstance(wall, (int, float)) else "- wall"
        cpu_t = f"{cpu:.1f}s CPU" if isinstance(cpu, (int, float)) else "- CPU"
        # the exit status is known only when the process ended with the run (a script
        # that goes on after finish() has none): say nothing rather than "exit -"
        code = rt.get("exit_code")
        lines.append(f"runtime  {wall_t}, {cpu_t}" + (f", exit {code}" if code is not None else ""))
    errors = env.get("errors") or {}
    if errors:
        lines.append("capture errors: " + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
    if env.get("capture_error"):
        lines.append(f"capture failed: {env['capture_error']}")
    missing = env.get("missing") or []
    if missing:
        lines.append(
            "missing  "
            + ", ".join(str(m) for m in missing)
            + " (capture did not finish before the run ended: not recorded, not absent)"
        )
    return lines


def render_env_detail(env: dict[str, Any]) -> list[str]:
    """Everything, section by section (``labledger env RUN``)."""
    lines = render_env_lines(env)
    git = env.get("git") or {}
    if git.get("untracked"):
        lines.append("")
        lines.append("untracked files in the patch:")
        left = {e.get("path") for e in git.get("excluded") or []}
        lines.extend(f"  {p}" for p in git["untracked"] if p not in left)
    if git.get("excluded"):
        lines.append("")
        lines.append("left out of the patch:")
        for e in git["excluded"]:
            size = f" ({fmt_bytes(e['size'])})" if e.get("size") is not None else ""
            lines.append(f"  {e.get('path') or '...'}: {e.get('reason')}{size}")
    snap = env.get("code_snapshot") or {}
    if snap.get("files"):
        lines.append("")
        lines.append(f"code snapshot of {snap.get('root', '-')}:")
        lines.extend(
            f"  {f['path']}  {str(f.get('sha256'))[:12]}  {fmt_bytes(f.get('size'))}"
            for f in snap["files"]
        )
    gpus = (env.get("hardware") or {}).get("gpus") or []
    if gpus:
        lines.append("")
        lines.append("GPUs:")
        for g in gpus:
            lines.append(
                f"  {g.get('index', '?')}: {g.get('name')} {fmt_bytes(g.get('memory_bytes'))} "
                f"driver {g.get('driver')} {g.get('uuid', '')}"
            )
    pkgs = env.get("packages") or {}
    if pkgs:
        srcs = env.get("package_sources") or {}
        lines.append("")
        lines.append(f"packages ({len(pkgs)}):")
        for name in sorted(pkgs, key=str.lower):
            src = srcs.get(name)
            note = ""
            if src:
                kind = "editable" if src.get("editable") else (src.get("vcs") or "local")
                note = f"  [{kind} {src.get('url') or ''}{'@' + src['commit'] if src.get('commit') else ''}]"
            lines.append(f"  {name}=={pkgs[name]}{note}")
    return lines


def _short(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str, sort_keys=True)
    return "-" if v is None else str(v)


def render_env_diff(diff: Mapping[str, Any], label_a: str = "A", label_b: str = "B") -> list[str]:
    """Readable lines for the result of :func:`labledger.capture.diff.env_diff`."""
    lines: list[str] = []
    if diff.get("same"):
        lines.append(f"environments of {label_a} and {label_b} match")
        cmd = diff.get("command") or {}
        if cmd:
            lines.append("(commands differ: " + ", ".join(sorted(cmd)) + ")")
        return lines
    titles = {
        "packages": "packages",
        "env_vars": "environment variables",
        "code_snapshot": "code snapshot files",
        "datasets": "datasets",
    }
    for section in (
        "git",
        "patch",
        "code_snapshot",
        "python",
        "packages",
        "os",
        "hardware",
        "env_vars",
        "seed",
        "datasets",
        "command",
    ):
        d = diff.get(section) or {}
        if not d:
            continue
        if section == "patch":
            lines.append("uncommitted changes (patch):")
            for p in d.get("added", []):
                lines.append(f"  + {p}  (changed only in {label_b})")
            for p in d.get("removed", []):
                lines.append(f"  - {p}  (changed only in {label_a})")
            for p in d.get("changed", []):
                lines.append(f"  ~ {p}  (changed differently)")
            continue
        if section in titles:
            lines.append(f"{titles[section]}:")
            for k, v in (d.get("added") or {}).items():
                lines.append(f"  + {k} {_short(v)}")
            for k, v in (d.get("removed") or {}).items():
                lines.append(f"  - {k} {_short(v)}")
            for k, v in (d.get("changed") or {}).items():
                lines.append(f"  ~ {k} {_short(v.get('a'))} -> {_short(v.get('b'))}")
            continue
        lines.append(f"{section}:")
        for field, v in d.items():
            lines.append(f"  {field}: {_short(v.get('a'))} -> {_short(v.get('b'))}")
    return lines
