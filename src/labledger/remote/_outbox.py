"""The outbox: one record format for every write a store has not taken yet.

A record is what :class:`~labledger.remote.http.HttpStore` sends, kept as one fsynced
JSON file in a session folder of the spool root (:mod:`.spool`)::

    {"v": 1, "kind": "run" | "batch" | "blob" | "artifact", "uri": <store URI>,
     "method": "POST", "path": "/api/v1/runs/<id>/batches", "run_id": <id>,
     "body": <the run record, or the batch in the wire format of ``store/_wire.py``>}

Two writers share it: ``init()`` (the run record, before it returns, when the run
could not be put in the store at once) and the tracking writer thread (batches taken
while the store is not open or not answering, artifacts the server could not take, and
everything it spills when the store stops accepting writes); stores keep nothing. ``labledger sync``, and the
next process that opens the same store, replay the sessions whose owner is gone: records
for an ``http(s)`` URI through the server's ``/replay``, the others straight into their
SQLite or PostgreSQL store (:func:`replay_local`).

Only the standard library is imported here: ``init()`` writes the run record.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._values import encode_json

if TYPE_CHECKING:
    from pathlib import Path

    from ..store import Batch
    from .spool import SpoolEntry

__all__ = [
    "batch_record",
    "batch_wire",
    "blob_record",
    "left_message",
    "outbox_record",
    "replay_local",
    "run_record",
]

_API = "/api/v1"


def outbox_record(
    kind: str, uri: str, method: str, path: str, run_id: str | None, body: Any
) -> dict[str, Any]:
    """One outbox record (the format of the module docstring), any kind."""
    return {
        "v": 1,
        "kind": kind,
        "uri": uri,
        "method": method,
        "path": path,
        "run_id": run_id,
        "body": body,
    }


def run_record(uri: str, run: dict[str, Any]) -> dict[str, Any]:
    """The outbox record that creates ``run`` in the store at ``uri``."""
    return outbox_record("run", uri, "POST", f"{_API}/runs", run["id"], encode_json(dict(run)))


def blob_record(uri: str, data: bytes) -> dict[str, Any]:
    """The outbox record that stores ``data`` (a captured diff, a notebook) on the server."""
    body = base64.b64encode(data).decode("ascii")
    return outbox_record("blob", uri, "PUT", f"{_API}/blobs", None, body)


def _b64(values: Any, code: str) -> str:
    if isinstance(values, (list, tuple)):
        arr = array(code, values)
        if sys.byteorder != "little":
            arr.byteswap()
        return base64.b64encode(arr.tobytes()).decode("ascii")
    import numpy as np  # an array already: numpy is loaded

    dtype = "<i8" if code == "q" else "<f8"
    return base64.b64encode(np.ascontiguousarray(np.asarray(values, dtype=dtype)).tobytes()).decode(
        "ascii"
    )


def batch_wire(batch: Batch) -> dict[str, Any]:
    """``store._wire.batch_to_wire`` for lists as well as arrays, without importing numpy
    (rich results too: their stored bytes as base64, as ``store._wire`` sends them)."""
    wire: dict[str, Any] = {
        "id": batch.id,
        "heartbeat": batch.heartbeat,
        "run_update": encode_json(batch.run_update),
        "metrics": {
            key: {"steps": _b64(st, "q"), "values": _b64(va, "d"), "timestamps": _b64(ts, "d")}
            for key, (st, va, ts) in batch.metrics.items()
        },
    }
    if batch.media:
        wire["media"] = [
            {
                "key": m.key,
                "step": m.step,
                "seq": m.seq,
                "kind": m.kind,
                "data": base64.b64encode(m.data).decode("ascii"),
                "meta": encode_json(m.meta),
                "caption": m.caption,
                "ts": m.ts,
            }
            for m in batch.media
        ]
    return wire


def batch_record(uri: str, batch: Batch) -> dict[str, Any]:
    """The outbox record that writes ``batch`` into the store at ``uri``."""
    path = f"{_API}/runs/{batch.run_id}/batches"
    return outbox_record("batch", uri, "POST", path, batch.run_id, batch_wire(batch))


def replay_local(entries: Sequence[SpoolEntry]) -> tuple[int, int, int, str, list[str]]:
    """Write outbox records meant for SQL stores into them, in order.

    Returns (written, rejected, left, reason, refusals); stops at the first store that
    still cannot be written. Also reads the records of the older ``<spool>-local`` spill
    (``{"kind", "uri", "run"}`` / ``{"kind", "uri", "run_id", "batch"}``).
    """
    from .._exceptions import NotFoundError, RunFinishedError, UsageError
    from .._values import decode_json
    from ..store import batch_from_wire, open_store
    from .spool import reject

    written = rejected = 0
    refusals: list[str] = []
    stores: dict[str, Any] = {}
    try:
        for i, entry in enumerate(entries):
            rec = entry.record
            uri = str(rec.get("uri") or "")
            try:
                store: Any = stores.get(uri)
                if store is None:
                    store = stores[uri] = open_store(uri)
                kind = rec.get("kind")
                if kind == "run":
                    run = rec["body"] if "body" in rec else rec["run"]
                    try:
                        store.resolve_run_id(run["id"])
                    except NotFoundError:
                        store.create_run(decode_json(run))
                elif kind == "batch":
                    body = rec["body"] if "body" in rec else rec["batch"]
                    batch = batch_from_wire(str(rec["run_id"]), body)
                    # points kept before finish() may reach the store after the final
                    # status did: admitted into the ended run (a "late" audit entry)
                    store.write_batch(batch, late=True)
                else:
                    raise UsageError(f"unknown outbox record kind {kind!r} for {uri}")
            except (UsageError, RunFinishedError, KeyError, TypeError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                reject(entry.path, reason)
                rejected += 1
                refusals.append(f"{rec.get('kind')} ({entry.path.name}): {reason}")
                continue
            except Exception as exc:  # the store is still unavailable: keep the rest
                left = len(entries) - i
                return written, rejected, left, f"{uri}: {type(exc).__name__}: {exc}", refusals
            entry.path.unlink(missing_ok=True)
            written += 1
    finally:
        for st in stores.values():
            st.close()
    return written, rejected, 0, "", refusals


def left_message(run_id: str, uri: str, session: Path, seconds: float) -> str:
    """The one warning a run's end gives when its server took nothing from the outbox for
    ``seconds``: what stays in ``session`` (requests by kind, artifacts by name) and how
    to upload it."""
    from ._pending_artifacts import describe_artifact
    from .spool import read_entries

    entries = read_entries(session)
    requests = [e for e in entries if e.kind != "artifact"]
    arts = [describe_artifact(e.record) for e in entries if e.kind == "artifact"]
    parts = []
    if requests:
        kinds: dict[str, int] = {}
        for e in requests:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        order = sorted(kinds.items(), key=lambda kv: (kv[0] != "run", kv[0]))
        parts.append(
            f"{len(requests)} request(s) (" + ", ".join(f"{n} {k}" for k, n in order) + ")"
        )
    if arts:
        more = f" and {len(arts) - 5} more" if len(arts) > 5 else ""
        parts.append(f"{len(arts)} artifact(s): {', '.join(arts[:5])}{more}")
    what = " and ".join(parts) or "its last writes"
    files = (
        "; the artifact files are not copied (unless small): keep them, unchanged, until then"
        if arts
        else ""
    )
    return (
        f"labledger: run {run_id[:8]} finished but {uri} took nothing from the spool "
        f"for {seconds:.0f}s: {what} stay in the spool {session}. "
        f"Run `labledger sync` once the server is up to upload them{files}"
    )
