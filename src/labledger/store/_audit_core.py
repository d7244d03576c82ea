"""The audit chain's hashing rules, in the standard library only.

One definition of what is hashed and how, shared by the SQL store (``_audit_sql``, on
SQLAlchemy) and the embedded write path (``_lite``, stdlib ``sqlite3``), so a run sealed
by either verifies under the other. See ``_audit_sql`` for what a record is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "GENESIS",
    "JSON_FIELDS",
    "SCALAR_FIELDS",
    "Record",
    "canonical",
    "chain_entry",
    "edit_digest",
    "entry_hash",
    "load_json",
    "metric_digest",
    "record_hash",
    "sha256_hex",
]

GENESIS = "0" * 64
# the run's columns a record hashes: plain values, and JSON documents
SCALAR_FIELDS = (
    "name",
    "author",
    "status",
    "created_at",
    "ended_at",
    "seed",
    "exit_code",
    "error",
    "parent_run_id",
    "notes",
)
JSON_FIELDS = ("config", "env", "summary", "tags", "datasets")


def canonical(value: Any) -> bytes:
    """The one byte form that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_json(value: Any) -> Any:
    """A JSON column value as Python data (decoding it when a driver hands back text)."""
    return json.loads(value) if isinstance(value, str) else value


def entry_hash(row: Mapping[str, Any]) -> str:
    """The hash of one chain entry: it covers the previous entry's hash and its position."""
    return sha256_hex(
        canonical(
            [
                row["prev_sha256"],
                row["project"],
                int(row["seq"]),
                row["run_id"],
                row["kind"],
                row["edit_id"],
                row["record_sha256"],
                row["fields"],
                float(row["created_at"]),
            ]
        )
    )


def record_hash(fields: Mapping[str, str]) -> str:
    return sha256_hex(canonical(dict(fields)))


def chain_entry(
    head: Any,
    *,
    project: str,
    run_id: str,
    kind: str,
    edit_id: str | None,
    fields: dict[str, str],
    now: float,
) -> dict[str, Any]:
    """The ``audit_log`` row that appends ``fields`` (a run's record) after ``head``, the
    project's newest ``(seq, entry_sha256)`` or None; its ``entry_sha256`` included."""
    row: dict[str, Any] = {
        "project": project,
        "seq": 1 if head is None else int(head[0]) + 1,
        "run_id": run_id,
        "kind": kind,
        "edit_id": edit_id,
        "record_sha256": record_hash(fields),
        "fields": fields,
        "prev_sha256": GENESIS if head is None else head[1],
        "created_at": now,
    }
    row["entry_sha256"] = entry_hash(row)
    return row


def edit_digest(row: Mapping[str, Any]) -> str:
    """The digest of one ``run_edits`` row (its ``old``/``new`` as stored)."""
    return sha256_hex(
        canonical(
            [
                row["id"],
                row["run_id"],
                row["field"],
                load_json(row["old"]),
                load_json(row["new"]),
                row["author"],
                float(row["at"]),
            ]
        )
    )


def metric_digest(count: Any, last: Any, last_nan: Any, last_step: Any, lo: Any, hi: Any) -> str:
    """The digest of a series' stored summary (count, last, min, max, last step)."""
    return sha256_hex(canonical([int(count), last, bool(last_nan), int(last_step), lo, hi]))


class Record:
    """One run's record (its field digests), built from its rows as each back end reads
    them: the one place that says what a record hashes and how.

    Feed the ``runs`` row, then any of: its ``run_edits`` rows (ordered by time, id),
    ``metric_summary`` rows, ``metric_chunks`` rows (ordered by key, id), artifact
    versions (ordered by name, version) and the version ids it used (ordered); then
    :meth:`fields`. A series' digest covers its steps, values and timestamps as logged,
    independent of how they are cut into chunks.
    """

    def __init__(self, run: Any) -> None:  # a mapping of the runs row (column -> value)
        f: dict[str, str] = {}
        for c in SCALAR_FIELDS:
            f[c] = sha256_hex(canonical(run[c]))
        for c in JSON_FIELDS:
            f[c] = sha256_hex(canonical(load_json(run[c])))
        self._fields = f
        self._edits: list[str] = []
        self._artifacts: list[list[Any]] = []
        self._uses: list[str] = []
        self._series_key: str | None = None
        self._series: list[Any] = []

    def edit(self, row: Any) -> None:  # a mapping of the run_edits row
        self._edits.append(edit_digest(row))

    def metric(
        self, key: str, count: Any, last: Any, last_nan: Any, last_step: Any, lo: Any, hi: Any
    ) -> None:
        self._fields[f"metric.{key}"] = metric_digest(count, last, last_nan, last_step, lo, hi)

    def chunk(self, key: str, steps: bytes, vals: bytes, ts: bytes) -> None:
        if key != self._series_key:
            self._end_series()
            self._series_key = key
            self._series = [hashlib.sha256(), hashlib.sha256(), hashlib.sha256()]
        self._series[0].update(steps)
        self._series[1].update(vals)
        self._series[2].update(ts)

    def artifact(self, version_id: str, name: str, version: Any, kind: str, sha256: str) -> None:
        self._artifacts.append([version_id, name, int(version), kind, sha256])

    def use(self, version_id: str) -> None:
        self._uses.append(version_id)

    def _end_series(self) -> None:
        if self._series_key is not None:
            digest = sha256_hex(b"".join(h.digest() for h in self._series))
            self._fields[f"series.{self._series_key}"] = digest
            self._series_key = None

    def fields(self) -> dict[str, str]:
        self._end_series()
        f = dict(self._fields)
        f["edits"] = sha256_hex(canonical(self._edits))
        f["artifacts"] = sha256_hex(canonical(self._artifacts))
        f["used_artifacts"] = sha256_hex(canonical(self._uses))
        return f
