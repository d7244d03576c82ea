"""Comparing and ranking runs: leaderboard rows, diffs, comparison tables, importance, export."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._values import flatten
from ._compare import compare_runs, diff_runs, leaderboard_row, provenance
from ._export import (
    FORMATS,
    PROGRESS_EVERY,
    PROVENANCE_COLUMNS,
    export_rows,
    latest_verdicts,
    provenance_columns,
    records_to_rows,
    rows_to_frame,
    sql_export_pages,
    sql_export_rows,
    write_pages,
)
from ._importance import (
    SMALL_SAMPLE,
    importance,
    importance_columns,
    plot_importance,
    small_sample_note,
)
from ._leaderboard import ONE_SEED, config_leaderboard
from ._replicates import ReplicateSet, replicate_key, replicate_sets, seed_keys

__all__ = [
    "FORMATS",
    "ONE_SEED",
    "PROVENANCE_COLUMNS",
    "SMALL_SAMPLE",
    "ReplicateSet",
    "compare_runs",
    "config_leaderboard",
    "diff_runs",
    "export_rows",
    "importance",
    "importance_columns",
    "latest_verdicts",
    "leaderboard_row",
    "plot_importance",
    "provenance",
    "provenance_columns",
    "records_to_rows",
    "replicate_key",
    "replicate_sets",
    "rows_to_frame",
    "runs_to_rows",
    "seed_keys",
    "small_sample_note",
    "sql_export_pages",
    "sql_export_rows",
    "write_pages",
]

BASE_COLUMNS = (
    "id",
    "project",
    "name",
    "author",
    "status",
    "created_at",
    "ended_at",
    "runtime_s",
    "seed",
)


def runs_to_rows(
    runs: Sequence[Mapping[str, Any]],
    on_progress: Callable[[int, int], None] | None = None,
    *,
    verdicts: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Flatten runs into one dict per run: base fields, the provenance columns
    (:data:`PROVENANCE_COLUMNS`: commit, dirty, patch digest, dataset digests, replicate
    set, reproduction verdict from ``verdicts``), ``config.*``, ``summary.*``, ``tags``,
    and ``amended.*`` (a summary value amended after the run ended, beside the sealed one).

    ``on_progress(done, total)`` is called as runs are flattened (a progress bar)."""
    rows = []
    for r in runs:
        row = {k: r.get(k) for k in BASE_COLUMNS}
        row.update(provenance_columns(r, verdicts))
        row["tags"] = ",".join(r.get("tags") or [])
        row.update({f"config.{k}": v for k, v in flatten(r.get("config") or {}).items()})
        row.update({f"summary.{k}": v for k, v in (r.get("summary") or {}).items()})
        row.update({f"amended.{k}": a.get("value") for k, a in (r.get("amended") or {}).items()})
        rows.append(row)
        if on_progress is not None and len(rows) % PROGRESS_EVERY == 0:
            on_progress(len(rows), len(runs))
    if on_progress is not None:
        on_progress(len(rows), len(runs))
    return rows
