"""Spill-to-disk for runs whose SQL store stops accepting writes.

The HTTP client spools requests a server refuses (``remote/spool.py``). A run writing
straight to SQLite or PostgreSQL can lose its store too (a network outage to
PostgreSQL, a database locked for minutes, a full disk elsewhere). Rather than drop
points to keep memory bounded, or lose them when the process exits, the writer spills
them here: one fsynced JSON file per batch (the wire format of ``_wire.py``, so every
value round-trips exactly), in a session folder of ``<spool dir>-local``.
``labledger sync`` replays them into the store they were meant for; each batch keeps
its idempotency key, so a replay never stores a point twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from .._exceptions import NotFoundError, RunFinishedError, UsageError
from ..store._base import Batch
from ..store._wire import batch_from_wire, batch_to_wire, run_to_wire
from .spool import Spool, default_spool_dir, read_entries, reject

__all__ = ["local_spool_root", "replay_local_folder", "spill"]


def local_spool_root() -> Path:
    return Path(os.fspath(default_spool_dir()) + "-local")


def spill(uri: str, batches: Iterable[Batch], *, run: dict[str, Any] | None = None) -> Path:
    """Write a run record (if the store never got it) and ``batches`` durably; return the folder."""
    spool = Spool(local_spool_root())
    try:
        if run is not None:
            spool.put({"kind": "run", "uri": uri, "run": run_to_wire(run)})
        for batch in batches:
            spool.put(
                {"kind": "batch", "uri": uri, "run_id": batch.run_id, "batch": batch_to_wire(batch)}
            )
        return spool.dir
    finally:
        spool.close()


def replay_local_folder(folder: Path) -> tuple[int, int, int, str]:
    """Write one spilled session into its stores, in order (``labledger sync``).

    Returns (written, rejected, left, reason); stops at the first store that still
    cannot be written.
    """
    from ..store import open_store

    entries = read_entries(folder)
    written = rejected = 0
    stores: dict[str, Any] = {}
    try:
        for i, entry in enumerate(entries):
            rec = entry.record
            uri = str(rec.get("uri") or "")
            try:
                store = stores.get(uri)
                if store is None:
                    store = stores[uri] = open_store(uri)
                if rec.get("kind") == "run":
                    run = rec["run"]
                    try:
                        store.resolve_run_id(run["id"])
                    except NotFoundError:
                        from .._values import decode_json

                        store.create_run(decode_json(run))
                elif rec.get("kind") == "batch":
                    batch = batch_from_wire(str(rec["run_id"]), rec["batch"])
                    # points spilled before finish() may reach the store after the final
                    # status did: admitted into the ended run (a "late" audit entry)
                    if getattr(store, "dialect", None) is not None:  # an SqlStore
                        cast(Any, store).write_batch(batch, late=True)
                    else:
                        store.write_batch(batch)
                else:
                    raise UsageError(f"unknown spool record kind {rec.get('kind')!r}")
            except (UsageError, RunFinishedError, KeyError, TypeError) as exc:
                reject(entry.path, f"{type(exc).__name__}: {exc}")
                rejected += 1
                continue
            except Exception as exc:  # the store is still unavailable: keep the rest
                return written, rejected, len(entries) - i, f"{uri}: {type(exc).__name__}: {exc}"
            entry.path.unlink(missing_ok=True)
            written += 1
    finally:
        for st in stores.values():
            st.close()
    return written, rejected, 0, ""
