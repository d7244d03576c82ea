"""The background writer: drains a run's buffer into its store in batches.

The training thread only appends tuples ``(key, step, value, time)`` to a deque; this
thread wakes every ``interval`` seconds, groups what it finds by key into one
:class:`~labledger.store.Batch`, and writes it. One failure model for every store kind
(SQLite, PostgreSQL, the tracking server): a store raises typed errors and keeps nothing
itself; the writer owns what happens then:

- a transient fault (refused connection, timeout, 5xx, a lock) is reported once (a
  warning) and never reaches the training thread. The batch goes to the run's outbox
  session (:mod:`labledger.remote._outbox`, fsynced), and so does every later one, one
  file per wake-up, while the writer retries the oldest with backoff (50 ms doubling to
  1 s) and replays them in order once the store takes it: a process killed at any moment
  keeps what it logged up to ~0.1 s before;
- the same while the store is not open yet (``init()`` could not put the run in it: a
  server, a busy or PostgreSQL store);
- an artifact the tracking server could not take (:meth:`Writer.defer`) waits in the same
  session, in order with the batches;
- when the store stops accepting writes for good (``flush()`` gives up), ``spill_to_disk``
  moves what is still in memory to the outbox (``labledger sync`` or the next process's
  catch-up writes it later);
- a refusal of the data itself (a value too long, a run the server never heard of) drops
  only what is refused (:meth:`Writer._isolate`), said once per item and kept in the
  outbox's ``rejected/`` folder;
- a configuration fault (a refused token, a missing database:
  :func:`labledger._exceptions.configuration_error`) stops tracking at once with the fix
  named: no retry, nothing kept in the outbox.

Progress is tracked with two counters: ``popped`` (points taken off the buffer, under
``_pop_lock``) and ``written`` (points durably stored, or dropped). ``flush()`` waits
until ``written`` reaches the ``popped + len(buffer)`` it saw when called, so it never
waits for points logged after it was called.
"""

from __future__ import annotations

import collections

# The importlib package, imported by the thread that starts ours (init() imports this
# module before it starts any labledger thread). CPython (3.11, 3.12) can leave importlib
# with an uninitialised second copy of its bootstrap when two threads import the package
# for the first time at once (one ``import importlib``, one ``import importlib.machinery``):
# every later ``importlib.import_module`` in the process then fails with "NameError: name
# 'sys' is not defined". Our threads import it (the store back ends, httpx's certifi) and so
# do the user's (torch imports importlib.machinery), and ``python -S`` or a venv does not
# import it at start-up. About 0.2 ms, once per process.
import importlib  # noqa: F401
import operator
import os
import threading
import time
from collections.abc import Callable
from itertools import repeat
from typing import TYPE_CHECKING, Any

from .._settings import setting
from .._values import warn

if TYPE_CHECKING:
    from pathlib import Path

    from ..remote.spool import Spool
    from ..store import Batch, Store

__all__ = ["Writer", "is_permanent", "split_batch"]


class _Log:
    """``logging.getLogger("labledger.writer")``, imported on first use: the writer
    starts inside ``init()``, and ``logging`` (with traceback, string, textwrap) costs
    a few milliseconds that a run which never warns need not pay."""

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("labledger.writer"), name)


log: Any = _Log()

HEARTBEAT_EVERY = 10.0
BUSY_POINTS = 20_000
# How long flush()/stop() keep waiting, without progress, for a store that fails every write.
FAILING_GRACE = float(setting("LABLEDGER_FAILING_GRACE") or "10")
# ... for a tracking server (LABLEDGER_SYNC_TIMEOUT); progress restarts the wait, up to
# DRAIN_PATIENCE (at least 10x that) in all
DEFAULT_SYNC_TIMEOUT = 30.0
DRAIN_PATIENCE = 600.0
PROBE_MIN = 0.05  # first retry delay after the store failed (doubles up to PROBE_MAX)
PROBE_MAX = 1.0

# One buffer entry: a point (key, step, value, time), or all points of one log() call
# with known float keys as (keys tuple, step, values tuple, time): log() then builds
# one tuple instead of one per key, and the writer transposes them in C.
Point = tuple[Any, int, Any, float]
_KEY = operator.itemgetter(0)
_STEP = operator.itemgetter(1)
_VALUE = operator.itemgetter(2)
_TIME = operator.itemgetter(3)


def _where(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frames (up to 4) of an unexpected
    exception (not a labledger error, an OS error or a network fault): what a bug report
    needs."""
    from .._exceptions import LabledgerError

    if isinstance(exc, (LabledgerError, OSError, TimeoutError)):
        return ""
    try:
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)[-4:]
        return " < ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in reversed(frames))
    except Exception:  # (the interpreter may be shutting down)
        return ""


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
        store: Store | None = None,
        outbox: Spool | None = None,
        outbox_run: Path | None = None,
    ) -> None:
        super().__init__(name=f"labledger-writer-{run_id[:8]}", daemon=True)
        self.run_id = run_id
        self.buffer = buffer
        self._open_store = open_store
        self._create_record = create_record
        self.interval = interval
        self.child = child
        # the store's URI in outbox records: where unwritable points go instead of being dropped
        self.spill_uri = spill_uri
        self.spilled = 0
        self.spill_dir: str | None = None
        # the run's outbox session: its run record (written by init()) and the batches
        # taken while the store was not open, replayed once it is (path, points, seq)
        self.outbox = outbox
        self._outbox_run = outbox_run
        self._outboxed: list[tuple[Path, int, int]] = []
        self._put_lock = threading.Lock()  # the session is written by this thread and uploads
        self._backoff = PROBE_MIN  # while batches wait in the outbox: next try of the store
        self._next_try = 0.0
        self._warned_rejected = False
        # flush() gives up after this long without progress on a failing store
        self.grace = FAILING_GRACE
        self.patience: float | None = None  # http(s): finish() waits this long in all
        if spill_uri is not None and spill_uri.split(":", 1)[0].lower() in ("http", "https"):
            env = setting("LABLEDGER_SYNC_TIMEOUT")
            self.grace = float(env) if env else DEFAULT_SYNC_TIMEOUT
            self.patience = max(self.grace * 10, DRAIN_PATIENCE)
        self._opened: Store | None = None  # opened by the opener thread, adopted here
        self.fatal: BaseException | None = None  # a configuration fault: tracking stopped
        self._outbox_lock = threading.Lock()
        self._catching_up: threading.Thread | None = None
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
        # parts of a batch the store refused, being written one by one (see _isolate)
        self._parts: list[Batch] = []
        self._parts_points = 0
        self._parts_seq = 0
        self.rejected: list[str] = []  # what the store refused for good, with the reason
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
        self._lists = False  # group points into lists, not numpy arrays (stdlib store)
        # set by Run.log() once a rich result (image, table, ...) is in the buffer: only
        # then does a batch look for them among the points
        self.media_logged = False
        if store is not None:  # opened (and the run created) by init() already
            self._adopt(store)
            self._create_record = None
            self._updates_done = 1

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
        return self.written >= points and self._updates_done >= updates and not self._outboxed

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued before this call is written; False on timeout.

        Also gives up (False) once the store has failed every write for ``grace``
        seconds since this call or the last progress (FAILING_GRACE, or
        LABLEDGER_SYNC_TIMEOUT for a tracking server), so a broken store cannot hang
        the caller. What waits in the outbox counts as not written yet.
        """
        called = time.monotonic()
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
            if not self.is_alive() or self.fatal is not None:
                return self._done(points, updates)
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if self.failing and time.monotonic() - max(self.last_progress, called) > self.grace:
                return False
            self._wake.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Write everything, then end the thread. False when ``timeout`` ran out first."""
        if not self._started.is_set():  # type: ignore[attr-defined]
            return not self.buffer and not self._updates
        ok = self.flush(timeout)
        self._stop_requested = True
        self._wake.set()
        if ok or self.fatal is not None:
            self.join(1.0)
        catching_up = self._catching_up
        if ok and catching_up is not None and catching_up is not threading.current_thread():
            catching_up.join(FAILING_GRACE)  # what it replays is safe in the outbox if cut short
        return ok

    def pending_points(self) -> int:
        return (
            len(self.buffer)
            + self._retry_points
            + sum(p.point_count() for p in self._parts)
            + sum(n for _, n, _ in self._outboxed)
        )

    def _session(self) -> Spool:
        """The run's outbox session (created on first use)."""
        if self.outbox is None:
            from ..remote.spool import Spool

            self.outbox = Spool()
        return self.outbox

    def spill_to_disk(self) -> int:
        """Move everything not yet written to the run's outbox; return the points moved.

        Takes the buffered points, the batch being retried, pending run fields (the
        final status included) and, when the store never got it and the outbox does not
        hold it yet, the run record; batches already in the outbox count as moved.
        ``labledger sync`` (or the next process's catch-up) writes them to the store
        later; batch ids make that replay idempotent, so spilling a batch the writer then
        also manages to write is harmless. Returns 0 when there is no spill location, the
        tracking stopped on a configuration fault, or the disk refused.
        """
        if self.spill_uri is None or self.fatal is not None:
            return 0
        from ..remote import batch_record, run_record
        from ..store import Batch

        with self._pop_lock:
            items = list(self.buffer)
            self.buffer.clear()
            self.popped += len(items)
        with self._updates_lock:
            updates, self._updates = self._updates, {}
            seq = self._updates_seq
        retry, retry_points = self._retry, self._retry_points
        batches = [retry] if retry is not None else []
        batches += self._parts
        retry_points += self._parts_points
        if items or updates:
            points, media = self._encode_media(items) if self.media_logged else (items, [])
            group = _group_lists if self._lists or self.store is None else _group
            metrics = group(points) if points else {}
            batches.append(
                Batch(run_id=self.run_id, metrics=metrics, run_update=updates, media=media)
            )
        record = None
        if not self.child and self.store is None and self._outbox_run is None:
            record = self._create_record
        with self._outbox_lock:
            outboxed = sum(n for _, n, _ in self._outboxed)
            waiting = bool(self._outboxed)  # artifacts count as nothing, and are there too
        if not batches and record is None and not waiting:
            return 0
        try:
            session = self._session()
            if record is not None:
                self._outbox_run = session.put(run_record(self.spill_uri, record))
            for batch in batches:
                session.put(batch_record(self.spill_uri, batch))
        except OSError as exc:
            with self._pop_lock:  # put everything back: nothing is lost in memory either
                self.buffer.extendleft(reversed(items))
                self.popped -= len(items)
            with self._updates_lock:
                self._updates = {**updates, **self._updates}
            log.warning("labledger: could not spill run %s to disk: %s", self.run_id[:8], exc)
            return 0
        moved = len(items) + retry_points + outboxed
        with self._progress:
            self.written += len(items) + outboxed
            with self._outbox_lock:  # on disk for good now: sync or the next catch-up replays them
                self._outboxed = []
            if seq > self._updates_done:
                self._updates_done = seq
            self._progress.notify_all()
        self.spilled += moved
        self.spill_dir = str(session.dir.parent)
        return moved

    def release_outbox(self) -> None:
        """Unlock the outbox session (what is left in it is for ``labledger sync``)."""
        if self.outbox is not None:
            self.outbox.close()

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
        if self.outbox is not None and self._outbox_run is not None:
            try:  # init() wrote the run record without fsync: make it power-safe now
                self.outbox.sync(self._outbox_run)
            except OSError as exc:
                log.debug("labledger: fsync of the outbox failed: %s", exc)
        if self.store is None and self.outbox is not None:
            # the run is in the outbox already (init()): open the store beside this loop,
            # which keeps batches in the outbox until the store is there
            threading.Thread(
                target=self._open_in_background,
                name=f"labledger-open-{self.run_id[:8]}",
                daemon=True,
            ).start()
        else:
            try:
                self._open()
            except BaseException as exc:
                if self._stop_if_fatal(exc):
                    return
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
            if self.fatal is not None:
                self._end_fatal()
                return
            stopping = self._stop_requested
            try:
                with self.write_lock:
                    self._write_pending()
                # a busy run (the buffer refilled while we wrote) is drained at once:
                # smaller batches, less memory held by buffered points
                delay = 0.0 if len(self.buffer) > BUSY_POINTS else self.interval
                if self.failing and self.store is not None and not self._outboxed:
                    self.failing = False
                    log.warning("labledger: run %s is being written again", self.run_id[:8])
            except Exception as exc:
                if self._stop_if_fatal(exc):
                    self._end_fatal()
                    return
                self.failing = True
                self._report(exc)
                if self._outboxed:
                    # what is logged keeps going to the outbox every wake-up; the store
                    # is tried again after the backoff
                    self._next_try = time.monotonic() + self._backoff
                    self._backoff = min(self._backoff * 2, PROBE_MAX)
                    delay = self.interval
                else:
                    delay = min(max(delay * 2, 0.2), 5.0)
                continue
            if (
                stopping
                and not self.buffer
                and self._retry is None
                and not self._parts
                and not self._updates
                and (self.store is None or not self._outboxed)
            ):
                self._release_store()
                if self.store is not None or not self._outboxed:
                    self.release_outbox()
                return

    def _stop_if_fatal(self, exc: BaseException) -> bool:
        """True (and tracking stopped, the fix said once) when ``exc`` is a configuration fault."""
        from .._exceptions import configuration_error

        fatal = configuration_error(exc, self.spill_uri or "")
        if fatal is None:
            return False
        message = (
            f"labledger: run {self.run_id[:8]} is not being recorded: {fatal}. "
            "Tracking stopped; training continues"
        )
        try:  # said before flush() and finish() see it, so the message is out when they return
            warn(message)
        except Exception:
            log.warning(message)
        self.store_error = fatal
        self.fatal = fatal
        self.store_ready.set()
        with self._progress:
            self._progress.notify_all()
        return True

    def _end_fatal(self) -> None:
        """Drop what is buffered and the run's outbox session: nothing of it can be stored."""
        with self._pop_lock:
            n = len(self.buffer)
            self.buffer.clear()
            self.popped += n
        with self._outbox_lock:
            outboxed, self._outboxed = self._outboxed, []
        for path, _, _ in outboxed:
            path.unlink(missing_ok=True)
        if self._outbox_run is not None:
            self._outbox_run.unlink(missing_ok=True)
            self._outbox_run = None
        self.release_outbox()
        with self._progress:
            self.dropped += n
            self._progress.notify_all()

    def _open_in_background(self) -> None:
        # a server back from a restart is noticed within about a second (PROBE_MAX)
        delay, most = (PROBE_MIN, PROBE_MAX) if self.patience is not None else (0.2, 10.0)
        while True:
            try:
                store = self._open_store()
                if self._create_record is not None:
                    try:
                        store.create_run(self._create_record)
                    except BaseException:
                        _close_quietly(store)  # its pool or socket, not left to the GC
                        raise
                    self._create_record = None
                    with self._progress:
                        self._updates_done = max(self._updates_done, 1)
                        self.last_progress = time.monotonic()
                        self._progress.notify_all()
                if self._outbox_run is not None:  # in the store now
                    self._outbox_run.unlink(missing_ok=True)
                    self._outbox_run = None
                self._opened = store
                self._wake.set()
                return
            except Exception as exc:
                if self._stop_if_fatal(exc):
                    self._wake.set()
                    return
                self.store_error = exc
                self.failing = True
                self.store_ready.set()
                self._report(exc)
                if self._stop_requested:
                    return
                time.sleep(delay)  # the opener's own backoff, off every caller's path
                delay = min(delay * 2, most)

    def _can_outbox(self) -> bool:
        return self.spill_uri is not None and self.fatal is None

    def _put(self, record: dict[str, Any], npoints: int, seq: int) -> Path:
        """Write ``record`` to the run's outbox session, in order, and remember it."""
        with self._put_lock:  # the uploader thread defers artifacts here too
            path = self._session().put(record)
            with self._outbox_lock:
                self._outboxed.append((path, npoints, seq))
        return path

    def _to_outbox(self) -> None:
        """The store cannot take writes now: keep what is pending in the run's outbox session
        (the batch being retried first, then the next one)."""
        from ..remote import batch_record

        assert self.spill_uri is not None
        if self._retry is None:
            taken = self._take_batch()
            if taken is None:
                return
            self._retry, self._retry_points, self._retry_seq = taken
        batch, npoints, seq = self._retry, self._retry_points, self._retry_seq
        self._put(batch_record(self.spill_uri, batch), npoints, seq)  # OSError: kept, retried
        self._retry, self._retry_points = None, 0
        self._note_latest(batch)
        taken = self._take_batch()
        if taken is not None:
            self._retry, self._retry_points, self._retry_seq = taken
            self._to_outbox()

    def defer(self, record: dict[str, Any]) -> None:
        """Keep ``record`` (an artifact the server could not take) in the run's outbox,
        after what is there: written with the run's batches once the store takes writes,
        else by ``labledger sync``. Called from the artifact uploader's thread."""
        self._put(record, 0, 0)
        self._wake.set()

    def offline(self) -> bool:
        """True while writes wait in the outbox because the store failed (it could not be
        opened, or does not answer); not while it is merely being opened."""
        return self.failing and (self.store is None or bool(self._outboxed))

    def _replay_outboxed(self, store: Store) -> None:
        """Write what waits in the outbox into the store, in order (raises while it cannot)."""
        from ..store import ReplaysMany, batch_from_wire

        # the server's POST /replay: many records per round trip
        send = store.send_entries if isinstance(store, ReplaysMany) else None
        while True:
            with self._outbox_lock:
                if not self._outboxed:
                    return
                head = self._outboxed[:_REPLAY_AT_ONCE]
            if send is not None and len(head) > 1 and self._replay_many(store, send, head):
                continue
            path, npoints, seq = head[0]
            try:
                import json

                rec = json.loads(path.read_bytes())
            except FileNotFoundError:  # taken by a sync meanwhile
                rec = None
            refused: tuple[Batch, Exception] | None = None
            if rec is not None and rec.get("kind") == "artifact":
                self._replay_artifact(store, path, rec)
            elif rec is not None and rec.get("kind") == "blob":
                import base64

                try:
                    store.put_blob(base64.b64decode(str(rec["body"])))
                except Exception as exc:
                    if not is_permanent(exc):
                        raise
                    from ..remote.spool import reject

                    reject(path, f"{type(exc).__name__}: {exc}")
                    self._warn(
                        f"labledger: the store refused a captured file of run "
                        f"{self.run_id[:8]} ({type(exc).__name__}: {str(exc)[:200]}); "
                        f"it was kept in {path.parent.parent}/rejected"
                    )
            elif rec is not None:
                batch = batch_from_wire(self.run_id, rec["body"])
                if self._lists:
                    batch.metrics = {
                        k: (st.tolist(), va.tolist(), ts.tolist())
                        for k, (st, va, ts) in batch.metrics.items()
                    }
                try:
                    store.write_batch(batch)
                except Exception as exc:
                    if not is_permanent(exc):
                        raise
                    refused = batch, exc
            with self._outbox_lock:
                mine = bool(self._outboxed) and self._outboxed[0][0] == path
                if mine:
                    self._outboxed.pop(0)
            path.unlink(missing_ok=True)
            self._backoff = PROBE_MIN
            if refused is not None and mine:  # written in parts, dropping only what is refused
                self._isolate(store, refused[0], npoints, seq, refused[1])
            elif mine:  # else spill_to_disk counted it already
                self._committed(None, npoints, seq)

    def _replay_many(self, store: Store, send: Any, head: list[tuple[Path, int, int]]) -> bool:
        """Send the leading batches of ``head`` many per round trip (the server's
        ``/replay``); False when there are fewer than two, or the first was not taken
        (the one-by-one path then writes it and raises or isolates, typed)."""
        import json

        from .._exceptions import StoreUnavailableError
        from ..remote.spool import SendResult, SpoolEntry

        entries: list[SpoolEntry] = []
        for path, _, _ in head:
            try:
                rec = json.loads(path.read_bytes())
            except FileNotFoundError:
                break
            if rec.get("kind") != "batch":
                break
            entries.append(SpoolEntry(path, rec))
        if len(entries) < 2:
            return False
        done = 0
        for entry, result, info in send(None, entries, note=True):
            if result == SendResult.RETRY:
                if done:
                    return True
                raise StoreUnavailableError(str(self.spill_uri), str(info))
            if result != SendResult.OK:
                break  # refused: written alone next, for its typed error
            with self._outbox_lock:
                mine = bool(self._outboxed) and self._outboxed[0][0] == entry.path
                item = self._outboxed.pop(0) if mine else None
            entry.path.unlink(missing_ok=True)
            self._backoff = PROBE_MIN
            done += 1
            if item is not None:
                self._committed(None, item[1], item[2])
        return done > 0

    def _replay_artifact(self, store: Store, path: Path, rec: dict[str, Any]) -> None:
        """Upload one deferred artifact (blobs, then its version); raise while the server is
        away; a refused one (its file changed or is gone) goes to ``rejected/``, said once."""
        from .._exceptions import StoreUnavailableError
        from ..remote import replay_artifact
        from ..remote.spool import SendResult, reject

        result, info = replay_artifact(store, rec)
        if result == SendResult.RETRY:
            raise StoreUnavailableError(str(self.spill_uri), str(info))
        if result == SendResult.REJECTED:
            reject(path, str(info))
            self.rejected.append(f"artifact {rec.get('body', {}).get('name')!r}: {info}"[:500])
            self._warn(
                f"labledger: the server refused artifact {rec.get('body', {}).get('name')!r} "
                f"of run {self.run_id[:8]}: {info}; it was kept in {path.parent.parent}/rejected"
            )

    def _release_store(self) -> None:
        # Return pooled connections; the store stays usable (it reconnects on demand).
        store = self.store
        if store is not None:
            try:
                store.close()
            except Exception:
                log.debug("closing the store failed", exc_info=True)

    def _adopt(self, store: Store) -> None:
        from ..store import ListPoints

        self._lists = isinstance(store, ListPoints) and store.points_as_lists
        self.store = store
        self.store_error = None
        # before store_ready: fork hooks wait for it, and for the catch-up thread
        if not self.child and self.spill_uri is not None and self._catching_up is None:
            from ..remote.spool import default_spool_dir, session_dirs

            own = self.outbox.dir if self.outbox is not None else None
            if [d for d in session_dirs(default_spool_dir()) if d != own]:  # usually none
                self._catching_up = threading.Thread(
                    target=self._catch_up, name="labledger-catch-up", daemon=True
                )
                self._catching_up.start()
        self.store_ready.set()

    def _catch_up(self) -> None:
        """Write what processes killed before ``labledger sync`` left in the outbox for this store."""
        try:
            from ..remote import catch_up

            n = catch_up(str(self.spill_uri))
        except Exception as exc:  # the next process or `labledger sync` tries again
            log.debug("labledger: outbox catch-up failed: %s", exc)
            return
        if n:
            log.info("labledger: caught up %d outbox record(s) left by ended processes", n)

    def _open(self) -> None:
        if self.store is not None:
            return
        store = self._open_store()
        if self._create_record is not None:
            store.create_run(self._create_record)
            self._create_record = None
            with self._progress:
                self._updates_done = max(self._updates_done, 1)
                self.last_progress = time.monotonic()
                self._progress.notify_all()
        self._adopt(store)

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
        where = _where(exc)  # not one of ours (a bug): say where, so a report can name it
        what = f"{type(exc).__name__}: {exc}" + (f", at {where}" if where else "")
        if self._outboxed and self.outbox is not None:
            self._warn(
                f"labledger: could not write run {self.run_id[:8]} to the store "
                f"({what}); its writes go to the outbox (spool) "
                f"{self.outbox.dir} and are retried in the background, training continues"
            )
            return
        self._warn(
            f"labledger: could not write run {self.run_id[:8]} to the store "
            f"({what}); retrying in the background, training continues"
        )

    def _warn(self, message: str) -> None:
        try:
            warn(message)
        except Exception:
            log.warning(message)

    def _write_pending(self) -> None:
        store = self.store
        if store is None:
            store = self._opened
            if store is None:
                self._to_outbox()
                return
            self._adopt(store)
        if self._outboxed:
            if time.monotonic() < self._next_try:  # the store failed just now: back off
                self._to_outbox()
                return
            try:
                self._replay_outboxed(store)
            except Exception:
                if self._can_outbox():
                    self._to_outbox()  # what was logged meanwhile waits behind them
                raise
        if self._parts:
            self._drain_parts(store)
        if self._retry is not None:
            # a failed batch is retried as is (same id: the store applies it at most once)
            # before anything newer is taken off the buffer, so the buffer, not a list of
            # failed batches, holds what piles up while the store is down
            retry, npoints, seq = self._retry, self._retry_points, self._retry_seq
            try:
                store.write_batch(retry)
            except Exception as exc:
                if not is_permanent(exc):
                    raise
                self._retry, self._retry_points = None, 0
                self._isolate(store, retry, npoints, seq, exc)
            else:
                self._committed(retry, npoints, seq)
                self._retry = None
                self._retry_points = 0
        taken = self._take_batch()
        if taken is None:
            return
        batch, npoints, seq = taken
        try:
            store.write_batch(batch)
        except Exception as exc:
            if is_permanent(exc):
                self._isolate(store, batch, npoints, seq, exc)
                return
            self._retry, self._retry_points, self._retry_seq = batch, npoints, seq
            from .._exceptions import configuration_error

            if self._can_outbox() and configuration_error(exc) is None:
                self._to_outbox()  # durable now; this and what follows wait there
            raise
        except BaseException:
            self._retry, self._retry_points, self._retry_seq = batch, npoints, seq
            raise
        self._committed(batch, npoints, seq)

    def _isolate(self, store: Store, batch: Batch, npoints: int, seq: int, exc: Exception) -> None:
        """The store refused ``batch`` for good: write it in parts, dropping only what it refuses.

        Parts (run fields, then one series each, then halves of a series) get ids
        derived from the batch's, so a part is applied at most once even when a
        transient error interrupts the isolation (it resumes at the next wake-up).
        """
        log.debug("batch %s refused, isolating the bad item", batch.id, exc_info=exc)
        from .._exceptions import RunFinishedError

        # the run has ended (frozen): every part would be refused the same way
        parts = [] if isinstance(exc, RunFinishedError) else split_batch(batch)
        if not parts:
            self._reject(batch, exc)
        self._parts = parts
        self._parts_points, self._parts_seq = npoints, seq
        self._drain_parts(store)

    def _drain_parts(self, store: Store) -> None:
        parts = self._parts
        while parts:
            part = parts[0]
            try:
                store.write_batch(part)
            except Exception as exc:
                if not is_permanent(exc):
                    raise
                parts.pop(0)
                pieces = split_batch(part)
                if pieces:
                    parts[0:0] = pieces
                else:
                    self._reject(part, exc)
                continue
            parts.pop(0)
            self._note_latest(part)
        self._committed(None, self._parts_points, self._parts_seq)
        self._parts_points = 0

    def _reject(self, part: Batch, exc: Exception) -> None:
        n = part.point_count()
        what = (
            f"{n} points of {', '.join(repr(k) for k in part.metrics)}"
            if part.metrics
            else f"run field(s) {', '.join(sorted(part.run_update)) or 'heartbeat'}"
        )
        with self._progress:
            self.dropped += n
        reason = f"{type(exc).__name__}: {exc}"
        self.rejected.append(f"{what}: {reason}"[:500])
        kept = ""
        if self.patience is not None and self._can_outbox():
            # a server's refusal is kept, not retried: `labledger sync` never sees it again
            from ..remote import batch_record
            from ..remote.spool import reject

            try:
                with self._put_lock:
                    path = self._session().put(batch_record(str(self.spill_uri), part))
                dest = reject(path, reason)
                kept = f"; it was kept in {dest.parent}"
            except (OSError, TypeError, ValueError) as err:  # unencodable: said, not kept
                log.debug("labledger: could not keep a refused batch: %s", err)
        self._warn(
            f"labledger: the store refused {what} of run {self.run_id[:8]} "
            f"({type(exc).__name__}: {str(exc)[:200]}){kept}; everything else was written"
        )

    def _note_latest(self, batch: Batch) -> None:
        latest = self.latest
        for key, (steps, vals, _ts) in batch.metrics.items():
            if len(steps):
                latest[key] = (int(steps[-1]), float(vals[-1]))

    def _committed(self, batch: Batch | None, npoints: int, seq: int) -> None:
        if batch is not None:
            self._note_latest(batch)
        with self._progress:
            self.written += npoints
            if seq > self._updates_done:
                self._updates_done = seq
            self.last_progress = time.monotonic()
            self._progress.notify_all()

    def _take_batch(self) -> tuple[Batch, int, int] | None:
        from ..store import Batch

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
        media: list[Any] = []
        if items and self.media_logged:
            items, media = self._encode_media(items)
        if items:
            # lists while the store is not open (an outbox record needs no numpy)
            group = _group_lists if self._lists or self.store is None else _group
            try:
                metrics = group(items)
            except (OverflowError, TypeError, ValueError) as exc:
                # a point no store can hold (it slipped past log()'s checks): drop it alone
                items = _expand(items)
                good = [it for it in items if _storable(it)]
                bad = [it for it in items if not _storable(it)]
                from ..store import Batch as _Batch

                bad_batch = _Batch(self.run_id, _group_lists(bad) if bad else {})
                self._reject(bad_batch, exc)
                metrics = group(good) if good else {}
        batch = Batch(
            run_id=self.run_id,
            metrics=metrics,
            run_update=updates,
            heartbeat=heartbeat,
            media=media,
        )
        return batch, n, seq

    def _encode_media(self, items: list[Point]) -> tuple[list[Point], list[Any]]:
        """Take the rich results out of ``items`` and encode them (PNG, JSON) here, on the
        writer thread; one that fails to encode is reported and dropped alone.

        Many of them (a batch of images) are encoded by a few short-lived threads: Pillow's
        PNG encoder releases the GIL, so 1,000 images take a fraction of the time on a
        machine with spare cores. The threads live for this batch only (no pool that a
        fork could inherit half-alive)."""
        from .._media import Pending

        if Pending not in set(map(type, map(_VALUE, items))):
            return items, []
        points: list[Point] = []
        pending: list[Point] = []
        for it in items:
            (pending if type(it[2]) is Pending else points).append(it)
        workers = min(4, os.cpu_count() or 1)
        media: list[Any] = []
        if len(pending) >= _PARALLEL_ENCODE and workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            # a database store's blob files are written (staged) here while the pool
            # encodes the next values; the store's write_batch makes them durable
            from ..store import MediaBlobOwner

            owner = self.store if isinstance(self.store, MediaBlobOwner) else None
            stage = owner.media_bytes.stage if owner is not None else None
            with ThreadPoolExecutor(workers, thread_name_prefix="labledger-encode") as pool:
                staged = 0
                encoded = pool.map(_encode_one, pending, chunksize=16)
                for it, got in zip(pending, encoded, strict=True):
                    self._add_encoded(media, it, got)
                    if stage is not None and len(media) - staged >= _STAGE_EVERY:
                        stage(media[staged:])
                        staged = len(media)
        else:
            for it in pending:
                self._add_encoded(media, it, _encode_one(it))
        return points, media

    def _add_encoded(
        self, media: list[Any], it: Point, got: tuple[bytes, dict[str, Any]] | Exception
    ) -> None:
        """Append the encoded ``MediaItem`` of buffered ``it``; report one that failed."""
        from ..store import MediaItem

        m = it[2].media
        if isinstance(got, Exception):
            with self._progress:
                self.dropped += 1
            msg = f"{m.kind} {it[0]!r} at step {it[1]}: {type(got).__name__}: {got}"
            self.rejected.append(msg[:500])
            log.warning("labledger: could not encode %s; it was not stored", msg[:300])
            return
        data, meta = got
        media.append(MediaItem(it[0], it[1], it[2].seq, m.kind, data, meta, m.caption, it[3]))


# outbox records looked at per replay round (the server takes 50 per round trip)
_REPLAY_AT_ONCE = 200

# a batch with at least this many rich results encodes them on a few threads, and
# stages their blob files every _STAGE_EVERY values while the rest encode
_PARALLEL_ENCODE = 32
_STAGE_EVERY = 64


def _encode_one(item: Point) -> tuple[bytes, dict[str, Any]] | Exception:
    """The stored bytes and metadata of one buffered rich result, or why it cannot be stored."""
    from .._limits import MAX_MEDIA_BYTES

    try:
        data, meta = item[2].media.encode()
        if len(data) > MAX_MEDIA_BYTES:
            raise ValueError(
                f"{len(data):,} bytes encoded; at most {MAX_MEDIA_BYTES:,} are allowed"
            )
    except Exception as exc:
        return exc
    return data, meta


def _close_quietly(store: Store) -> None:
    try:
        store.close()
    except Exception:
        log.debug("closing the store failed", exc_info=True)


def _group_lists(items: list[Point]) -> dict[str, tuple[Any, Any, Any]]:
    """Group buffered points by key into (steps, values, timestamps) lists (no numpy).

    The common shapes take C-level passes only (this runs while the training thread
    wants the GIL): one key, or the same keys in the same order at every ``log()``
    call (a period of ``p`` points); anything else takes one Python-level pass.
    """
    keys = list(map(_KEY, items))
    first = keys[0]
    if type(first) is tuple and keys.count(first) == len(keys):
        # every entry is one log() call with the same keys: transpose column by column
        steps, ts = list(map(_STEP, items)), list(map(_TIME, items))
        vals = list(map(_VALUE, items))
        return {
            k: (steps, list(map(operator.itemgetter(j), vals)), ts) for j, k in enumerate(first)
        }
    if tuple in set(map(type, keys)):
        items = _expand(items)
        keys = list(map(_KEY, items))
        first = keys[0]
    n = len(items)
    try:
        p = keys.index(first, 1)
    except ValueError:
        p = n
    if n % p == 0 and keys[p:] == keys[:-p] and len(set(keys[:p])) == p:
        out: dict[str, tuple[Any, Any, Any]] = {}
        for j in range(p):
            part = items[j::p] if p > 1 else items
            out[keys[j]] = (
                list(map(_STEP, part)),
                list(map(_VALUE, part)),
                list(map(_TIME, part)),
            )
        return out
    grouped: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for k, st, v, t in items:
        try:
            s_, v_, t_ = grouped[k]
        except KeyError:
            s_, v_, t_ = grouped[k] = ([], [], [])
        s_.append(st)
        v_.append(v)
        t_.append(t)
    return dict(grouped)


def _expand(items: list[Point]) -> list[Point]:
    """One (key, step, value, time) tuple per point (multi-key entries split)."""
    if tuple not in set(map(type, map(_KEY, items))):
        return items
    out: list[Point] = []
    for it in items:
        k = it[0]
        if type(k) is tuple:
            out.extend(zip(k, repeat(it[1]), it[2], repeat(it[3]), strict=False))
        else:
            out.append(it)
    return out


def _storable(item: Point) -> bool:
    try:
        float(item[2])
        return 0 <= int(item[1]) < 2**63
    except (OverflowError, TypeError, ValueError):
        return False


_PERMANENT_NAMES = frozenset(
    {"DataError", "IntegrityError", "StringDataRightTruncation", "RunFinishedError"}
)


def is_permanent(exc: BaseException) -> bool:
    """True when retrying cannot help: the store refuses the data itself.

    Value errors (overflow, a value too long or too big, a bad type, a constraint), as
    raised by sqlite3, SQLAlchemy (which wraps the driver's error in ``.orig``),
    psycopg or our own checks. Connection trouble, locks and disk errors are transient.
    """
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 6:
        seen += 1
        if isinstance(cur, (OverflowError, TypeError, ValueError, RecursionError)):
            return True
        name = type(cur).__name__
        if name in _PERMANENT_NAMES or "too big" in str(cur) or "too long" in str(cur):
            return True
        cur = getattr(cur, "orig", None) or cur.__cause__
    return False


def split_batch(batch: Batch) -> list[Batch]:
    """Smaller batches holding together what ``batch`` holds; [] when it is one item.

    Run fields and heartbeat first, then one batch per series, then the fields that
    end the run (status, end time, exit code, error): an ended run is frozen, so they
    come last, and they are never held back by a bad series, which is dropped alone.
    A single series is halved; run fields are split one per field, ending ones last."""
    import uuid

    from ..store import Batch

    def sub(tag: str) -> str:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{batch.id}/{tag}").hex

    rid = batch.run_id
    update = batch.run_update
    ending = {k: v for k, v in update.items() if k in _ENDING_FIELDS}
    rest = {k: v for k, v in update.items() if k not in _ENDING_FIELDS}
    has_rest = bool(rest) or batch.heartbeat is not None
    keys = list(batch.metrics)
    if batch.media:
        if len(batch.media) == 1 and not keys and not has_rest and not ending:
            return []
        parts = []
        if keys or has_rest:
            parts.append(Batch(rid, batch.metrics, rest, batch.heartbeat, id=sub("m/rest")))
        parts += [
            Batch(rid, {}, id=sub(f"m/{m.key}/{m.step}/{m.seq}"), media=[m]) for m in batch.media
        ]
        if ending:
            parts.append(Batch(rid, {}, ending, id=sub("end")))
        return parts
    if len(keys) + has_rest + bool(ending) > 1 and keys:
        parts = []
        if has_rest:
            parts.append(Batch(rid, {}, rest, batch.heartbeat, id=sub("u")))
        parts += [Batch(rid, {k: batch.metrics[k]}, id=sub("k/" + k)) for k in keys]
        if ending:
            parts.append(Batch(rid, {}, ending, id=sub("end")))
        return parts
    if keys:
        st, va, ts = batch.metrics[keys[0]]
        h = len(st) // 2
        if h == 0:
            return []
        return [
            Batch(rid, {keys[0]: (st[:h], va[:h], ts[:h])}, id=sub("a")),
            Batch(rid, {keys[0]: (st[h:], va[h:], ts[h:])}, id=sub("b")),
        ]
    fields = [*rest, *ending]
    if len(fields) > 1:
        return [
            Batch(rid, {}, {f: update[f]}, batch.heartbeat if i == 0 else None, id=sub(f))
            for i, f in enumerate(fields)
        ]
    return []


# the run fields a run's last batch sets; an ended run is frozen (store/_audit_sql.py)
_ENDING_FIELDS = frozenset({"status", "ended_at", "exit_code", "error"})


_DTYPE: list[Any] = []  # the structured dtype of a point, built on first use (numpy is lazy)


def _group(items: list[Point]) -> dict[str, tuple[Any, Any, Any]]:
    """Group buffered points by key into (steps, values, timestamps) numpy arrays.

    One C-level pass (``np.fromiter`` into a structured array) instead of Python-level
    transposition: this runs while the training thread wants the GIL.
    """
    import numpy as np

    items = _expand(items)
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
