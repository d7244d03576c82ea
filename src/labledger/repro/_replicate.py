"""``labledger replicate RUN --seeds K``: the same code, data and config, K new seeds.

The reproduction machinery (:func:`labledger.repro.plan_repro`: the recorded code checked
out with its patch, the datasets found by content, the recorded command) runs the
command K more times, each with a seed the run's replicate set has not used yet
(``LABLEDGER_SEED_OVERRIDE``, which ``init()`` and ``seed_everything()`` obey, and a
``--seed N`` style argument rewritten). The new runs are not reproductions
(``job_type`` stays the script's own): they are new draws that join the replicate set,
so a claimed winner can be checked against seed noise before anyone quotes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import ReproError, UsageError
from ..store import is_reproduction
from ._code import prepare_code, remove_code
from ._core import ReproPlan, _child_env, _place_data, plan_repro

__all__ = ["ReplicateResult", "new_seeds", "replicate", "rewrite_seed_args"]

_NO_SEED = "the original run recorded no seed"


@dataclass
class ReplicateResult:
    plan: ReproPlan
    seeds: list[int]
    runs: list[str] = field(default_factory=list)  # new run ids, in seed order
    failed: list[dict[str, Any]] = field(default_factory=list)  # {seed, exit_code, reason}
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and len(self.runs) == len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "original_run_id": self.plan.run["id"],
            "seeds": self.seeds,
            "runs": self.runs,
            "failed": self.failed,
            "notes": self.notes,
        }


def new_seeds(used: Sequence[Any], k: int) -> list[int]:
    """The ``k`` smallest non-negative seeds not in ``used`` (predictable, never a repeat)."""
    taken = {int(s) for s in used if isinstance(s, int) and not isinstance(s, bool)}
    out: list[int] = []
    s = 0
    while len(out) < k:
        if s not in taken:
            out.append(s)
        s += 1
    return out


def rewrite_seed_args(args: Sequence[str], seed: int, keys: Sequence[str]) -> list[str]:
    """``args`` with the value of every ``--KEY N`` / ``--KEY=N`` seed argument set to
    ``seed`` (KEY one of the seed keys, ``-`` and ``_`` alike)."""
    names = {k.replace("_", "-") for k in keys}
    out = list(args)
    for i, a in enumerate(out):
        if not a.startswith("--"):
            continue
        name, eq, _ = a[2:].partition("=")
        if name.replace("_", "-").lower() not in names:
            continue
        if eq:
            out[i] = f"--{name}={seed}"
        elif i + 1 < len(out) and out[i + 1].lstrip("-").isdigit():
            out[i + 1] = str(seed)
    return out


def _new_run(store: Any, project: str, since: float, known: set[str]) -> dict[str, Any] | None:
    found = [
        r
        for r in store.list_runs(project=project, limit=200)
        if r["id"] not in known and r["created_at"] >= since - 1.0 and not is_reproduction(r)
    ]
    found.sort(key=lambda r: r["created_at"])
    return found[0] if found else None


def replicate(
    store: Any,
    ref: str,
    seeds: int,
    *,
    env_mode: str = "current",
    force: bool = False,
    timeout: float | None = None,
    data_dirs: Sequence[str | os.PathLike[str]] = (),
    echo: Callable[[str], None] = lambda _m: None,
    on_progress: Callable[[int, int], None] | None = None,
    stdout: Any = None,
) -> ReplicateResult:
    """Re-run run ``ref``'s recorded command ``seeds`` times with new seeds (module doc)."""
    from ..analysis import replicate_sets, seed_keys

    if seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {seeds}")
    if env_mode != "current":
        raise UsageError("replicate runs in the current environment (--env current)")
    plan = plan_repro(store, ref, env_mode=env_mode, data_dirs=data_dirs)
    # a new seed is the point: the original's own seed is not needed
    plan.blockers = [b for b in plan.blockers if not b.startswith(_NO_SEED)]
    original = plan.run
    members = [
        r
        for s in replicate_sets(
            [r for r in store.list_runs(project=original["project"]) if not is_reproduction(r)]
        )
        if original["id"] in s.run_ids
        for r in s.runs
    ]
    chosen = new_seeds([r.get("seed") for r in members] or [original.get("seed")], seeds)
    result = ReplicateResult(plan=plan, seeds=chosen)
    for line in plan.lines():
        if not line.startswith("seed:"):
            echo(line)
    echo(f"new seeds: {', '.join(map(str, chosen))}")
    stop = plan.fatal + ([] if force else plan.blockers)
    if stop:
        raise ReproError("plan", "; ".join(stop))
    made = False
    known = {r["id"] for r in store.list_runs(project=original["project"], limit=200)}
    try:
        result.notes += prepare_code(plan.code, plan.checkout, store.get_blob)
        made = True
        result.notes += _place_data(plan)
        cwd = plan.checkout / plan.command.rel_cwd
        if not cwd.is_dir():
            raise ReproError(
                "run",
                f"the recorded working directory {plan.command.rel_cwd} is not in the checkout",
            )
        base_args = list(plan.command.args)
        keys = seed_keys()
        for i, seed in enumerate(chosen):
            if on_progress is not None:
                on_progress(i, len(chosen))
            plan.command.args = rewrite_seed_args(base_args, seed, keys)
            env = _child_env(plan, None)
            for k in ("LABLEDGER_PARENT_RUN", "LABLEDGER_REPRO_SEED", "LABLEDGER_REPRO_CONFIG"):
                env.pop(k, None)  # not a reproduction: a new draw
            env["LABLEDGER_SEED_OVERRIDE"] = env["PYTHONHASHSEED"] = str(seed)
            if original.get("group"):
                env["LABLEDGER_GROUP"] = str(original["group"])
            argv = plan.command.argv(sys.executable, plan.checkout)
            echo(f"seed {seed}: " + " ".join(argv))
            t0 = time.time()
            try:
                proc = subprocess.run(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdout=stdout,
                    stderr=None if stdout is None else subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
                code: int | None = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
            new = _new_run(store, original["project"], t0, known)
            if new is None or code != 0:
                why = "stopped by the timeout" if code is None else f"exit code {code}"
                result.failed.append(
                    {"seed": seed, "exit_code": code, "reason": why, "run": new and new["id"]}
                )
            if new is not None:
                known.add(new["id"])
                if code == 0:
                    result.runs.append(new["id"])
        if on_progress is not None:
            on_progress(len(chosen), len(chosen))
        return result
    finally:
        if made and not plan.keep_checkout:
            remove_code(plan.code, plan.checkout)
