"""What a reproduction is, and when a reproduction verdict may be stored.

One rule for every door (``labledger repro`` on an embedded store, the tracking
server's ``POST /repro-verdicts``, any future write core):

- a **reproduction run** is a run with ``job_type = "repro"`` (every run that
  ``labledger repro``'s re-run starts); the one it reproduces is its ``parent_run_id``.
  Reproductions are left out of leaderboards, importance, counts and exports unless
  asked (:func:`without_repro`);
- a **verdict exists only with its reproduction run**: it names that run, and its
  verdict, reason and per-metric table are derived here from the two stored runs, never
  taken from the caller; :func:`checked_verdict` refuses anything else with
  :class:`~labledger.VerdictRefusedError` (400 on the server). Who reproduced is the
  caller's identity (the token's user on a server), recorded as ``by``;
- a run that ended early (crashed, killed, failed) is compared only over the steps it
  recorded: each of its series at its last recorded step, the reproduction's value at
  that same step (:func:`compare_runs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import NotFoundError, VerdictRefusedError

if TYPE_CHECKING:
    from ..query import Node

__all__ = [
    "COMPARED_STEPS",
    "ENDED_EARLY",
    "NOT_REPRODUCED",
    "NOT_REPRODUCIBLE",
    "REPRODUCED",
    "REPRO_JOB_TYPE",
    "STORED_VERDICTS",
    "WITHIN_TOLERANCE",
    "checked_verdict",
    "compare_runs",
    "compare_summaries",
    "ended_early",
    "history_value_at",
    "is_reproduction",
    "judge",
    "overall_verdict",
    "reproduction_failure",
    "without_repro",
]

REPRO_JOB_TYPE = "repro"
# statuses of a run that stopped before its script's end: compared at its recorded steps
ENDED_EARLY = ("crashed", "killed", "failed")
COMPARED_STEPS = "recorded-steps"

REPRODUCED = "reproduced"
WITHIN_TOLERANCE = "reproduced-within-tolerance"
NOT_REPRODUCED = "not-reproduced"
NOT_REPRODUCIBLE = "not-reproducible"
STORED_VERDICTS = (REPRODUCED, WITHIN_TOLERANCE, NOT_REPRODUCED, NOT_REPRODUCIBLE)

# Metric statuses
IDENTICAL = "identical"
WITHIN = "within-tolerance"
DIFFERS = "differs"
MISSING = "missing"
NOT_COMPARED = "not-compared"

ValueAt = Callable[[str, int], Any]


def is_reproduction(run: Mapping[str, Any]) -> bool:
    """Whether ``run`` is a reproduction (made by ``labledger repro``'s re-run)."""
    return run.get("job_type") == REPRO_JOB_TYPE


def without_repro(filter: str | Node | None) -> Node:
    """The tree of ``filter`` and "not a reproduction" (``job_type`` is not ``repro``).

    ``filter`` is parsed on its own, so errors point into the caller's text. A missing
    ``job_type`` counts as "not a reproduction" (the SQL compiler never lets a test be NULL).
    """
    from ..query import And, Compare, Field, Not, parse

    not_repro = Not(Compare(Field("job_type"), "=", REPRO_JOB_TYPE))
    if filter is None or (isinstance(filter, str) and not filter.strip()):
        return not_repro
    tree: Node = parse(filter) if isinstance(filter, str) else filter
    return And((tree, not_repro))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _compare_one(a: Any, b: Any, tolerance: float) -> tuple[str, float | None]:
    if _is_number(a) and _is_number(b):
        fa, fb = float(a), float(b)
        if fa == fb or (math.isnan(fa) and math.isnan(fb)):
            return IDENTICAL, 0.0
        if not (math.isfinite(fa) and math.isfinite(fb)):
            return DIFFERS, None
        rel = abs(fa - fb) / max(abs(fa), abs(fb))
        return (WITHIN if rel <= tolerance else DIFFERS), rel
    return (IDENTICAL, None) if a == b else (DIFFERS, None)


def compare_summaries(
    original: Mapping[str, Any], reproduction: Mapping[str, Any], tolerance: float = 0.0
) -> list[dict[str, Any]]:
    """One row per summary key of the original: ``{key, original, repro, status, rel_diff}``.

    ``status`` is ``identical`` (bit-for-bit equal, NaN equals NaN), ``within-tolerance``
    (relative difference ``|a-b| / max(|a|,|b|)`` at most ``tolerance``), ``differs``, or
    ``missing`` (the reproduction has no such key). ``system/*`` metrics (CPU load, memory)
    describe the machine, not the result, and are left out.
    """
    rows: list[dict[str, Any]] = []
    for key in sorted(original):
        if key.startswith("system/"):
            continue
        a = original[key]
        if key not in reproduction:
            rows.append(
                {"key": key, "original": a, "repro": None, "status": MISSING, "rel_diff": None}
            )
            continue
        b = reproduction[key]
        status, rel = _compare_one(a, b, tolerance)
        rows.append({"key": key, "original": a, "repro": b, "status": status, "rel_diff": rel})
    return rows


def ended_early(run: Mapping[str, Any]) -> bool:
    """Whether ``run`` stopped before its script's end (crashed, killed or failed)."""
    return run.get("status") in ENDED_EARLY


def compare_runs(
    original: Mapping[str, Any],
    reproduction: Mapping[str, Any],
    tolerance: float,
    value_at: ValueAt,
) -> list[dict[str, Any]]:
    """The per-metric table of a reproduction.

    A finished original is compared summary against summary (:func:`compare_summaries`).
    One that ended early (:data:`ENDED_EARLY`) is compared only over the steps it
    recorded: each series at its last recorded step, against the reproduction's value at
    that step (``value_at(key, step)``, None when it has none; the row carries ``step``).
    A value the script set directly (``run.summary[k] = v``, no series) has no step to
    compare at and is ``not-compared``.
    """
    if not ended_early(original):
        return compare_summaries(
            original.get("summary") or {}, reproduction.get("summary") or {}, tolerance
        )
    series: Mapping[str, Any] = original.get("metrics") or {}
    summary: Mapping[str, Any] = original.get("summary") or {}
    rows: list[dict[str, Any]] = []
    for key in sorted(set(series) | set(summary)):
        if key.startswith("system/"):
            continue
        m = series.get(key)
        if not isinstance(m, Mapping) or m.get("last_step") is None:
            rows.append(
                {
                    "key": key,
                    "original": summary.get(key),
                    "repro": None,
                    "status": NOT_COMPARED,
                    "rel_diff": None,
                }
            )
            continue
        step = int(m["last_step"])
        a = m.get("last")
        b = value_at(key, step)
        if b is None:
            status, rel = MISSING, None
        else:
            status, rel = _compare_one(a, b, tolerance)
        rows.append(
            {"key": key, "original": a, "repro": b, "status": status, "rel_diff": rel, "step": step}
        )
    return rows


def overall_verdict(
    metrics: list[dict[str, Any]], *, failure: str | None = None
) -> tuple[str, str | None]:
    """(verdict, reason) from the metric rows; ``failure`` says why the reproduction itself failed."""
    if failure:
        return NOT_REPRODUCED, failure
    compared = [m for m in metrics if m["status"] != NOT_COMPARED]
    if not compared:
        return NOT_REPRODUCIBLE, "the original run has no summary metrics to compare"
    bad = [m["key"] for m in compared if m["status"] in (DIFFERS, MISSING)]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        return NOT_REPRODUCED, f"{len(bad)} of {len(compared)} metrics differ: {shown}"
    if any(m["status"] == WITHIN for m in compared):
        return WITHIN_TOLERANCE, None
    return REPRODUCED, None


def reproduction_failure(
    original: Mapping[str, Any], reproduction: Mapping[str, Any]
) -> str | None:
    """Why the reproduction itself failed: it did not finish where the original did."""
    if original.get("status") == "finished" and reproduction.get("status") != "finished":
        return (
            f"the reproduction {reproduction.get('status')} "
            f"(exit code {reproduction.get('exit_code')})"
        )
    return None


def judge(
    original: Mapping[str, Any],
    reproduction: Mapping[str, Any],
    tolerance: float,
    value_at: ValueAt,
) -> tuple[str, str | None, list[dict[str, Any]]]:
    """(verdict, reason, metric rows) of ``reproduction`` against ``original``."""
    rows = compare_runs(original, reproduction, tolerance, value_at)
    verdict, reason = overall_verdict(rows, failure=reproduction_failure(original, reproduction))
    return verdict, reason, rows


def history_value_at(store: Any, run_id: str) -> ValueAt:
    """``value_at(key, step)`` over ``store.history``: the last value logged at ``step``, else None."""

    def value_at(key: str, step: int) -> Any:
        try:
            h = store.history(run_id, key)
        except (NotFoundError, KeyError):
            return None
        found = None
        for s, v in zip(h.steps.tolist(), h.values.tolist(), strict=True):
            if s == step:
                found = v
            elif s > step:
                break
        return found

    return value_at


def checked_verdict(store: Any, verdict: Mapping[str, Any], *, by: str | None) -> dict[str, Any]:
    """The verdict to store, re-derived from the stored runs; refuse one without its reproduction.

    ``verdict`` holds ``original_run_id``, ``repro_run_id``, ``verdict`` and optionally
    ``tolerance``, ``reason``, ``details``, ``id``, ``created_at``. The reproduction run
    must exist, be a reproduction (``job_type = "repro"``) of the original
    (``parent_run_id``), and the claimed verdict must be the one its stored metrics give;
    the stored ``verdict``, ``reason`` and ``details.metrics`` are the derived ones, and
    ``details.by`` is ``by`` (the caller), whatever the caller sent.
    """
    original_id = str(verdict.get("original_run_id") or "")
    repro_id = verdict.get("repro_run_id")
    if not original_id:
        raise VerdictRefusedError(original_id, "a verdict needs original_run_id")
    if not repro_id:
        raise VerdictRefusedError(
            original_id,
            "a verdict exists only with its reproduction run (repro_run_id); "
            "run `labledger repro` to make one",
        )
    try:
        original = store.get_run(original_id)
        repro = store.get_run(str(repro_id))
    except NotFoundError as exc:
        raise VerdictRefusedError(original_id, f"{exc}") from exc
    if repro["id"] == original["id"]:
        raise VerdictRefusedError(original["id"], "a run cannot reproduce itself")
    if not is_reproduction(repro) or repro.get("parent_run_id") != original["id"]:
        raise VerdictRefusedError(
            original["id"],
            f"run {repro['id'][:8]} is not a reproduction of run {original['id'][:8]} "
            f'(a reproduction has job_type "{REPRO_JOB_TYPE}" and the original as its parent)',
        )
    tol = verdict.get("tolerance")
    tolerance = float(tol) if isinstance(tol, (int, float)) and not isinstance(tol, bool) else 0.0
    if not (math.isfinite(tolerance) and tolerance >= 0):
        tolerance = 0.0
    kind, reason, rows = judge(original, repro, tolerance, history_value_at(store, repro["id"]))
    claimed = verdict.get("verdict")
    if claimed != kind:
        raise VerdictRefusedError(
            original["id"],
            f"the stored runs give {kind!r}, not {claimed!r}" + (f" ({reason})" if reason else ""),
        )
    details = dict(verdict.get("details") or {})
    details["metrics"] = rows
    details["by"] = by
    details["compared"] = COMPARED_STEPS if ended_early(original) else "summary"
    sent = verdict.get("reason")
    if isinstance(sent, str) and reason and sent.startswith(reason):
        reason = sent  # the caller's text adds to the derived reason (what was forced past)
    out = {k: v for k, v in verdict.items() if k in ("id", "created_at")}
    out.update(
        {
            "original_run_id": original["id"],
            "repro_run_id": repro["id"],
            "verdict": kind,
            "reason": reason,
            "tolerance": tolerance,
            "details": details,
        }
    )
    return out
