"""Reproduce and verify a run: ``labledger repro``.

:func:`reproduce` recreates the recorded code (git checkout + uncommitted patch, or the
script snapshot) in a new directory, checks the environment (drift report, or a fresh
virtual environment with the recorded package versions), re-checks every dataset
fingerprint, re-runs the recorded command with the recorded seed, and compares each
summary metric with the original. The verdict is stored, linked to both runs.
"""

from __future__ import annotations

from ._core import ReproPlan, ReproResult, plan_repro, reproduce
from ._replicate import ReplicateResult, replicate
from ._verdict import (
    COULD_NOT_RERUN,
    NOT_REPRODUCED,
    NOT_REPRODUCIBLE,
    REPRODUCED,
    VERDICTS,
    WITHIN_TOLERANCE,
    compare_summaries,
    overall_verdict,
)

__all__ = [
    "COULD_NOT_RERUN",
    "NOT_REPRODUCED",
    "NOT_REPRODUCIBLE",
    "REPRODUCED",
    "VERDICTS",
    "WITHIN_TOLERANCE",
    "ReplicateResult",
    "ReproPlan",
    "ReproResult",
    "compare_summaries",
    "overall_verdict",
    "plan_repro",
    "replicate",
    "reproduce",
]
