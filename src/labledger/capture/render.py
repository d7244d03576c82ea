"""Readable lines for a run's captured environment (used by ``labledger show``)."""

from __future__ import annotations

from typing import Any

__all__ = ["render_env_lines"]


def render_env_lines(env: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    git = env.get("git") or {}
    if git:
        dirty = " (dirty: patch captured)" if git.get("dirty") else ""
        lines.append(
            f"git      {str(git.get('commit') or '-')[:12]} on {git.get('branch') or '-'}{dirty}"
        )
    py = env.get("python") or {}
    if py:
        lines.append(f"python   {py.get('version', '-')} ({py.get('executable', '-')})")
    if env.get("packages"):
        lines.append(f"packages {len(env['packages'])} installed distributions recorded")
    osinfo = env.get("os") or {}
    if osinfo:
        lines.append(f"os       {osinfo.get('system', '-')} {osinfo.get('release', '')}")
    hw = env.get("hardware") or {}
    if hw:
        gpus = hw.get("gpus") or []
        gpu_txt = ", ".join(g.get("name", "?") for g in gpus) if gpus else "no GPU"
        lines.append(f"hardware {hw.get('cpu_model', '-')} x{hw.get('cpu_count', '?')}, {gpu_txt}")
    cmd = env.get("command") or {}
    if cmd:
        lines.append(f"command  {' '.join(cmd.get('argv') or [])}  (in {cmd.get('cwd', '-')})")
    seed = env.get("seed") or {}
    if seed:
        lines.append(f"seed     {seed.get('seed')} ({', '.join(seed.get('seeded', []))})")
    if env.get("errors"):
        lines.append(f"capture errors: {env['errors']}")
    return lines
