"""Comparing a reproduction's summary with the original's, and the overall verdict."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "COULD_NOT_RERUN",
    "NOT_REPRODUCED",
    "NOT_REPRODUCIBLE",
    "REPRODUCED",
    "VERDICTS",
    "WITHIN_TOLERANCE",
    "compare_summaries",
    "overall_verdict",
]

REPRODUCED = "reproduced"
WITHIN_TOLERANCE = "reproduced-within-tolerance"
NOT_REPRODUCED = "not-reproduced"
NOT_REPRODUCIBLE = "not-reproducible"
VERDICTS = (REPRODUCED, WITHIN_TOLERANCE, NOT_REPRODUCED, NOT_REPRODUCIBLE)
# A setup or tool failure (no run recorded by the re-run, a package that would not
# install, a timeout): says nothing about the run, so it is reported but never stored
# and never badges the run.
COULD_NOT_RERUN = "could-not-rerun"

# Metric statuses
IDENTICAL = "identical"
WITHIN = "within-tolerance"
DIFFERS = "differs"
MISSING = "missing"


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


def overall_verdict(
    metrics: list[dict[str, Any]], *, failure: str | None = None
) -> tuple[str, str | None]:
    """(verdict, reason) from the metric rows; ``failure`` says why the reproduction itself failed."""
    if failure:
        return NOT_REPRODUCED, failure
    if not metrics:
        return NOT_REPRODUCIBLE, "the original run has no summary metrics to compare"
    bad = [m["key"] for m in metrics if m["status"] in (DIFFERS, MISSING)]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        return NOT_REPRODUCED, f"{len(bad)} of {len(metrics)} metrics differ: {shown}"
    if any(m["status"] == WITHIN for m in metrics):
        return WITHIN_TOLERANCE, None
    return REPRODUCED, None
