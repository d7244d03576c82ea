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
    "canonical",
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
