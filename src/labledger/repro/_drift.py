"""Drift between the recorded environment and the one a reproduction runs in."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

__all__ = ["DRIFT_SECTIONS", "current_environment", "drift", "drift_lines"]

# What decides whether numbers come out the same; git, command and seed are recreated
# by repro itself and env_vars are replayed, so they are not drift.
DRIFT_SECTIONS = ("python", "packages", "os", "hardware")
_NOISE = {"os": {"hostname", "container", "scheduler"}, "python": {"executable", "venv"}}


def current_environment() -> dict[str, Any]:
    """This interpreter's environment in the layout of a run's ``env`` (capture's probe when present)."""
    try:
        from ..capture.diff import current_env

        env = current_env()
        if isinstance(env, dict) and env.get("packages"):
            return env
    except Exception:
        pass
    out: dict[str, Any] = {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
        },
    }
    try:
        from ..capture.packages import capture_packages

        out["packages"], out["package_sources"] = capture_packages()
    except ImportError:
        import importlib.metadata as md

        out["packages"] = {
            d.metadata["Name"]: d.version for d in md.distributions() if d.metadata["Name"]
        }
    return out


def drift(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """Per section of :data:`DRIFT_SECTIONS`, what differs (recorded ``a`` -> current ``b``).

    Only what both sides recorded is compared: a field one side has no value for (torch
    not imported when this side was probed, no GPU query) is not drift. Packages are
    compared as sets (a package recorded but not installed here is drift)."""
    rec = {k: recorded.get(k) for k in DRIFT_SECTIONS if recorded.get(k)}
    cur = {k: current.get(k) for k in DRIFT_SECTIONS if k in rec}
    try:
        from ..capture.diff import env_diff

        d = env_diff(rec, cur)
        out = {k: d.get(k) or {} for k in DRIFT_SECTIONS}
    except ImportError:  # pragma: no cover - capture.diff ships with labledger
        out = {k: _simple(rec.get(k), cur.get(k)) for k in DRIFT_SECTIONS}
    for section, skip in _NOISE.items():
        out[section] = {k: v for k, v in (out.get(section) or {}).items() if k not in skip}
    for section in ("python", "os", "hardware"):
        # only what both sides recorded: a value one side did not capture is not drift
        out[section] = {
            k: v
            for k, v in (out.get(section) or {}).items()
            if not (isinstance(v, Mapping) and (v.get("a") is None or v.get("b") is None))
        }
    return out


def _simple(a: Any, b: Any) -> dict[str, Any]:
    a, b = dict(a or {}), dict(b or {})
    return {
        k: {"a": a.get(k), "b": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
    }


def drift_lines(d: Mapping[str, Any], *, max_added: int = 5) -> list[str]:
    """Readable lines, one per difference that matters (recorded -> here)."""
    lines: list[str] = []
    for section in ("python", "os", "hardware"):
        for field_, ab in (d.get(section) or {}).items():
            lines.append(f"{section}.{field_}: recorded {ab.get('a')!r}, here {ab.get('b')!r}")
    pk = d.get("packages") or {}
    for name, ab in (pk.get("changed") or {}).items():
        lines.append(f"package {name}: recorded {ab.get('a')}, here {ab.get('b')}")
    for name, ver in (pk.get("removed") or {}).items():
        lines.append(f"package {name}: recorded {ver}, not installed here")
    added = list((pk.get("added") or {}).items())
    if added:
        shown = ", ".join(f"{n} {v}" for n, v in added[:max_added])
        more = f" and {len(added) - max_added} more" if len(added) > max_added else ""
        lines.append(f"{len(added)} package(s) installed here but not recorded: {shown}{more}")
    return lines
