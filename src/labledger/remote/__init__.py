"""The tracking server as a store: the HTTP client and what keeps it from losing data.

- :mod:`.http`: ``HttpStore``, the Store protocol over HTTP, and the replay used by ``sync``.
- :mod:`._http_artifacts`: ``HttpBlobStore`` and the artifact-catalogue methods over HTTP.
- :mod:`.spool`: the outbox's directory layout: session folders of fsynced JSON records.
- :mod:`._outbox`: the outbox's record format (runs, batches) and its replay into SQL stores.
- :mod:`._catch_up`: a new run's writer replaying the outbox sessions of ended processes.
- :mod:`._pending_artifacts`: artifact records waiting in the outbox for an unreachable server.

A store here keeps nothing itself: a write raises, and the tracking writer
(``tracking/_writer.py``) owns retry, the outbox and catch-up for every store kind.

Nothing here is imported by ``import labledger`` (the public names below load their module
on first use); the store and blob-store tables in
:mod:`labledger.store._backends` name ``HttpStore`` and ``HttpBlobStore`` for ``http(s)://`` URIs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from ._catch_up import catch_up
    from ._http_artifacts import HttpBlobStore
    from ._outbox import batch_record, blob_record, left_message, replay_local, run_record
    from ._pending_artifacts import artifact_record, replay_artifact
    from .http import HttpStore

__all__ = [
    "HttpBlobStore",
    "HttpStore",
    "artifact_record",
    "batch_record",
    "blob_record",
    "catch_up",
    "left_message",
    "replay_artifact",
    "replay_local",
    "run_record",
]

# Loaded on first use, name -> submodule: ``import labledger`` imports nothing from here, and
# init() only the outbox's record builder.
_LAZY: dict[str, str] = {
    "HttpBlobStore": "_http_artifacts",
    "HttpStore": "http",
    "artifact_record": "_pending_artifacts",
    "batch_record": "_outbox",
    "blob_record": "_outbox",
    "left_message": "_outbox",
    "replay_artifact": "_pending_artifacts",
    "catch_up": "_catch_up",
    "replay_local": "_outbox",
    "run_record": "_outbox",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
