"""Differences between two captured environments (``labledger env diff``, ``labledger diff``, repro).

``env_diff(env_a, env_b)`` is a pure function over two ``env`` dicts (the ``env`` field
of a run record, or :func:`current_env`). Its result always has the same keys, so
callers can rely on them; each section is empty when both sides agree::

    {
      "same": bool,
      "packages":  {"added": {name: ver}, "removed": {name: ver}, "changed": {name: {"a": v, "b": v}}},
      "env_vars":  {"added": {...}, "removed": {...}, "changed": {...}},
      "git":       {field: {"a": x, "b": y}},      # commit, branch, remote, dirty, diff_sha256, ...
      "code_snapshot": {"added": {path: sha}, "removed": {...}, "changed": {...}},
      "python":    {field: {"a": x, "b": y}},
      "os":        {field: {"a": x, "b": y}},
      "hardware":  {field: {"a": x, "b": y}},      # gpus compared as "name (memory)" lists
      "seed":      {field: {"a": x, "b": y}},
      "command":   {field: {"a": x, "b": y}},
      "datasets":  {"added": {name: sha}, "removed": {...}, "changed": {name: {"a": sha, "b": sha}}},
      "patch":     {"added": [path], "removed": [path], "changed": [path]},
    }

``datasets_*`` are the runs' ``datasets`` lists (they live beside ``env`` in the run
record). ``patch`` is filled only when ``blobs`` (a ``sha256 -> bytes`` reader such as
``store.get_blob``) is given and both sides have a stored patch: it lists the files
whose uncommitted changes differ. ``command`` is informative only and does not count
towards ``same`` (two runs of one script from different folders are still the same
environment).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["SECTIONS", "current_env", "env_diff", "patch_files", "run_env_diff"]

SECTIONS = (
    "packages",
    "env_vars",
    "git",
    "code_snapshot",
    "python",
    "os",
    "hardware",
    "seed",
    "command",
    "datasets",
    "patch",
)
_INFORMATIVE = frozenset({"command"})
# Fields that differ on every run and say nothing about reproducibility.
_IGNORED = {
    "git": frozenset({"untracked", "excluded"}),
    "python": frozenset(),
    "os": frozenset(),
    "hardware": frozenset(),
    "seed": frozenset(),
    "command": frozenset(),
}


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _keyed_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    added = {k: b[k] for k in sorted(b) if k not in a}
    removed = {k: a[k] for k in sorted(a) if k not in b}
    changed = {k: {"a": a[k], "b": b[k]} for k in sorted(a) if k in b and a[k] != b[k]}
    if not (added or removed or changed):
        return {}
    return {"added": added, "removed": removed, "changed": changed}


def _field_diff(
    a: Mapping[str, Any], b: Mapping[str, Any], ignore: Iterable[str] = ()
) -> dict[str, Any]:
    skip = set(ignore)
    out: dict[str, Any] = {}
    for k in sorted(set(a) | set(b)):
        if k in skip:
            continue
        va, vb = a.get(k), b.get(k)
        if va != vb:
            out[k] = {"a": va, "b": vb}
    return out


def _same_interpreter(a: Any, b: Any) -> bool:
    """Two paths in one directory that resolve to the same file (python, python3, python3.11)."""
    import os

    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    if os.path.dirname(a) != os.path.dirname(b):
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _hardware_view(hw: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(hw)
    gpus = hw.get("gpus")
    if isinstance(gpus, list):
        out["gpus"] = [
            f"{g.get('name', '?')} ({g.get('memory_bytes', '?')} B)"
            if isinstance(g, Mapping)
            else str(g)
            for g in gpus
        ]
    return out


def _snapshot_files(snap: Mapping[str, Any]) -> dict[str, Any]:
    files = snap.get("files")
    if not isinstance(files, list):
        return {}
    return {str(f.get("path")): f.get("sha256") for f in files if isinstance(f, Mapping)}


def _datasets_map(datasets: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in datasets or []:
        if isinstance(d, Mapping):
            out[str(d.get("name") or d.get("path"))] = d.get("sha256")
    return out


_DIFF_HEADER = re.compile(rb"^diff --git a/(.*?) b/(.*)$", re.MULTILINE)


def patch_files(patch: bytes) -> dict[str, str]:
    """Split a git patch into ``{path: sha256 of that file's hunk text}``."""
    out: dict[str, str] = {}
    matches = list(_DIFF_HEADER.finditer(patch))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(patch)
        # drop the "index abc..def" line: it names blob ids, not content we compare on
        body = re.sub(
            rb"^index [0-9a-f]+\.\.[0-9a-f]+.*$", b"", patch[m.start() : end], flags=re.MULTILINE
        )
        out[m.group(2).decode("utf-8", "replace")] = hashlib.sha256(body).hexdigest()
    return out


def _patch_diff(sha_a: Any, sha_b: Any, blobs: Callable[[str], bytes]) -> dict[str, Any]:
    if sha_a == sha_b:
        return {}
    try:
        fa = patch_files(blobs(sha_a)) if sha_a else {}
        fb = patch_files(blobs(sha_b)) if sha_b else {}
    except Exception:  # a missing blob still leaves the git.diff_sha256 difference
        return {}
    d = _keyed_diff(fa, fb)
    if not d:
        return {}
    return {
        "added": sorted(d["added"]),
        "removed": sorted(d["removed"]),
        "changed": sorted(d["changed"]),
    }


def env_diff(
    env_a: Mapping[str, Any] | None,
    env_b: Mapping[str, Any] | None,
    *,
    datasets_a: Iterable[Mapping[str, Any]] | None = None,
    datasets_b: Iterable[Mapping[str, Any]] | None = None,
    blobs: Callable[[str], bytes] | None = None,
) -> dict[str, Any]:
    """Compare two captured environments section by section (see the module docstring)."""
    a, b = _mapping(env_a), _mapping(env_b)
    out: dict[str, Any] = {}
    out["packages"] = _keyed_diff(_mapping(a.get("packages")), _mapping(b.get("packages")))
    out["env_vars"] = _keyed_diff(_mapping(a.get("env_vars")), _mapping(b.get("env_vars")))
    ga, gb = _mapping(a.get("git")), _mapping(b.get("git"))
    out["git"] = _field_diff(ga, gb, _IGNORED["git"])
    out["code_snapshot"] = _keyed_diff(
        _snapshot_files(_mapping(a.get("code_snapshot"))),
        _snapshot_files(_mapping(b.get("code_snapshot"))),
    )
    for section in ("python", "os", "seed", "command"):
        out[section] = _field_diff(
            _mapping(a.get(section)), _mapping(b.get(section)), _IGNORED[section]
        )
    exe = out["python"].get("executable")
    if exe and _same_interpreter(exe["a"], exe["b"]):
        del out["python"]["executable"]  # .venv/bin/python vs .venv/bin/python3: one interpreter
    out["hardware"] = _field_diff(
        _hardware_view(_mapping(a.get("hardware"))), _hardware_view(_mapping(b.get("hardware")))
    )
    out["datasets"] = _keyed_diff(_datasets_map(datasets_a), _datasets_map(datasets_b))
    out["patch"] = (
        _patch_diff(ga.get("diff_sha256"), gb.get("diff_sha256"), blobs)
        if blobs is not None
        else {}
    )
    out["same"] = not any(out[s] for s in SECTIONS if s not in _INFORMATIVE)
    return {"same": out.pop("same"), **{s: out[s] for s in SECTIONS}}


def run_env_diff(
    run_a: Mapping[str, Any],
    run_b: Mapping[str, Any],
    *,
    blobs: Callable[[str], bytes] | None = None,
) -> dict[str, Any]:
    """:func:`env_diff` over two run records (``env`` plus ``datasets``)."""
    return env_diff(
        run_a.get("env"),
        run_b.get("env"),
        datasets_a=run_a.get("datasets"),
        datasets_b=run_b.get("datasets"),
        blobs=blobs,
    )


def current_env(*, put_blob: Callable[[bytes], str] | None = None) -> dict[str, Any]:
    """Capture this process's environment now, in the same layout as a run's ``env``.

    The git patch is hashed (so ``git.diff_sha256`` compares with a run's) and, when
    ``put_blob`` is given (e.g. ``store.put_blob``), stored too.
    """
    from . import capture_env

    return capture_env(put_blob=put_blob)
