"""Comparing a reproduction with its original, and the overall verdict.

The rules live in :mod:`labledger.store._repro_rules`, so that ``labledger repro`` and
the store that keeps the verdict (embedded or a tracking server) judge alike.
"""

from __future__ import annotations

from ..store import (
    NOT_REPRODUCED,
    NOT_REPRODUCIBLE,
    REPRODUCED,
    STORED_VERDICTS,
    WITHIN_TOLERANCE,
    compare_runs,
    compare_summaries,
    ended_early,
    history_value_at,
    judge,
    overall_verdict,
)

__all__ = [
    "COULD_NOT_RERUN",
    "NOT_REPRODUCED",
    "NOT_REPRODUCIBLE",
    "REPRODUCED",
    "VERDICTS",
    "WITHIN_TOLERANCE",
    "compare_runs",
    "compare_summaries",
    "ended_early",
    "history_value_at",
    "judge",
    "overall_verdict",
]

VERDICTS = STORED_VERDICTS
# A setup or tool failure (no run recorded by the re-run, a package that would not
# install, a timeout): says nothing about the run, so it is reported but never stored
# and never badges the run.
COULD_NOT_RERUN = "could-not-rerun"
