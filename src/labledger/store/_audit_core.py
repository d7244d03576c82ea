"""The audit chain's hashing rules, in the standard library only.

One definition of what is hashed and how, shared by the SQL store (``_audit_sql``, on
SQLAlchemy) and the embedded write path (``_lite``, stdlib ``sqlite3``), so a run sealed
by either verifies under the other. See ``_audit_sql`` for what a record is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "EDITABLE_COLUMNS",
    "FORMAT",
    "GENESIS",
    "JSON_FIELDS",
    "SCALAR_FIELDS",
    "Record",
    "artifact_field",
    "canonical",
    "chain_entry",
    "edit_digest",
    "entry_hash",
    "load_json",
    "metric_digest",
    "prefix_digests",
    "record_format",
    "record_hash",
    "series_digest",
    "sha256_hex",
    "transition_problems",
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
# the record format a seal writes now: 1 (until 2026-12) hashed the artifact versions'
# manifest digests only; 2 adds the manifest itself (``artifact.NAME:vN``: every file's
# path, sha256 and size), each series' point count (``points.KEY``) and ``format``
FORMAT = 2
# the run columns an edit event may change once a run is sealed (its field's first part:
# ``summary.acc`` -> summary, ``env.mlflow`` -> env)
EDITABLE_COLUMNS = frozenset({"notes", "tags", "summary", "env"})


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


def record_format(fields: Mapping[str, str]) -> int:
    """The format a stored record was hashed in (1 when it says none)."""
    return int(fields.get("format", "1"))


def artifact_field(name: str, version: Any) -> str:
    """The record field of one artifact version's manifest (format 2)."""
    return f"artifact.{name}:v{int(version)}"


def series_digest(steps: Any, vals: Any, ts: Any) -> str:
    """A series' digest from its three running sha256 objects (steps, values, timestamps)."""
    return sha256_hex(steps.digest() + vals.digest() + ts.digest())


class Record:
    """One run's record (its field digests), built from its rows as each back end reads
    them: the one place that says what a record hashes and how.

    Feed the ``runs`` row, then any of: its ``run_edits`` rows (ordered by time, id),
    ``metric_summary`` rows, ``metric_chunks`` rows (ordered by key, id), artifact
    versions (ordered by name, version) and the version ids it used (ordered); then
    :meth:`fields`. A series' digest covers its steps, values and timestamps as logged,
    independent of how they are cut into chunks.
    """

    def __init__(self, run: Any, fmt: int = FORMAT) -> None:
        # run: a mapping of the runs row (column -> value); fmt: the record format to hash
        self.format = fmt
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
        self._points = 0
        self._files: dict[str, list[list[Any]]] = {}

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
            self._points = 0
        self._points += len(steps) // 8
        self._series[0].update(steps)
        self._series[1].update(vals)
        self._series[2].update(ts)

    def artifact(self, version_id: str, name: str, version: Any, kind: str, sha256: str) -> None:
        self._artifacts.append([version_id, name, int(version), kind, sha256])

    def files(self, rows: Iterable[Any]) -> None:
        """``artifact_files`` rows ``(version_id, path, sha256, size)`` of versions fed to
        :meth:`artifact`, in any order."""
        files = self._files
        for vid, path, sha, size in rows:
            got = files.get(vid)
            if got is None:
                got = files[vid] = []
            got.append([path, sha, int(size)])

    def use(self, version_id: str) -> None:
        self._uses.append(version_id)

    def _end_series(self) -> None:
        if self._series_key is not None:
            self._fields[f"series.{self._series_key}"] = series_digest(*self._series)
            if self.format >= 2:
                self._fields[f"points.{self._series_key}"] = str(self._points)
            self._series_key = None

    def fields(self) -> dict[str, str]:
        self._end_series()
        f = dict(self._fields)
        f["edits"] = sha256_hex(canonical(self._edits))
        f["artifacts"] = sha256_hex(canonical(self._artifacts))
        f["used_artifacts"] = sha256_hex(canonical(self._uses))
        if self.format >= 2:
            f["format"] = str(self.format)
            for vid, name, version, kind, sha in self._artifacts:
                files = sorted(self._files.get(vid, []))
                f[artifact_field(name, version)] = sha256_hex(canonical([vid, kind, sha, files]))
        return f


def prefix_digests(
    chunks: Iterable[tuple[str, bytes, bytes, bytes]], wanted: Mapping[str, Iterable[int]]
) -> dict[tuple[str, int], str]:
    """The digest each series had when it held its first ``n`` points, for every ``n`` in
    ``wanted[key]``: a series only grows at its end (chunks read in id order keep the logged
    order, compaction included), so an older record's ``series.KEY`` is the digest of a
    prefix of the points stored now. ``chunks``: ``(key, steps, vals, ts)`` ordered by key, id."""
    out: dict[tuple[str, int], str] = {}
    key: str | None = None
    hs: list[Any] = []
    done = 0
    todo: list[int] = []
    for k, steps, vals, ts in chunks:
        if k != key:
            key, done = k, 0
            hs = [hashlib.sha256(), hashlib.sha256(), hashlib.sha256()]
            todo = sorted(set(wanted.get(k, ())))
            if 0 in todo:
                out[(k, 0)] = series_digest(*hs)
        if not todo:
            continue
        m = len(steps) // 8
        for n in todo:
            if done < n <= done + m:
                cut = (n - done) * 8
                part = [h.copy() for h in hs]
                for h, b in zip(part, (steps, vals, ts), strict=True):
                    h.update(b[:cut])
                out[(k, n)] = series_digest(*part)
        for h, b in zip(hs, (steps, vals, ts), strict=True):
            h.update(b)
        done += m
    return out


# what an entry of each kind may change in a sealed run's record, field by field
_LATE = ("series.", "metric.", "points.")


def _column(field: str) -> str:
    return field.split(".", 1)[0]


def transition_problems(
    prev: Mapping[str, str],
    new: Mapping[str, str],
    kind: str,
    *,
    edited: frozenset[str] = frozenset(),
    imported: bool = False,
) -> list[tuple[str, str]]:
    """``[(field, message)]`` for what the entry ``new`` of kind ``kind`` changed in a run's
    record that such an entry may not change, against the run's previous entry ``prev``.

    ``edit``: the fields named by the edit events it records (``edited``: their run columns)
    and ``edits``. ``late``: points logged before the end (``series.``, ``metric.``,
    ``points.``) and new artifact versions (added, never changed). ``delete``: artifact
    versions removed (never changed or added). A run recorded already ended (``imported``)
    takes any ``late`` change. ``seal`` and ``import`` only begin a run's history.
    """
    if kind in ("seal", "import"):
        return [("audit_log", f"a second {kind!r} entry for a run that was sealed before")]
    upgraded = record_format(prev) < 2 <= record_format(new)
    out: list[tuple[str, str]] = []
    for field in sorted(set(prev) | set(new)):
        old, cur = prev.get(field), new.get(field)
        if old == cur:
            continue
        if (
            old is None
            and upgraded
            and (field == "format" or field.startswith(("artifact.", "points.")))
        ):
            continue  # first record in format 2 after a format 1 one
        art = field == "artifacts" or field.startswith("artifact.")
        if kind == "edit":
            ok = field == "edits" or _column(field) in (edited & EDITABLE_COLUMNS)
        elif kind == "late":
            ok = imported or (art and old is None) or field == "artifacts"
            if field.startswith(_LATE) and not ok:
                # a metric's summary moves only with new points of its series
                key = field.split(".", 1)[1]
                ok = field.startswith("series.") or prev.get(f"series.{key}") != new.get(
                    f"series.{key}"
                )
        elif kind == "delete":
            ok = (art and cur is None) or field in ("artifacts", "used_artifacts")
        else:
            ok = False
        if not ok:
            how = "removed" if cur is None else "added" if old is None else "changed"
            out.append((field, f"a {kind!r} entry {how} {field}, which was sealed"))
    return out
