"""Reproduce and verify a run: ``labledger repro``.

:func:`reproduce` recreates the recorded code (git checkout + uncommitted patch, or the
script snapshot) in a new directory, checks the environment (drift report, or a fresh
virtual environment with the recorded package versions), re-checks every dataset
fingerprint, re-runs the recorded command with the recorded seed, and compares each
summary metric with the original. The verdict is stored, linked to both runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from ._display import STYLES, badge, render_repro_lines, repro_field, repro_fields

if TYPE_CHECKING:
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

# Loaded on first use, name -> submodule: the run and ledger views need only ``_display``;
# reproducing (subprocess, tempfile, virtual environments) is loaded when asked for.
_LAZY: dict[str, str] = {
    "COULD_NOT_RERUN": "_verdict",
    "NOT_REPRODUCED": "_verdict",
    "NOT_REPRODUCIBLE": "_verdict",
    "REPRODUCED": "_verdict",
    "ReplicateResult": "_replicate",
    "ReproPlan": "_core",
    "ReproResult": "_core",
    "VERDICTS": "_verdict",
    "WITHIN_TOLERANCE": "_verdict",
    "compare_summaries": "_verdict",
    "overall_verdict": "_verdict",
    "plan_repro": "_core",
    "replicate": "_replicate",
    "reproduce": "_core",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "COULD_NOT_RERUN",
    "NOT_REPRODUCED",
    "NOT_REPRODUCIBLE",
    "REPRODUCED",
    "STYLES",
    "VERDICTS",
    "WITHIN_TOLERANCE",
    "ReplicateResult",
    "ReproPlan",
    "ReproResult",
    "badge",
    "compare_summaries",
    "overall_verdict",
    "plan_repro",
    "render_repro_lines",
    "replicate",
    "repro_field",
    "repro_fields",
    "reproduce",
]
