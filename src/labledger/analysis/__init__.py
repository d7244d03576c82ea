"""Comparing and ranking runs."""

from __future__ import annotations

from typing import Any

from .._values import flatten

__all__ = ["runs_to_rows"]

BASE_COLUMNS = ("id", "project", "name", "status", "created_at", "ended_at", "runtime_s", "seed")


def runs_to_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten runs into one dict per run: base fields, ``config.*``, ``summary.*``, ``tags``."""
    rows = []
    for r in runs:
        row = {k: r.get(k) for k in BASE_COLUMNS}
        row["tags"] = ",".join(r.get("tags") or [])
        row.update({f"config.{k}": v for k, v in flatten(r.get("config") or {}).items()})
        row.update({f"summary.{k}": v for k, v in (r.get("summary") or {}).items()})
        rows.append(row)
    return rows
