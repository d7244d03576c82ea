"""The background writer: drains a run's buffer into its store in batches.

The training thread only appends tuples ``(key, step, value, time)`` to a deque; this
thread wakes every ``interval`` seconds, groups what it finds by key into one
:class:`~labledger.store.Batch`, and writes it. Failures are retried with backoff and
reported once; they never reach the training thread.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Batch, Store

__all__ = ["Writer"]

log = logging.getLogger("labledger.writer")

HEARTBEAT_EVERY = 10.0


class Writer(threading.Thread):
    """One daemon thread per run (per process).

    ``open_store`` is called in this thread, so the import of SQLAlchemy and the
    opening of the database never delay ``init()``.
    """

    def __init__(
        self,
        run_id: str,
        buffer: collections.deque[tuple[str, int, float, float]],
        open_store: Callable[[], Store],
        create_record: dict[str, Any] | None,
        *,
        interval: float = 0.1,
    ) -> None:
        super().__init__(name=f"labledger-writer-{run_id[:8]}", daemon=True)
        self.run_id = run_id
        self.buffer = buffer
        self._open_store = open_store
        self._create_record = create_record
        self.interval = interval
        self.store: Store | None = None
        self.store_ready = threading.Event()
        self.store_error: BaseException | None = None
        self._wake = threading.Event()
        self._stop_requested = False
        self._updates: dict[str, Any] = {}
        self._updates_lock = threading.Lock()
        self._retry: list[Batch] = []
        self._last_heartbeat = 0.0
        self._warned = False
        self.latest: dict[str, tuple[int, float]] = {}  # key -> (step, value) as written
        self.points_written = 0
        self.idle = threading.Event()

    # -- called from the training thread ---------------------------------------------

    def update_run(self, **fields: Any) -> None:
        """Queue run-level fields; later values for the same field win. ``env`` merges."""
        with self._updates_lock:
            for k, v in fields.items():
                if k == "env" and isinstance(self._updates.get("env"), dict):
                    self._updates["env"] = {**self._updates["env"], **v}
                else:
                    self._updates[k] = v

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        self.idle.clear()
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self.idle.wait(0.05 if remaining is None else min(0.05, remaining)):
                if not self.buffer and not self._retry and not self._pending_updates():
                    return True
                self.idle.clear()
                self._wake.set()
            if not self.is_alive():
                return not self.buffer and not self._retry
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def stop(self, timeout: float | None = None) -> bool:
        """Write everything, then end the thread. False when ``timeout`` ran out first."""
        self._stop_requested = True
        self._wake.set()
        self.join(timeout)
        return not self.is_alive()

    def pending_points(self) -> int:
        return len(self.buffer) + sum(b.point_count() for b in self._retry)

    # -- the thread ------------------------------------------------------------------

    def _pending_updates(self) -> bool:
        with self._updates_lock:
            return bool(self._updates)

    def run(self) -> None:
        try:
            self._open()
        except BaseException as exc:  # noqa: BLE001 - reported once, never raised into training
            self.store_error = exc
            self.store_ready.set()
            self._report(exc)
            # keep draining into memory so nothing blocks; retry opening with backoff
            if not self._retry_open():
                return
        delay = self.interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            stopping = self._stop_requested
            try:
                self._write_pending()
                delay = self.interval
            except Exception as exc:  # noqa: BLE001
                self._report(exc)
                delay = min(max(delay * 2, 0.5), 10.0)
                if stopping:
                    # at shutdown keep trying until the caller's timeout gives up on us
                    time.sleep(delay)
                continue
            if not self.buffer and not self._retry:
                self.idle.set()
            if stopping and not self.buffer and not self._retry and not self._pending_updates():
                return

    def _open(self) -> None:
        store = self._open_store()
        if self._create_record is not None:
            store.create_run(self._create_record)
            self._create_record = None
        self.store = store
        self.store_ready.set()

    def _retry_open(self) -> bool:
        delay = 0.5
        while True:
            if self._stop_requested:
                return False
            time.sleep(delay)
            try:
                self._open()
                self.store_error = None
                return True
            except Exception:  # noqa: BLE001
                delay = min(delay * 2, 30.0)

    def _report(self, exc: BaseException) -> None:
        log.debug("labledger writer error", exc_info=exc)
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"labledger: could not write run {self.run_id[:8]} to the store "
                f"({type(exc).__name__}: {exc}); retrying in the background, training continues",
                RuntimeWarning,
                stacklevel=1,
            )

    def _write_pending(self) -> None:
        store = self.store
        assert store is not None
        while self._retry:
            store.write_batch(self._retry[0])
            self._retry.pop(0)
        batch = self._take_batch()
        if batch is None:
            return
        try:
            store.write_batch(batch)
        except BaseException:
            self._retry.append(batch)
            raise
        self.points_written += batch.point_count()

    def _take_batch(self) -> Batch | None:
        from .store import Batch

        buf = self.buffer
        n = len(buf)
        items = [buf.popleft() for _ in range(n)]
        with self._updates_lock:
            updates, self._updates = self._updates, {}
        now = time.time()
        heartbeat = None
        if items or updates or now - self._last_heartbeat >= HEARTBEAT_EVERY:
            heartbeat = now
            self._last_heartbeat = now
        if not items and not updates and heartbeat is None:
            return None
        metrics: dict[str, tuple[Any, Any, Any]] = {}
        if items:
            groups: dict[str, list[tuple[str, int, float, float]]] = {}
            first_key = items[0][0]
            if all(it[0] == first_key for it in items):
                groups[first_key] = items
            else:
                for it in items:
                    g = groups.get(it[0])
                    if g is None:
                        groups[it[0]] = g = []
                    g.append(it)
            latest = self.latest
            for key, its in groups.items():
                _, steps, vals, ts = zip(*its, strict=True)
                metrics[key] = (steps, vals, ts)
                latest[key] = (steps[-1], vals[-1])
        return Batch(run_id=self.run_id, metrics=metrics, run_update=updates, heartbeat=heartbeat)
