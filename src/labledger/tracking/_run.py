"""Run: the object a training script logs to, and ``init()`` that creates it."""

from __future__ import annotations

import collections
import math
import operator
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._exceptions import LimitExceededError, RunFinishedError, UsageError
from .._limits import MAX_KEYS_PER_CALL as _MAX_KEYS_PER_CALL
from .._limits import MAX_METRIC_KEYS as _MAX_METRIC_KEYS
from .._limits import MAX_STEP as _MAX_STEP
from .._limits import (
    check_json,
    check_media,
    check_metric_keys,
    check_name,
    check_notes,
    check_seed,
    check_tags,
)
from .._names import new_run_id, new_run_name
from .._settings import setting
from .._values import check_key, coerce_metric, normalize_config
from ._config import Config, Summary
from ._lifecycle import RUNS as _RUNS
from ._lifecycle import exit_code as _exit_code
from ._lifecycle import format_exc as _format_exc
from ._lifecycle import hooks as _hooks
from ._lifecycle import register_fork_hooks as _register_fork_hooks

if TYPE_CHECKING:
    from .._media import Media as _Media
    from .._media import Pending as _Pending

__all__ = ["Run", "active_run", "init", "is_repro_target"]

_now = time.time
_FLOATS = frozenset({float})
_MAX_BUFFER = 100_000  # points held in memory before log() waits for the writer (~15 MB;
# also what a SIGKILL can lose of a loop that outruns the writer: ~0.1 s of points)
_STALL_S = 10.0  # a writer with no progress for this long is stuck: drop points instead of waiting
DEFAULT_FINISH_TIMEOUT = float(setting("LABLEDGER_FINISH_TIMEOUT") or "60")
_REGISTER_BUSY_MS = 250  # init() waits at most this for another writer's lock, then defers


def _lite_ok(uri: str) -> bool:
    """The stdlib write path serves file-backed SQLite stores (env LABLEDGER_LITE=off: never)."""
    from ..store import scheme_family

    return (
        scheme_family(uri) == "sqlite"
        and ":memory:" not in uri
        and (setting("LABLEDGER_LITE") or "").lower() not in ("0", "off", "false", "no")
    )


def _active_runs() -> list[Run]:
    return [r for r in list(_RUNS) if not r._finished and r._owner_pid == os.getpid()]


def _record_seed_on_active_runs(
    seed: int, deterministic: bool, seeded: list[str], target: Any = None
) -> None:
    """Record a seeding on the run it was for, never on another run that has its own seed.

    ``init(seed=...)`` names its run (``target``). A plain ``seed_everything`` call (or
    torch seeded on import) goes to the newest active run, to runs with that same seed
    (what was seeded grows) and to active runs without a seed; a parent's seed is never
    replaced by its child's.
    """
    if target is not None:
        if isinstance(target, Run) and not target._finished:
            target._record_seed(seed, deterministic, seeded)
        return
    runs = _active_runs()
    newest = max(runs, key=lambda r: r.created_at) if runs else None
    for run in runs:
        if run is newest or run._seed is None or run._seed == seed:
            run._record_seed(seed, deterministic, seeded)


def active_run() -> Run | None:
    """The most recently started run of this process that is not finished, else None.

    Framework integrations log to it when they are not given a run.
    """
    runs = _active_runs()
    return max(runs, key=lambda r: r.created_at) if runs else None


class Run:
    """One tracked execution of a training script.

    Create it with :func:`labledger.init`. ``log()`` only appends to an in-memory
    buffer; a background :class:`~labledger.tracking._writer.Writer` batches it into the store.
    """

    def __init__(
        self,
        *,
        project: str,
        name: str | None,
        config: Any,
        tags: Iterable[str] | None,
        notes: str | None,
        store_uri: str,
        artifacts_uri: str | None,
        flush_interval: float,
        capture: bool,
        parent_run_id: str | None = None,
        seed: int | None = None,
        group: str | None = None,
        job_type: str | None = None,
    ) -> None:
        from .._procinfo import host_id, process_token

        self.id = new_run_id()
        self.project = project
        self.name = check_name("run name", name) if name is not None else new_run_name()
        self.store_uri = store_uri
        self.artifacts_uri = artifacts_uri
        self.created_at = _now()
        self.parent_run_id = parent_run_id
        self.group = group
        self.job_type = job_type
        self.status = "running"
        self._finished = False
        self._owner_pid = os.getpid()
        self._step = 0
        self._known: set[str] = set()
        self._buf: collections.deque[tuple[Any, int, Any, float]] = collections.deque()
        self._append = self._buf.append
        self._extend = self._buf.extend
        # rich results logged so far: per (key, step) (their seq), per step, in all
        self._media_seq: dict[tuple[str, int], int] = {}
        self._media_steps: dict[int, int] = {}
        self._media_total = 0
        self._lock = threading.RLock()
        self._seed: int | None = seed
        self._seed_info: dict[str, Any] | None = None
        self._tags = check_tags(sorted({str(t) for t in (tags or [])}))
        self._datasets: list[dict[str, Any]] = []
        self._artifacts: list[str] = []  # paths logged as artifacts by this process (console panel)
        self._notes = check_notes(notes)
        self._author: str | None = None
        self._cwd = os.getcwd()
        self._exc_info: tuple[str, str] | None = None
        # called by finish() with its timeout before the writer stops (e.g. pending artifact uploads)
        self._before_finish: list[Callable[[float | None], None]] = []
        cfg = normalize_config(config) if config is not None else {}
        check_json("config", cfg)
        self.config = Config(cfg, lambda d: self._writer.update_run(config=d), self._guard)
        self.summary = Summary(
            self._last_value,
            lambda: set(self._known),
            lambda d: self._writer.update_run(summary=d),
            self._guard,
        )
        record = {
            "id": self.id,
            "project": project,
            "name": self.name,
            "status": "running",
            "created_at": self.created_at,
            "heartbeat_at": self.created_at,
            "host": host_id(),
            "pid": self._owner_pid,
            "pid_start": process_token(),
            "config": cfg,
            "tags": self._tags,
            "notes": notes,
            "seed": seed,
            "parent_run_id": parent_run_id,
            "group": group,
            "job_type": job_type,
            "author": self.author,  # git user.email from git's config files, else the OS user
        }
        self._record = record
        from ._writer import Writer

        registered = self._register_now(record)
        outbox, outbox_run = (None, None) if registered is not None else self._to_outbox(record)
        self._writer = Writer(
            self.id,
            self._buf,
            self._open_store,
            record,
            interval=flush_interval,
            spill_uri=store_uri,
            store=registered,
            outbox=outbox,
            outbox_run=outbox_run,
        )
        self._capture_thread: threading.Thread | None = None
        self._sampler: Any = None  # capture.system.SystemSampler, started by init()
        self._warned_drop = False
        _register_fork_hooks()
        _RUNS.add(self)
        self._writer.start()
        # capture starts at the end of init() (its imports would slow init()'s own work)

    # -- internals -------------------------------------------------------------------

    def _guard(self) -> None:
        if self._finished:
            raise RunFinishedError(self.id, self.status)

    def _open_store(self) -> Any:
        if _lite_ok(self.store_uri):
            from ..store import LiteStore, NeedsMigration

            try:
                return self._media_where(LiteStore(self.store_uri))
            except NeedsMigration:
                pass  # an older schema (or a stale snapshot): Alembic, through SqlStore
        from ..store import open_store

        if self._record.get("author") is None:
            self._record["author"] = self.author
        return self._media_where(open_store(self.store_uri))

    def _media_where(self, store: Any) -> Any:
        """``store``, keeping rich results' bytes in the run's artifacts location (a
        database store puts them in a blob store; a server keeps its own)."""
        if self.artifacts_uri:
            from ..store import MediaBlobOwner

            if isinstance(store, MediaBlobOwner):
                store.use_artifacts(self.artifacts_uri)
        return store

    def _register_now(self, record: dict[str, Any]) -> Any:
        """Put the run in an embedded store before init() returns; the store, or None.

        stdlib sqlite3 only (no SQLAlchemy): a few milliseconds. Waits at most
        _REGISTER_BUSY_MS for another process's write lock; anything unusual (a busy
        or older store) is left to the writer thread, which retries and reports.
        """
        if not _lite_ok(self.store_uri):
            return None
        try:
            from ..store import LiteStore

            lite = LiteStore(self.store_uri, busy_ms=_REGISTER_BUSY_MS, synchronous="NORMAL")
        except Exception:
            return None
        try:
            lite.create_run(record)
            lite.set_busy(60_000)
            self._media_where(lite)
        except Exception:
            lite.close()
            return None
        return lite

    def _to_outbox(self, record: dict[str, Any]) -> tuple[Any, Any]:
        """Put the run record in a new outbox session before init() returns: (session, file).

        For a store init() could not write at once (the server, PostgreSQL, a busy SQLite
        file): a process killed at any moment after init() then leaves a run that
        ``labledger sync`` (or the next process's catch-up) creates, ``crashed`` by the
        next reader. One fsynced file, stdlib only. (None, None) when the disk refuses:
        the writer thread creates the run as before.
        """
        from ..remote import run_record
        from ..remote.spool import Spool

        session = Spool()
        try:
            # not fsynced here (a millisecond or more on a busy disk): a SIGKILL keeps it;
            # the writer thread fsyncs it at once
            return session, session.put(run_record(self.store_uri, record), durable=False)
        except (OSError, ValueError) as exc:
            session.close()
            warnings.warn(
                f"labledger: could not keep run {self.id[:8]} in the outbox {session.root} "
                f"({exc}); it is created when the store answers",
                RuntimeWarning,
                stacklevel=4,
            )
            return None, None

    @property
    def author(self) -> str:
        """Who made the run: git ``user.email``, else the OS user (a server records the token's user)."""
        if self._author is None:
            from .._author import local_author

            self._author = local_author(self._cwd)
        return self._author

    @property
    def notes(self) -> str | None:
        return self._notes

    @notes.setter
    def notes(self, value: str | None) -> None:
        """Set the run's notes; stored as an edit event (also after ``finish()``)."""
        if value is not None and not isinstance(value, str):
            raise UsageError(f"notes must be a string or None, not {type(value).__name__}")
        self._notes = value
        if not self._finished:
            self._writer.update_run(notes=value)
        else:
            self._edit_after_finish(notes=value or "")

    def _edit_after_finish(self, **changes: Any) -> None:
        # the writer has stopped: edit through the store directly (an edit event)
        try:
            store = self._open_store()
            try:
                store.edit_run(self.id, actor=self.author, **changes)
            finally:
                store.close()
        except Exception as exc:
            warnings.warn(
                f"labledger: could not edit run {self.id[:8]}: {exc}", RuntimeWarning, stacklevel=3
            )

    def store(self, timeout: float | None = 30.0) -> Any:
        """The opened store (waits for the writer thread to open it)."""
        if not self._writer.store_ready.wait(timeout):
            raise TimeoutError("the store was not opened in time")
        if self._writer.store is None:
            raise self._writer.store_error or RuntimeError("store unavailable")
        return self._writer.store

    def unreachable(self) -> bool:
        """True while the run's writes wait in its outbox (the store is not answering):
        the artifact uploader then defers an upload instead of retrying it."""
        return self._writer.offline()

    def defer_artifact(self, **fields: Any) -> None:
        """Keep one artifact upload in the run's outbox, after its batches (the
        ``DeferredUploads`` protocol of ``labledger.artifacts``); ``fields`` are those of
        ``labledger.remote.artifact_record``. The writer uploads it once the server
        answers, else ``labledger sync`` does."""
        from ..remote import artifact_record

        self._writer.defer(artifact_record(uri=self.store_uri, **fields))

    def defer_blob(self, data: bytes) -> str:
        """Keep ``data`` (a captured diff or notebook) in the run's outbox for a server that
        does not answer now; return its sha256 (what the run's record names)."""
        import hashlib

        from ..remote import blob_record

        self._writer.defer(blob_record(self.store_uri, data))
        return hashlib.sha256(data).hexdigest()

    def _start_capture(self) -> None:
        from ..capture import CaptureProgress

        # found now: CPython deletes __main__.__file__ once the script's last line ran,
        # before atexit (a run without `with` is finished from atexit); as
        # capture.platform.entry_script() finds it, without importing that module here
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        script = (
            os.path.realpath(main_file)
            if isinstance(main_file, str) and os.path.isfile(main_file)
            else None
        )
        progress = CaptureProgress(lambda env: self._writer.update_run(env=env))
        self._capture_progress: Any = progress

        def work() -> None:
            try:
                from pathlib import Path

                from ..capture import collect

                collect(self, script=Path(script) if script else None, progress=progress)
            except Exception as exc:
                progress.publish(None, {"capture_error": f"{type(exc).__name__}: {exc}"})

        self._capture_thread = threading.Thread(target=work, name="labledger-capture", daemon=True)
        self._capture_thread.start()

    def _wait_capture(self, timeout: float | None) -> dict[str, Any]:
        """Wait (bounded) for capture; the ``env`` fields saying what is missing, if any.

        The bound is LABLEDGER_CAPTURE_TIMEOUT (60 s), or ``finish(timeout=...)`` when
        that is shorter (a SIGTERM handler passes 10 s: the scheduler's grace is short).
        """
        thread = self._capture_thread
        if thread is None:
            return {}
        from ..capture import capture_timeout, warn

        limit = capture_timeout()
        if timeout is not None:
            limit = min(limit, max(0.0, timeout))
        thread.join(timeout=limit)
        missing: list[str] = self._capture_progress.close()
        if not missing:
            return {}
        warn(
            f"environment capture of run {self.id[:8]} did not finish within {limit:.0f}s; "
            f"not recorded: {', '.join(missing)} (env.missing; LABLEDGER_CAPTURE_TIMEOUT)"
        )
        return {"missing": missing}

    def _after_fork_in_child(self) -> None:
        # The child inherited a copy of the buffer that the parent will write itself:
        # drop it, and give the child its own writer that only appends metrics (no
        # status, no heartbeat, no run fields: the parent owns the run record).
        self._buf.clear()
        self._lock = threading.RLock()
        if self._finished or self._owner_pid == os.getpid():
            return
        from ._writer import Writer

        latest = self._writer.latest
        self._writer = Writer(
            self.id,
            self._buf,
            self._open_store,
            None,
            interval=self._writer.interval,
            child=True,
            spill_uri=self._writer.spill_uri,
        )
        self._writer.latest.update(latest)
        self._child_writer_started = False

    def _last_value(self, key: str) -> Any:
        for item in reversed(list(self._buf)):
            k = item[0]
            if k == key:
                return item[2]
            if type(k) is tuple and key in k:
                return item[2][k.index(key)]
        latest = self._writer.latest.get(key)
        if latest is not None:
            return latest[1]
        raise KeyError(key)

    def _record_seed(self, seed: int, deterministic: bool, seeded: list[str]) -> None:
        self._seed = seed
        self._seed_info = {"seed": seed, "deterministic": deterministic, "seeded": seeded}
        self._writer.update_run(seed=seed, env={"seed": dict(self._seed_info)})

    def record_seed(self, seed: int, source: str = "user") -> bool:
        """Record a seed something else already applied (a framework's ``seed_everything``,
        a ``random_state``, a sampler's seed) as this run's seed, without seeding anything.

        ``source`` says where it came from (``env.seed.seeded``). A seed set by
        ``labledger.seed_everything()``/``init(seed=...)`` is kept when it is the same.
        Returns False (and records nothing) for a value that is not a seed in
        ``[0, 2**32)``: a framework's odd seed never raises into training.
        """
        self._guard()
        if isinstance(seed, bool):
            return False
        try:
            seed = int(seed.__index__())
        except (AttributeError, TypeError):
            return False
        if not 0 <= seed < 2**32:
            return False
        info = getattr(self, "_seed_info", None)
        if info is not None and info.get("seed") == seed:
            if source not in info["seeded"]:
                self._record_seed(seed, bool(info["deterministic"]), [*info["seeded"], source])
            return True
        self._record_seed(seed, False, [source])
        return True

    def _ensure_child_writer(self) -> None:
        if not getattr(self, "_child_writer_started", True):
            self._child_writer_started = True
            self._writer.start()
            if "multiprocessing" in sys.modules:
                # multiprocessing children leave through os._exit (no atexit), after
                # running these finalizers: flush the child's points there.
                from multiprocessing import util

                util.Finalize(self, self._writer.stop, args=(10.0,), exitpriority=100)

    # -- public API ------------------------------------------------------------------

    def log(
        self, data: Mapping[str, Any], step: int | None = None, timestamp: float | None = None
    ) -> None:
        """Record metric values at ``step`` (auto-incremented when omitted).

        Besides numbers, ``data`` may hold rich results (``labledger.Image``, ``Table``,
        ``ConfusionMatrix``, ``Curve``, ``Histogram``, ``Text``): their limits are checked
        here (:class:`LimitExceededError`), their encoding happens on the writer thread.

        ``timestamp`` (seconds since the epoch, default now) is the wall time recorded
        with the points: importers and replayed logs pass the original time.
        Only appends to an in-memory buffer. Raises ``TypeError`` for a non-numeric
        value, :class:`InvalidKeyError` for a bad key, :class:`LimitExceededError` for
        a call of more than ``MAX_KEYS_PER_CALL`` keys or one that would give the run
        more than ``MAX_METRIC_KEYS`` distinct keys (nothing of that call is kept),
        :class:`RunFinishedError` after ``finish()``.
        """
        if self._finished:
            raise RunFinishedError(self.id, self.status)
        if step is None:
            step = self._step
            if step > _MAX_STEP:
                raise LimitExceededError(
                    "step", f"counter passed {_MAX_STEP} (int64); pass step= explicitly"
                )
            self._step = step + 1
        else:
            step = self._check_step(step)
        t = _now() if timestamp is None else _check_timestamp(timestamp)
        known = self._known
        try:
            items = data.items()
        except AttributeError:
            raise TypeError(
                f"log() takes a dict of metric values, not {type(data).__name__}"
            ) from None
        if len(data) == 1:
            for k, v in items:
                if k not in known:
                    self._learn_key(k)
                if type(v) is not float:
                    v = (
                        self._media(k, step, v)
                        if getattr(type(v), "_labledger_media", False)
                        else coerce_metric(k, v)
                    )
                self._append((k, step, v, t))
        elif len(data) > _MAX_KEYS_PER_CALL:
            check_metric_keys(len(known), 0, len(data))
        elif known.issuperset(data) and _FLOATS.issuperset(map(type, data.values())):
            # the common case: known keys, plain float values; checks run in C
            # one entry for the whole call (see _writer.Point): one tuple, not one per key
            self._append((tuple(data), step, tuple(data.values()), t))
        else:
            if len(known) + len(data) > _MAX_METRIC_KEYS:  # before any key is learned
                check_metric_keys(len(known), sum(k not in known for k in data), len(data))
            out = []
            for k, v in items:
                if k not in known:
                    self._learn_key(k)
                if type(v) is not float:
                    v = (
                        self._media(k, step, v)
                        if getattr(type(v), "_labledger_media", False)
                        else coerce_metric(k, v)
                    )
                out.append((k, step, v, t))
            self._extend(out)
        if len(self._buf) > _MAX_BUFFER:
            self._backpressure()

    def _media(self, key: str, step: int, value: _Media) -> _Pending:
        """Check a rich result against the limits and give it its place; the writer
        thread encodes it (see ``_media.py``)."""
        from .._media import Pending  # loaded with the first rich result

        at_step = self._media_steps.get(step, 0)
        check_media(key, value.nbytes(), value.caption, at_step, self._media_total)
        seq = self._media_seq.get((key, step), 0)
        self._media_seq[(key, step)] = seq + 1
        self._media_steps[step] = at_step + 1
        self._media_total += 1
        self._writer.media_logged = True
        return Pending(value, seq)

    def _check_step(self, step: Any) -> int:
        if isinstance(step, bool) or not hasattr(step, "__index__"):
            raise TypeError(f"step must be an int, not {type(step).__name__}")
        value: int = operator.index(step)
        if not 0 <= value <= _MAX_STEP:
            raise LimitExceededError("step", f"must be >= 0 and < 2**63, got {value}")
        if value >= self._step:
            self._step = value + 1
        return value

    def _learn_key(self, key: Any) -> None:
        check_key(key)
        if len(self._known) >= _MAX_METRIC_KEYS:
            check_metric_keys(len(self._known), 1, 1)
        self._known.add(key)
        if self._owner_pid != os.getpid():
            self._ensure_child_writer()

    def _log_internal(self, data: Mapping[str, float], step: int) -> None:
        """Append without touching the user's step counter (system metrics sampler)."""
        if self._finished:
            return
        t = _now()
        for k, v in data.items():
            self._known.add(k)
            self._append((k, step, float(v), t))

    def _backpressure(self) -> None:
        # The writer is far behind. While it makes progress, wait for it (bounded memory);
        # when it is stuck (store down), drop the oldest points rather than stall training.
        w = self._writer
        if self._owner_pid != os.getpid():
            self._ensure_child_writer()
        while len(self._buf) > _MAX_BUFFER // 2:
            if w.fatal is not None:  # tracking stopped (said once): keep memory bounded
                w.drop_oldest(0)
                return
            if w.failing or time.monotonic() - w.last_progress > _STALL_S or not w.is_alive():
                moved = w.spill_to_disk()
                if moved:
                    if not self._warned_drop:
                        self._warned_drop = True
                        warnings.warn(
                            f"labledger: the store of run {self.id[:8]} is not accepting writes; "
                            f"{moved} unwritten points were saved to {w.spill_dir} "
                            "(run `labledger sync` once the store is back)",
                            RuntimeWarning,
                            stacklevel=3,
                        )
                    return
                # the disk refused too: drop the oldest points rather than exhaust memory
                n = w.drop_oldest(_MAX_BUFFER // 2)
                if n and not self._warned_drop:
                    self._warned_drop = True
                    warnings.warn(
                        f"labledger: the store of run {self.id[:8]} is not accepting writes; "
                        f"dropped the {n} oldest unwritten points to bound memory "
                        f"(more may follow, counted in the run's writer)",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                return
            time.sleep(0.005)

    @property
    def step(self) -> int:
        """The step the next ``log()`` without ``step=`` will use."""
        return self._step

    @property
    def tags(self) -> list[str]:
        return list(self._tags)

    def add_tags(self, *tags: str) -> None:
        self._tags = check_tags(sorted(set(self._tags) | {str(t) for t in tags}))
        if self._finished and self._owner_pid == os.getpid():
            self._edit_after_finish(add_tags=[str(t) for t in tags])
        else:
            self._writer.update_run(tags=self._tags)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything logged so far is in the store; False on timeout.

        ``timeout`` defaults to LABLEDGER_FINISH_TIMEOUT (60 s); a store that fails
        every write makes it return False sooner (LABLEDGER_FAILING_GRACE, 10 s).
        """
        if self._owner_pid != os.getpid():
            if not self._buf and not getattr(self, "_child_writer_started", True):
                return True
            self._ensure_child_writer()
        return self._writer.flush(DEFAULT_FINISH_TIMEOUT if timeout is None else timeout)

    def finish(
        self,
        status: str | None = None,
        *,
        exit_code: int | None = None,
        error: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """End the run: flush every point, then record its final status (default ``finished``).

        Returns once everything is durable in the store, or after ``timeout`` seconds
        (default 60, env LABLEDGER_FINISH_TIMEOUT) with a warning saying what is pending.
        """
        with self._lock:
            if self._finished:
                return
            if self._owner_pid != os.getpid():
                # a forked child only flushes its own points; the parent owns the run
                if self._buf or getattr(self, "_child_writer_started", True):
                    self._ensure_child_writer()
                    self._writer.stop(DEFAULT_FINISH_TIMEOUT if timeout is None else timeout)
                return
            status = status or "finished"
            if status not in ("finished", "failed", "killed", "crashed", "pruned"):
                raise UsageError(
                    f"status must be finished, failed, killed, crashed or pruned, not {status!r}"
                )
            if self._sampler is not None:  # last system/* sample, while log is still open
                self._sampler.stop()
            self._finished = True
            self.status = status
            missing = self._wait_capture(timeout)
            for hook in list(self._before_finish):
                try:
                    hook(timeout)
                except Exception as exc:  # a hook must never stop the run from finishing
                    warnings.warn(f"labledger: {exc}", RuntimeWarning, stacklevel=2)
            from ..capture import finalize  # end time, runtime and exit status

            extra = finalize(self, status=status, exit_code=exit_code)
            extra.update(missing)
            uploads = getattr(self, "_artifact_uploader", None)
            pending_uploads = uploads.unregistered() if uploads is not None else []
            if pending_uploads:  # sealed with the run: only these may be registered late
                extra["pending_artifacts"] = pending_uploads
            update: dict[str, Any] = {"status": status, "ended_at": _now(), "exit_code": exit_code}
            if extra:
                update["env"] = extra
            if error:
                update["error"] = error
            self._writer.update_run(**update)
            w = self._writer
            limit = DEFAULT_FINISH_TIMEOUT if timeout is None else timeout
            if timeout is None and w.patience is not None:
                # a tracking server: wait while the outbox drains (LABLEDGER_SYNC_TIMEOUT
                # without progress ends the wait sooner)
                limit = max(limit, w.patience)
            if not w.stop(limit):
                if w.fatal is not None:  # said when it happened; nothing is kept
                    _hooks.forget(self)
                    return
                moved = w.spill_to_disk()
                session = w.outbox.dir if w.outbox is not None else None
                if w.patience is not None and session is not None and w.spill_dir is not None:
                    from ..remote import left_message

                    message = left_message(self.id, self.store_uri, session, w.grace)
                    w.release_outbox()
                    warnings.warn(message, RuntimeWarning, stacklevel=2)
                    _hooks.forget(self)
                    return
                w.release_outbox()
                if moved or self._writer._updates_done >= self._writer._updates_seq:
                    warnings.warn(
                        f"labledger: the store of run {self.id[:8]} did not accept writes within "
                        f"{limit:.0f}s; {moved} points and the final status were saved to "
                        f"{self._writer.spill_dir} (run `labledger sync` once the store is back)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    _hooks.forget(self)
                    return
                pending = self._writer.pending_points()
                warnings.warn(
                    f"labledger: run {self.id[:8]} finished but {pending} points and its final "
                    f"status are not yet written after {limit:.0f}s; they stay queued",
                    RuntimeWarning,
                    stacklevel=2,
                )
            _hooks.forget(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("killed", exit_code=130, error="KeyboardInterrupt")
        elif issubclass(exc_type, SystemExit):
            code = _exit_code(exc.code if isinstance(exc, SystemExit) else None)
            self.finish("finished" if code == 0 else "failed", exit_code=code)
        else:
            self.finish("failed", exit_code=1, error=_format_exc(exc_type, exc, tb))

    def __repr__(self) -> str:
        return f"<Run {self.id[:8]} {self.project}/{self.name} {self.status}>"

    def _repr_html_(self) -> str:
        """The run as an HTML table in Jupyter (every value escaped)."""
        from .._html import run_html

        summary: dict[str, Any] = {}
        for key in list(self.summary):
            try:
                summary[key] = self.summary[key]
            except KeyError:
                continue
        return run_html(
            {
                "id": self.id,
                "project": self.project,
                "name": self.name,
                "status": self.status,
                "created_at": self.created_at,
                "group": self.group,
                "job_type": self.job_type,
                "parent_run_id": self.parent_run_id,
                "tags": self.tags,
                "config": dict(self.config),
                "summary": summary,
            }
        )

    # -- artifacts and datasets (see labledger.artifacts and labledger.capture.data) --

    def log_artifact(
        self, path: str | os.PathLike[str], name: str | None = None, kind: str | None = None
    ) -> Any:
        """Store a file or directory as a new version of the artifact ``name``."""
        from ..artifacts import log_artifact

        handle = log_artifact(self, path, name=name, kind=kind)
        self._artifacts.append(os.fspath(path))
        return handle

    def log_model(self, path: str | os.PathLike[str], name: str = "model") -> Any:
        """Store model weights (any format, file or directory) as artifact ``name`` of kind ``model``."""
        from ..artifacts import log_artifact

        handle = log_artifact(self, path, name=name, kind="model")
        self._artifacts.append(os.fspath(path))
        return handle

    def use_artifact(self, ref: str) -> Any:
        """Record that this run consumes artifact ``name:alias-or-version``; return a local path."""
        from ..artifacts import use_artifact

        return use_artifact(self, ref)

    @property
    def seed(self) -> int | None:
        """The run's seed (``init(seed=...)``, ``seed_everything``, or a framework's), else None."""
        return self._seed

    @property
    def datasets(self) -> list[dict[str, Any]]:
        """The datasets recorded by this process (``log_dataset`` and the integrations)."""
        return [dict(d) for d in self._datasets]

    def log_dataset(self, path: Any, name: str | None = None) -> dict[str, Any]:
        """Fingerprint a data file or directory, or data in memory, as an input of this run.

        ``path``: a file or directory (sha256 over its files), or data in memory: a numpy
        array, pandas frame, torch tensor, Hugging Face dataset, a torch ``DataLoader``
        or ``Dataset`` over those (or over a file), or a tuple such as ``(X, y)``
        (``capture.data.fingerprint_data``: each object hashed once), or a fingerprint
        made already (a ``datasets`` entry of another run). A dataset of the same
        ``name`` (``train``, ``validation``, ``test`` ...) is replaced.
        """
        from ..capture.data import fingerprint, fingerprint_data

        if isinstance(path, (str, os.PathLike)):
            info = fingerprint(path, name=name)
        elif isinstance(path, Mapping) and isinstance(path.get("sha256"), str):
            # a fingerprint made already (another run's ``datasets`` entry)
            info = {**dict(path), "name": name or str(path.get("name") or "data")}
            check_json("datasets", [info])
        else:
            found = fingerprint_data(path, name or "data")
            if found is None:
                raise UsageError(
                    f"log_dataset: cannot fingerprint a {type(path).__name__}; pass a path, "
                    "an array, a frame, a tensor or a dataset"
                )
            info = found
        if any(d == info for d in self._datasets):
            return info  # recorded already (an integration sees the same data every epoch)
        self._datasets = [d for d in self._datasets if d.get("name") != info["name"]] + [info]
        self._writer.update_run(datasets=list(self._datasets))
        return info


def is_repro_target(config: Any) -> bool:
    """Whether a run with ``config`` is the one ``labledger repro`` is re-running.

    True outside ``repro``, and when the original's config digest was not passed or the
    config cannot be compared (none given at ``init()``). A script that trains a grid can
    call it to skip the configurations repro does not need.
    """
    want = setting("LABLEDGER_REPRO_CONFIG")
    if not want or not setting("LABLEDGER_PARENT_RUN") or config is None:
        return True
    from .._values import config_digest

    try:
        return config_digest(normalize_config(config)) == want
    except Exception:  # a bad config raises later, at the call site
        return True


def init(
    project: str | None = None,
    *,
    name: str | None = None,
    config: Any = None,
    tags: Iterable[str] | None = None,
    notes: str | None = None,
    seed: int | None = None,
    store: str | os.PathLike[str] | None = None,
    artifacts: str | os.PathLike[str] | None = None,
    capture: bool | None = None,
    flush_interval: float = 0.1,
    console: bool | None = None,
    parent_run_id: str | None = None,
    system_metrics: bool | float | None = None,
    group: str | None = None,
    job_type: str | None = None,
) -> Run:
    """Start a run and return it; also usable as ``with labledger.init(...) as run:``.

    Returns in milliseconds: the store is opened and the environment captured in
    background threads. Problems the user must fix (an unwritable store path, a file
    that is not a store, strict-mode violations) raise here.

    ``project`` defaults to env LABLEDGER_PROJECT, else the name of the git repository
    or current directory. ``store`` defaults to env LABLEDGER_URI, else an embedded
    SQLite store in ``.labledger/`` at the git root. ``artifacts`` defaults to env
    LABLEDGER_ARTIFACTS_URI, else a folder beside the store. ``capture=False`` (or env
    LABLEDGER_CAPTURE=off) skips environment capture. ``system_metrics`` samples
    ``system/*`` series every N seconds (True = 10 s, False = off; default env
    LABLEDGER_SYSTEM_METRICS=off|<seconds>, else 10 s when capture is on).

    ``group`` gathers related runs (a sweep, a study; default env LABLEDGER_GROUP),
    ``job_type`` says what the run does (``train``, ``eval``, ``trial``), and
    ``parent_run_id`` makes this run a child of another (an Optuna trial of its study).
    """
    from ..store import Location, default_root, precheck_sqlite

    location = Location.of(store)  # resolved and parsed once
    uri = location.uri
    if location.sqlite_file is not None:
        precheck_sqlite(location.sqlite_file, uri=uri)
    if project is None:
        project = setting("LABLEDGER_PROJECT") or default_root().parent.name or "default"
    check_key(project)
    check_seed(seed)
    if (override := setting("LABLEDGER_SEED_OVERRIDE") or "").isdigit():
        seed = int(override)  # `labledger replicate` runs the same code with a new seed
    if group is None:
        group = setting("LABLEDGER_GROUP") or None
    for label, value in (
        ("group", group),
        ("job_type", job_type),
        ("parent_run_id", parent_run_id),
    ):
        if value is not None and (not isinstance(value, str) or not value or len(value) > 250):
            raise UsageError(f"{label} must be a non-empty string of at most 250 characters")
    if setting("LABLEDGER_PARENT_RUN"):
        # inside `labledger repro`: every run the re-run makes is a reproduction
        # (job_type "repro", left out of leaderboards, importance, counts and export)
        from ..store import REPRO_JOB_TYPE

        job_type = REPRO_JOB_TYPE
        if parent_run_id is None and is_repro_target(config):
            # linked to its original; in a process that makes several runs only the
            # one with the original's config is linked
            parent_run_id = setting("LABLEDGER_PARENT_RUN") or None
    art = os.fspath(artifacts) if artifacts is not None else setting("LABLEDGER_ARTIFACTS_URI")
    if capture is None:
        capture = (setting("LABLEDGER_CAPTURE") or "").lower() not in (
            "0",
            "off",
            "false",
            "no",
        )
    if capture:
        from ..capture import strict_check

        strict_check(seed=seed)
    from ..capture.system import resolve_interval

    sample_every = resolve_interval(system_metrics, capture=capture)
    from ..capture.seeds import current_seed_info, on_seed, seed_everything

    info = current_seed_info() if seed is None else None
    run = Run(
        project=project,
        name=name,
        config=config,
        tags=tags,
        notes=notes,
        store_uri=uri,
        artifacts_uri=art,
        flush_interval=flush_interval,
        capture=capture,
        parent_run_id=parent_run_id,
        seed=seed if seed is not None else (info or {}).get("seed"),
        group=group,
        job_type=job_type,
    )
    _hooks.install(run)
    on_seed(_record_seed_on_active_runs)
    if seed is not None:
        seed_everything(seed, _target=run)
    else:
        if info:
            run._record_seed(info["seed"], info["deterministic"], info["seeded"])
    if console is not False and capture:
        try:
            from .console import maybe_start_console

            maybe_start_console(run, force=console)
        except ImportError:
            pass
    # background work last: their imports then never compete with init()'s own
    if sample_every is not None:
        from ..capture.system import SystemSampler

        run._sampler = SystemSampler(run, sample_every)
        run._sampler.start()
    if capture:
        run._start_capture()
    return run


def _check_timestamp(timestamp: Any) -> float:
    """A finite wall time in seconds (a bool, a string or NaN is a caller's bug)."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        raise TypeError(
            f"timestamp must be seconds since the epoch, not {type(timestamp).__name__}"
        )
    t = float(timestamp)
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"timestamp must be finite and >= 0, got {timestamp!r}")
    return t
