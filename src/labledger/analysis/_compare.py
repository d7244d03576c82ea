"""Leaderboard rows, two-run diffs and N-run comparison tables, as plain dicts (JSON-ready)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._values import flatten

__all__ = [
    "ENV_KEYS",
    "ROW_GROUPS",
    "compare_runs",
    "diff_runs",
    "leaderboard_row",
    "metric_order",
    "provenance",
    "row_group",
]

# environment facts shown in compare tables (dotted paths into env)
ENV_KEYS = (
    "git.commit",
    "git.branch",
    "git.dirty",
    "git.diff_sha256",
    "python.version",
    "os.system",
    "hardware.cpu_model",
    "hardware.cuda",
    "command.argv",
)


def metric_order(key: str) -> tuple[bool, str]:
    """Sort key for metric names: the user's own first, the machine's ``system/*`` after."""
    return (key.startswith("system/"), key)


def _get(d: Mapping[str, Any] | None, path: str) -> Any:
    cur: Any = d or {}
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        return False
    return bool(a == b)


def provenance(run: Mapping[str, Any]) -> dict[str, Any]:
    """What produced a run: commit, whether a patch was captured, seed, data fingerprints, runtime."""
    git = _get(run.get("env"), "git") or {}
    return {
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "patch_sha256": git.get("diff_sha256"),
        "patch_captured": bool(git.get("diff_sha256")),
        "seed": run.get("seed"),
        "datasets": [
            {"name": d.get("name"), "sha256": d.get("sha256")} for d in (run.get("datasets") or [])
        ],
        "runtime_s": run.get("runtime_s"),
    }


def leaderboard_row(rank: int, run: Mapping[str, Any], metric: str) -> dict[str, Any]:
    return {
        "rank": rank,
        "id": run["id"],
        "name": run.get("name"),
        "project": run.get("project"),
        "author": run.get("author"),
        "status": run.get("status"),
        "metric": metric,
        "value": (run.get("summary") or {}).get(metric),
        # the metric's amendment after the run ended ({sealed, value, by, at, reason}) or None
        "amended": (run.get("amended") or {}).get(metric),
        "config": run.get("config") or {},
        **provenance(run),
        "created_at": run.get("created_at"),
    }


def _section(a: Mapping[str, Any], b: Mapping[str, Any], show_all: bool) -> list[dict[str, Any]]:
    out = []
    for key in sorted(set(a) | set(b), key=metric_order):
        va, vb = a.get(key), b.get(key)
        same = key in a and key in b and _same(va, vb)
        if same and not show_all:
            continue
        out.append(
            {
                "key": key,
                "a": va,
                "b": vb,
                "same": same,
                "only": "a" if key not in b else "b" if key not in a else None,
            }
        )
    return out


def diff_runs(
    run_a: Mapping[str, Any],
    run_b: Mapping[str, Any],
    *,
    show_all: bool = False,
    blobs: Callable[[str], bytes] | None = None,
) -> dict[str, Any]:
    """Differences between two runs: config, summary, environment, seed, datasets.

    Only differing entries unless ``show_all``. The environment section is
    ``labledger.capture.diff.run_env_diff`` (packages added/removed/changed, git, python,
    hardware, ...).
    """
    from ..capture.diff import run_env_diff

    env = run_env_diff(run_a, run_b, blobs=blobs)
    if not show_all:
        env = {k: v for k, v in env.items() if k == "same" or v}
    da = {d.get("name") or d.get("path"): d.get("sha256") for d in (run_a.get("datasets") or [])}
    db = {d.get("name") or d.get("path"): d.get("sha256") for d in (run_b.get("datasets") or [])}
    meta_keys = ("name", "project", "author", "status", "runtime_s", "exit_code")
    return {
        "a": run_a["id"],
        "b": run_b["id"],
        "run": _section(
            {k: run_a.get(k) for k in meta_keys}, {k: run_b.get(k) for k in meta_keys}, show_all
        ),
        "config": _section(
            flatten(run_a.get("config") or {}), flatten(run_b.get("config") or {}), show_all
        ),
        "summary": _section(run_a.get("summary") or {}, run_b.get("summary") or {}, show_all),
        # summary values amended after the run ended (the summary section is sealed)
        "amended": _section(_amended_values(run_a), _amended_values(run_b), show_all),
        "seed": _section({"seed": run_a.get("seed")}, {"seed": run_b.get("seed")}, show_all),
        "datasets": _section(da, db, show_all),
        "environment": env,
    }


def _amended_values(run: Mapping[str, Any]) -> dict[str, Any]:
    return {k: a.get("value") for k, a in (run.get("amended") or {}).items()}


def compare_runs(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """N runs as one table: one row per key (config, summary, seed, env facts), differing rows first."""
    cols = [r["id"] for r in runs]
    table: dict[str, list[Any]] = {}

    def put(key: str, i: int, value: Any) -> None:
        table.setdefault(key, [None] * len(runs))[i] = value

    for i, r in enumerate(runs):
        for k, v in flatten(r.get("config") or {}).items():
            put(f"config.{k}", i, v)
        for k, v in (r.get("summary") or {}).items():
            put(f"summary.{k}", i, v)
        for k, a in (r.get("amended") or {}).items():  # beside the sealed value
            put(f"amended.{k}", i, a.get("value"))
        put("seed", i, r.get("seed"))
        put("status", i, r.get("status"))
        put("runtime_s", i, r.get("runtime_s"))
        for k in ENV_KEYS:
            v = _get(r.get("env"), k)
            if v is not None:
                put(f"env.{k}", i, v)
        for d in r.get("datasets") or []:
            put(f"dataset.{d.get('name')}", i, d.get("sha256"))
        put("author", i, r.get("author"))
        repro = r.get("repro")
        if isinstance(repro, Mapping) and repro.get("verdict"):
            put("repro", i, repro["verdict"])
    # packages: only those whose versions differ (the rest would be hundreds of equal rows)
    packages = [(_get(r.get("env"), "packages") or {}) for r in runs]
    if len(runs) > 1 and any(packages):
        for name in sorted({n for p in packages if isinstance(p, Mapping) for n in p}):
            versions = [p.get(name) if isinstance(p, Mapping) else None for p in packages]
            if any(not _same(versions[0], v) for v in versions[1:]):
                table[f"packages.{name}"] = versions
    rows: list[dict[str, Any]] = []
    for key, values in table.items():
        differs = any(not _same(values[0], v) for v in values[1:])
        if key == "runtime_s":
            differs = False  # always differs; shown with the others
        rows.append({"key": key, "values": values, "differs": differs, "group": row_group(key)})
    order = {g: i for i, g in enumerate(ROW_GROUPS)}

    def sort_name(key: str) -> str:  # an amended value right after its sealed one
        return "summary." + key[8:] + "\x00" if key.startswith("amended.") else key

    # differing rows first; the machine's system/* after everything, in their own group
    rows.sort(
        key=lambda r: (
            r["group"] == "system",
            not r["differs"],
            order[r["group"]],
            sort_name(str(r["key"])),
        )
    )
    return {"runs": cols, "names": [r.get("name") for r in runs], "rows": rows}


# the groups of a compare table's rows, in the order they are shown
ROW_GROUPS = ("provenance", "config", "summary", "run", "env", "system")
_PROVENANCE = ("seed", "author", "repro", "env.git.commit", "env.git.dirty", "env.git.diff_sha256")


def row_group(key: str) -> str:
    """Which group a compare row belongs to: ``provenance`` (commit, dirty, patch, seed,
    data digests, differing packages, author, reproduction verdict), ``config``,
    ``summary``, ``system`` (the machine's ``system/*`` metrics), ``run`` or ``env``."""
    if key.startswith("summary.system/"):
        return "system"
    if key in _PROVENANCE or key.startswith(("dataset.", "packages.")):
        return "provenance"
    head = key.split(".", 1)[0]
    if head == "amended":  # an amendment sits with the sealed value it amends
        return "summary"
    if head in ("config", "summary", "env"):
        return head
    return "run"
