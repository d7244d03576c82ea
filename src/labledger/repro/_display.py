"""How stored verdicts appear on runs (``show``, ``ls``, the dashboard)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["BADGES", "STYLES", "badge", "render_repro_lines", "repro_field", "repro_fields"]

BADGES = {
    "reproduced": "✓ reproduced",
    "reproduced-within-tolerance": "≈ within tolerance",
    "not-reproduced": "✗ not reproduced",
    "not-reproducible": "! not reproducible",
}
STYLES = {
    "reproduced": "green",
    "reproduced-within-tolerance": "green",
    "not-reproduced": "red",
    "not-reproducible": "yellow",
}


def badge(verdict: str | None) -> str:
    return BADGES.get(verdict or "", verdict or "")


def _empty() -> dict[str, Any]:
    return {"verdict": None, "role": None, "reproduction_of": None, "verdicts": []}


def repro_fields(store: Any, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """For each run id: ``{verdict, role, reproduction_of, verdicts[]}`` (the ``repro`` field of ``show --json``).

    ``verdict`` is the newest verdict the run takes part in; ``role`` says whether the
    run was the ``original`` or the ``reproduction`` in it. Stores without verdict
    support (older servers) give empty fields.
    """
    out = {rid: _empty() for rid in run_ids}
    from ..store import ReproVerdicts

    if not isinstance(store, ReproVerdicts) or not run_ids:
        return out
    for v in store.repro_verdicts(list(run_ids)):  # newest first
        for rid, role in (
            (v["original_run_id"], "original"),
            (v.get("repro_run_id"), "reproduction"),
        ):
            if rid in out:
                f = out[rid]
                if not f["verdicts"]:
                    f["verdict"], f["role"] = v["verdict"], role
                if role == "reproduction":
                    f["reproduction_of"] = v["original_run_id"]
                f["verdicts"].append(v)
    return out


def repro_field(store: Any, run_id: str) -> dict[str, Any]:
    return repro_fields(store, [run_id])[run_id]


def render_repro_lines(run_id: str, field: dict[str, Any], limit: int = 5) -> list[str]:
    """Readable lines for ``labledger show``: one per verdict, newest first."""
    import datetime as dt

    lines = []
    for v in field.get("verdicts", [])[:limit]:
        when = dt.datetime.fromtimestamp(v["created_at"]).strftime("%Y-%m-%d %H:%M")
        if v["original_run_id"] == run_id:
            other = (
                f"by run {v['repro_run_id'][:8]}" if v.get("repro_run_id") else "(nothing was run)"
            )
            text = f"{when}  {badge(v['verdict'])} {other}"
        else:
            text = f"{when}  this run reproduces {v['original_run_id'][:8]}: {badge(v['verdict'])}"
        if v.get("reason"):
            text += f": {v['reason']}"
        lines.append(text)
    more = len(field.get("verdicts", [])) - limit
    if more > 0:
        lines.append(f"... and {more} earlier verdict(s) (labledger show --json)")
    return lines
