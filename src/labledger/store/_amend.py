"""Sealed summary values and their amendments.

What a run logged is sealed when it ends (``SEALED_STATUSES``): its ``runs.summary``
column and its series never change afterwards. A later change of a summary value is an
*amendment*: a ``run_edits`` row for ``summary.KEY`` whose ``new`` document is marked
``{"v": value, "amend": true, "reason": ...}``. The column keeps the sealed value, so the
audit record's ``summary`` digest stays what was sealed and every amendment is in the
record's ``edits`` digest (``audit verify`` passes, and nothing is lost).

A run dict (``get_run``, ``list_runs``) shows the sealed summary and carries
``amended: {key: {sealed, value, by, at, reason}}`` from the newest amendment of each
key (an amendment back to the sealed value is no amendment). :func:`apply_amended`
gives the summary with the amended values, for readers asked for them (``--amended``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "AMENDED_FIELDS",
    "AMEND_MARK",
    "amended_from_edits",
    "apply_amended",
    "is_amendment",
]

AMEND_MARK = "amend"  # the key of an edit's ``new`` document that marks an amendment
AMENDED_FIELDS = ("sealed", "value", "by", "at", "reason")


def is_amendment(new_doc: Any) -> bool:
    """Is this stored ``run_edits.new`` document (already JSON-decoded) an amendment?"""
    return isinstance(new_doc, Mapping) and bool(new_doc.get(AMEND_MARK))


def amended_from_edits(
    summary: Mapping[str, Any], edits: Iterable[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``{key: {sealed, value, by, at, reason}}`` from a run's edit events (``_edit_dict``
    form, oldest first) and its sealed ``summary``. Only amendments count; the newest per
    key wins; a key amended back to its sealed value is left out."""
    newest: dict[str, Mapping[str, Any]] = {}
    for e in edits:
        field = str(e.get("field") or "")
        if e.get("amendment") and field.startswith("summary."):
            newest[field[len("summary.") :]] = e
    out: dict[str, dict[str, Any]] = {}
    for key, e in sorted(newest.items()):
        sealed = summary.get(key)
        value = e.get("new")
        if _same(sealed, value):
            continue
        out[key] = {
            "sealed": sealed,
            "value": value,
            "by": e.get("author"),
            "at": e.get("at"),
            "reason": e.get("reason"),
        }
    return out


def apply_amended(
    summary: Mapping[str, Any], amended: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, Any]:
    """``summary`` with each amended key's amended value (a removed one dropped)."""
    out = dict(summary)
    for key, a in (amended or {}).items():
        if a.get("value") is None:
            out.pop(key, None)
        else:
            out[key] = a["value"]
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:  # NaN
        return True
    return (type(a) is type(b) and bool(a == b)) or (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )
