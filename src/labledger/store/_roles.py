"""Store roles that ``init()`` checks for: kept apart from ``_base`` (which imports
``uuid`` and ``dataclasses``) so that the first ``init()`` of a process stays fast."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["ListPoints", "MediaBlobOwner", "ReplaysMany"]


@runtime_checkable
class ListPoints(Protocol):
    """Role of a store whose write path reads a batch's points as plain lists (``LiteStore``,
    on stdlib ``sqlite3`` without numpy): the writer groups points so for it."""

    points_as_lists: bool


@runtime_checkable
class MediaBlobOwner(Protocol):
    """Role of a database store that keeps rich results' bytes in a blob store (``SqlStore``,
    ``LiteStore``): ``use_artifacts`` points it at one (a run's ``artifacts=``, the server's
    ``--artifacts-uri``); ``media_bytes`` stages a large batch's files while it is encoded."""

    media_bytes: Any

    def use_artifacts(self, artifacts_uri: str | None = None, blobs: Any = None) -> None: ...


@runtime_checkable
class ReplaysMany(Protocol):
    """Role of a store that writes many outbox records per round trip (``HttpStore``, through
    the server's ``POST /replay``): the writer replays its outbox so. ``send_entries(None,
    entries, note=True)`` yields ``(entry, result, info)`` per record sent (``SendResult`` values of
    ``remote/spool.py``), in order, and stops after the first one not taken."""

    def send_entries(self, client: Any, entries: list[Any], *, note: bool = False) -> Any: ...
