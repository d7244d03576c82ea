"""HTML tables for notebooks: ``_repr_html_`` of ``Run`` and of ``Ledger`` results.

Everything shown is user data (names, config values, tags), so every piece is passed
through :func:`html.escape`; no markup is ever built from a value.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ._values import flatten

__all__ = ["RunDict", "RunTable", "run_html", "runs_html"]

MAX_ROWS = 50
MAX_KEYS = 30
_STYLE = "border-collapse:collapse;font-size:12px"
_CELL = "style='padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top'"


def _e(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, default=str, sort_keys=True)
    elif value is None:
        text = ""
    else:
        text = str(value)
    if len(text) > 200:
        text = text[:199] + "…"
    return html.escape(text, quote=True)


def _time(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _kv_table(title: str, data: Mapping[str, Any]) -> str:
    flat = flatten(dict(data))
    if not flat:
        return ""
    rows = [
        f"<tr><th {_CELL}>{_e(k)}</th><td {_CELL}>{_e(v)}</td></tr>"
        for k, v in list(flat.items())[:MAX_KEYS]
    ]
    more = len(flat) - MAX_KEYS
    if more > 0:
        rows.append(f"<tr><td {_CELL} colspan='2'>… {more} more</td></tr>")
    return f"<b>{_e(title)}</b><table style='{_STYLE}'>{''.join(rows)}</table>"


def run_html(run: Mapping[str, Any]) -> str:
    """One run (a dict of ``show --json`` fields) as an HTML block."""
    head = [
        ("id", run.get("id")),
        ("project", run.get("project")),
        ("name", run.get("name")),
        ("status", run.get("status")),
        ("created", _time(run.get("created_at"))),
        ("group", run.get("group")),
        ("job type", run.get("job_type")),
        ("parent", run.get("parent_run_id")),
        ("tags", ", ".join(map(str, run.get("tags") or [])) or None),
    ]
    cells = "".join(
        f"<tr><th {_CELL}>{_e(k)}</th><td {_CELL}>{_e(v)}</td></tr>"
        for k, v in head
        if v not in (None, "")
    )
    parts = [
        "<div class='labledger-run'>",
        f"<table style='{_STYLE}'>{cells}</table>",
        _kv_table("config", run.get("config") or {}),
        _kv_table("summary", run.get("summary") or {}),
        *(
            [
                _kv_table(
                    "amended after the run ended (the summary above is sealed)",
                    {
                        k: f"{a.get('value')} (sealed {a.get('sealed')}, by {a.get('by')}"
                        + (f": {a['reason']})" if a.get("reason") else ")")
                        for k, a in run["amended"].items()
                    },
                )
            ]
            if run.get("amended")
            else []
        ),
        "</div>",
    ]
    return "".join(parts)


def runs_html(runs: Iterable[Mapping[str, Any]]) -> str:
    """Runs as one HTML table: id, project, name, status, created, then summary columns."""
    runs = list(runs)
    if not runs:
        return "<p>no runs</p>"
    keys: list[str] = []
    for r in runs[:MAX_ROWS]:
        for k in r.get("summary") or {}:
            if k not in keys and not str(k).startswith("system/"):
                keys.append(k)
    keys = keys[:8]
    cols = ["id", "project", "name", "status", "group", "created", *(f"summary.{k}" for k in keys)]
    head = "".join(f"<th {_CELL}>{_e(c)}</th>" for c in cols)
    body = []
    for r in runs[:MAX_ROWS]:
        summary = r.get("summary") or {}
        values = [
            str(r.get("id", ""))[:8],
            r.get("project"),
            r.get("name"),
            r.get("status"),
            r.get("group"),
            _time(r.get("created_at")),
            *(_marked(summary.get(k), (r.get("amended") or {}).get(k)) for k in keys),
        ]
        body.append("<tr>" + "".join(f"<td {_CELL}>{_e(v)}</td>" for v in values) + "</tr>")
    more = len(runs) - MAX_ROWS
    tail = f"<p>… {more} more runs</p>" if more > 0 else ""
    return (
        f"<table class='labledger-runs' style='{_STYLE}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>{tail}"
    )


def _marked(value: Any, amendment: Mapping[str, Any] | None) -> Any:
    """A sealed summary value, with its amendment (made after the run ended) beside it."""
    return value if not amendment else f"{value} (amended: {amendment.get('value')})"


class RunDict(dict[str, Any]):
    """A run as returned by ``Ledger.get``: a plain dict that renders as HTML in Jupyter."""

    def _repr_html_(self) -> str:
        return run_html(self)


class RunTable(list[Mapping[str, Any]]):
    """Runs as returned by ``Ledger.runs``: a plain list that renders as an HTML table."""

    def _repr_html_(self) -> str:
        return runs_html(self)
