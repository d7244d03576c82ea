"""The background writer: drains a run's buffer into its store in batches.

The training thread only appends tuples ``(key, step, value, time)`` to a deque; this
thread wakes every ``interval`` seconds, groups what it finds by key into one
:class:`~labledger.store.Batch`, and writes it. Failures are retried with backoff and
reported once (a warning); they never reach the training thread.

Progress is tracked with two counters: ``popped`` (points taken off the buffer, under
``_pop_lock``) and ``written`` (points durably stored, or dropped). ``flush()`` waits
until ``written`` reaches the ``popped + len(buffer)`` it saw when called, so it never
waits for points logged after it was called.
"""

from __future__ import annotations

import collections
import logging
import os
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
BUSY_POINTS = 20_000
# How long flush()/stop() keep waiting for a store that fails every write.
FAILING_GRACE = float(os.environ.get("LABLEDGER_FAILING_GRACE", "10"))

Point = tuple[str, int, float, float]


class Writer(threading.Thread):
    """One daemon thread per run (per process).

    ``open_store`` is called in this thread, so the import of SQLAlchemy and the
    opening of the database never delay ``init()``. A ``child`` writer (in a process
    forked after ``init()``) only appends metric points: run-level fields and the
    heartbeat belong to the process that created the run.
    """

    def __init__(
        self,
        run_id: str,
        buffer: collections.deque[Point],
        open_store: Callable[[], Store],
        create_record: dict[str, Any] | None,
        *,
        interval: float = 0.1,
        child: bool = False,
        spill_uri: str | None = None,
    ) -> None:
        super().__init__(name=f"labledger-writer-{run_id[:8]}", daemon=True)
        self.run_id = run_id
        self.buffer = buffer
        self._open_store = open_store
        self._create_record = create_record
        self.interval = interval
        self.child = child
        # where unwritable points go instead of being dropped (SQL stores; the HTTP
        # client spools on its own)
        self.spill_uri = spill_uri
        self.spilled = 0
        self.spill_dir: str | None = None
        self.store: Store | None = None
        self.store_ready = threading.Event()
        self.store_error: BaseException | None = None
        self._wake = threading.Event()
        self._stop_requested = False
        self._updates: dict[str, Any] = {}
        # RLock: update_run() may be re-entered from a signal handler on the same thread.
        self._updates_lock = threading.RLock()
        # bumped by update_run(); creating the run record counts as update 1
        self._updates_seq = 1 if create_record is not None else 0
        self._updates_done = 0  # highest update sequence durably written
        self._retry: Batch | None = None
        self._retry_seq = 0
        self._retry_points = 0
        self._last_heartbeat = 0.0
        self._warned = False
        self._pop_lock = threading.Lock()
        self._progress = threading.Condition()
        # Held while a batch is being written: fork handlers take it so a child never
        # inherits a connection in the middle of a transaction.
        self.write_lock = threading.Lock()
        self.popped = 0
        self.written = 0
        self.dropped = 0
        self.failing = False
        self.last_progress = time.monotonic()
        self.latest: dict[str, tuple[int, float]] = {}  # key -> (step, value) as written

    # -- called from the training thread ---------------------------------------------

    def update_run(self, **fields: Any) -> None:
        """Queue run-level fields; later values for the same field win. ``env`` merges."""
        if self.child:
            return
        with self._updates_lock:
            for k, v in fields.items():
                if k == "env" and isinstance(self._updates.get("env"), dict):
                    self._updates["env"] = {**self._updates["env"], **v}
                else:
                    self._updates[k] = v
            self._updates_seq += 1

    def _targets(self) -> tuple[int, int]:
        with self._pop_lock:
            points = self.popped + len(self.buffer)
        with self._updates_lock:
            updates = self._updates_seq
        return points, updates

    def _done(self, points: int, updates: int) -> bool:
        return self.written >= points and self._updates_done >= updates

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued before this call is written; False on timeout.

        Also gives up (False) once the store has failed every write for FAILING_GRACE
        seconds, so a broken store cannot hang the caller.
        """
        points, updates = self._targets()
        if self._done(points, updates):
            return True
        if not self.is_alive() and not self._started.is_set():  # type: ignore[attr-defined]
            self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        while True:
            with self._progress:
                if self._done(points, updates):
                    return True
                wait = (
                    0.05 if deadline is None else min(0.05, max(0.0, deadline - time.monotonic()))
                )
                self._progress.wait(wait)
            if self._done(points, updates):
                return True
            if not self.is_alive():
                return self._done(points, updates)
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if self.failing and time.monotonic() - self.last_progress > FAILING_GRACE:
                return False
            self._wake.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Write everything, then end the thread. False when ``timeout`` ran out first."""
        if not self._started.is_set():  # type: ignore[attr-defined]
            return not self.buffer and not self._updates
        ok = self.flush(timeout)
        self._stop_requested = True
        self._wake.set()
        if ok:
            self.join(1.0)
        return ok

    def pending_points(self) -> int:
        return len(self.buffer) + self._retry_points

    def spill_to_disk(self) -> int:
        """Move everything not yet written to the local spool; return the points moved.

        Takes the buffered points, the batch being retried, pending run fields (the
        final status included) and, when the store was never opened, the run record.
        ``labledger sync`` writes them to the store later; batch ids make that replay
        idempotent, so spilling a batch the writer then also manages to write is
        harmless. Returns 0 when there is no spill location or the disk refused.
        """
        if self.spill_uri is None:
            return 0
        from .store import Batch
        from .store._local_spool import spill

        with self._pop_lock:
            items = list(self.buffer)
            self.buffer.clear()
            self.popped += len(items)
        with self._updates_lock:
            updates, self._updates = self._updates, {}
            seq = self._updates_seq
        retry, retry_points = self._retry, self._retry_points
        batches = [retry] if retry is not None else []
        if items or updates:
            metrics = _group(items) if items else {}
            batches.append(Batch(run_id=self.run_id, metrics=metrics, run_update=updates))
        record = None if self.child or self.store is not None else self._create_record
        if not batches and record is None:
            return 0
        try:
            folder = spill(self.spill_uri, batches, run=record)
        except OSError as exc:
            with self._pop_lock:  # put everything back: nothing is lost in memory either
                self.buffer.extendleft(reversed(items))
                self.popped -= len(items)
            with self._updates_lock:
                self._updates = {**updates, **self._updates}
            log.warning("labledger: could not spill run %s to disk: %s", self.run_id[:8], exc)
            return 0
        moved = len(items) + retry_points
        with self._progress:
            self.written += len(items)
            if seq > self._updates_done:
                self._updates_done = seq
            self._progress.notify_all()
        self.spilled += moved
        self.spill_dir = str(folder.parent)
        return moved

    def drop_oldest(self, keep: int) -> int:
        """Discard the oldest buffered points beyond ``keep`` (the store is stuck); return how many."""
        n = 0
        with self._pop_lock:
            buf = self.buffer
            extra = len(buf) - keep
            for _ in range(max(0, extra)):
                try:
                    buf.popleft()
                except IndexError:
                    break
                n += 1
            self.popped += n
        with self._progress:
            self.written += n
            self.dropped += n
            self._progress.notify_all()
        return n

    # -- the thread ------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._open()
        except BaseException as exc:
            self.store_error = exc
            self.failing = True
            self.store_ready.set()
            self._report(exc)
            if not self._retry_open():
                return
        delay = self.interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            stopping = self._stop_requested
            try:
                with self.write_lock:
                    self._write_pending()
                # a busy run (the buffer refilled while we wrote) is drained at once:
                # smaller batches, less memory held by buffered points
                delay = 0.0 if len(self.buffer) > BUSY_POINTS else self.interval
                if self.failing:
                    self.failing = False
                    log.warning("labledger: run %s is being written again", self.run_id[:8])
            except Exception as exc:
                self.failing = True
                self._report(exc)
                delay = min(max(delay * 2, 0.2), 5.0)
                continue
            if stopping and not self.buffer and self._retry is None and not self._updates:
                self._release_store()
                return

    def _release_store(self) -> None:
        # Return pooled connections; the store stays usable (it reconnects on demand).
        store = self.store
        if store is not None:
            try:
                store.close()
            except Exception:
                log.debug("closing the store failed", exc_info=True)

    def _open(self) -> None:
        store = self._open_store()
        if self._create_record is not None:
            store.create_run(self._create_record)
            self._create_record = None
            with self._progress:
                self._updates_done = max(self._updates_done, 1)
                self.last_progress = time.monotonic()
                self._progress.notify_all()
        self.store = store
        self.store_error = None
        self.store_ready.set()

    def _retry_open(self) -> bool:
        delay = 0.2
        while not self._stop_requested:
            self._wake.wait(delay)
            self._wake.clear()
            try:
                self._open()
                self.failing = False
                return True
            except Exception as exc:
                self.store_error = exc
                delay = min(delay * 2, 10.0)
        return False

    def _report(self, exc: BaseException) -> None:
        log.debug("labledger writer error", exc_info=exc)
        if self._warned:
            return
        self._warned = True
        try:
            warnings.warn(
                f"labledger: could not write run {self.run_id[:8]} to the store "
                f"({type(exc).__name__}: {exc}); retrying in the background, training continues",
                RuntimeWarning,
                stacklevel=1,
            )
        except Exception:
            log.warning("labledger: could not write run %s: %s", self.run_id[:8], exc)

    def _write_pending(self) -> None:
        store = self.store
        assert store is not None
        if self._retry is not None:
            # a failed batch is retried as is (same id: the store applies it at most once)
            # before anything newer is taken off the buffer, so the buffer, not a list of
            # failed batches, holds what piles up while the store is down
            self._write_frozen_aware(store, self._retry)
            self._committed(self._retry, self._retry_points, self._retry_seq)
            self._retry = None
            self._retry_points = 0
        taken = self._take_batch()
        if taken is None:
            return
        batch, npoints, seq = taken
        try:
            self._write_frozen_aware(store, batch)
        except BaseException:
            self._retry, self._retry_points, self._retry_seq = batch, npoints, seq
            raise
        self._committed(batch, npoints, seq)

    def _write_frozen_aware(self, store: Store, batch: Batch) -> None:
        """Write ``batch``; one the store refuses because the run has ended is dropped
        (retrying could never succeed), with a warning."""
        from ._exceptions import RunFinishedError

        try:
            store.write_batch(batch)
        except RunFinishedError as exc:
            self.dropped += batch.point_count()
            self._report(exc)

    def _committed(self, batch: Batch, npoints: int, seq: int) -> None:
        latest = self.latest
        for key, (steps, vals, _ts) in batch.metrics.items():
            latest[key] = (int(steps[-1]), float(vals[-1]))
        with self._progress:
            self.written += npoints
            if seq > self._updates_done:
                self._updates_done = seq
            self.last_progress = time.monotonic()
            self._progress.notify_all()

    def _take_batch(self) -> tuple[Batch, int, int] | None:
        from .store import Batch

        buf = self.buffer
        with self._pop_lock:
            n = len(buf)
            pop = buf.popleft
            items = [pop() for _ in range(n)]
            self.popped += n
        with self._updates_lock:
            updates, self._updates = self._updates, {}
            seq = self._updates_seq
        now = time.time()
        heartbeat = None
        if not self.child and (items or updates or now - self._last_heartbeat >= HEARTBEAT_EVERY):
            heartbeat = now
            self._last_heartbeat = now
        if not items and not updates and heartbeat is None:
            return None
        metrics: dict[str, tuple[Any, Any, Any]] = {}
        if items:
            metrics = _group(items)
        batch = Batch(run_id=self.run_id, metrics=metrics, run_update=updates, heartbeat=heartbeat)
        return batch, n, seq


_DTYPE: list[Any] = []  # the structured dtype of a point, built on first use (numpy is lazy)


def _group(items: list[Point]) -> dict[str, tuple[Any, Any, Any]]:
    """Group buffered points by key into (steps, values, timestamps) numpy arrays.

    One C-level pass (``np.fromiter`` into a structured array) instead of Python-level
    transposition: this runs while the training thread wants the GIL.
    """
    import numpy as np

    if not _DTYPE:
        _DTYPE.append(np.dtype([("k", "O"), ("s", "<i8"), ("v", "<f8"), ("t", "<f8")]))
    n = len(items)
    rec = np.fromiter(items, dtype=_DTYPE[0], count=n)
    first = items[0][0]
    if items[-1][0] == first and items[n // 2][0] == first and all(it[0] == first for it in items):
        return {first: (rec["s"], rec["v"], rec["t"])}
    codes: dict[str, int] = {}
    setdefault = codes.setdefault
    code = np.fromiter((setdefault(it[0], len(codes)) for it in items), dtype=np.int32, count=n)
    order = np.argsort(code, kind="stable")
    ends = np.cumsum(np.bincount(code, minlength=len(codes)))
    out: dict[str, tuple[Any, Any, Any]] = {}
    for key, c in codes.items():
        part = rec[order[(ends[c - 1] if c else 0) : ends[c]]]
        out[key] = (part["s"], part["v"], part["t"])
    return out
