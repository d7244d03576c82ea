"""Process lifecycle: the exit hooks that give every run its final status, and fork hooks.

Split from ``_run.py``: a Run records points; this module decides how a process's end
(normal exit, exception, ``sys.exit``, signals) and ``os.fork`` affect the runs it owns.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._run import Run

__all__ = ["RUNS", "exit_code", "format_exc", "hooks", "register_fork_hooks"]

_RUNS: weakref.WeakSet[Run] = weakref.WeakSet()


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def _format_exc(
    exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None
) -> str:
    import traceback

    text = "".join(traceback.format_exception(exc_type, exc, tb))
    return text[-8000:]


class _ExitHooks:
    """Gives every run the right final status however the interpreter ends.

    - uncaught exception -> ``failed`` (KeyboardInterrupt -> ``killed``); seen through
      ``sys.excepthook`` and, should user code replace that hook, ``sys.last_value``
    - ``sys.exit(n)`` on the main thread with n != 0 -> ``failed`` (MLflow would say FINISHED)
    - SIGTERM/SIGHUP -> ``killed``, then the signal's default action, so the exit status
      stays "killed by SIGTERM"; a handler installed before ``init()`` is chained
    - normal end, ``sys.exit(0)`` -> ``finished``
    - SIGKILL / power loss -> nothing runs here; readers mark the run ``crashed``.

    Installed once per process. Forked children inherit the hooks but never change the
    status of a run they did not create; they only flush the points they logged.
    """

    def __init__(self) -> None:
        self.installed = False
        self.exit_code: int | None = None
        self.exception: tuple[type[BaseException], BaseException, TracebackType | None] | None = (
            None
        )
        self.signal: int | None = None
        self.runs: list[Run] = []
        self._orig_exit: Any = None
        self._orig_excepthook: Any = None
        self._prev_handlers: dict[int, Any] = {}

    def install(self, run: Run) -> None:
        self.runs.append(run)
        if self.installed:
            return
        self.installed = True
        self._orig_exit = sys.exit
        self._orig_excepthook = sys.excepthook
        sys.exit = self._exit  # type: ignore[assignment]
        sys.excepthook = self._excepthook
        atexit.register(self._atexit)
        self._install_signals()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        import signal

        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                prev = signal.getsignal(sig)
                if prev is signal.SIG_IGN:
                    continue  # the user asked to ignore it: so do we
                self._prev_handlers[sig] = prev
                signal.signal(sig, self._on_signal)
            except (ValueError, OSError):
                pass

    def forget(self, run: Run) -> None:
        if run in self.runs:
            self.runs.remove(run)

    def _exit(self, code: object = None) -> None:
        if threading.current_thread() is threading.main_thread():
            self.exit_code = _exit_code(code)
        self._orig_exit(code)

    def _excepthook(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        self.exception = (exc_type, exc, tb)
        self._orig_excepthook(exc_type, exc, tb)

    def _on_signal(self, signum: int, frame: Any) -> None:
        import signal

        self.signal = signum
        prev = self._prev_handlers.get(signum)
        if callable(prev):
            # someone else handles it (a framework saving a checkpoint): let them decide;
            # if they exit, _atexit records "killed" because of self.signal
            prev(signum, frame)
            return
        for run in list(self.runs):
            if run._owner_pid == os.getpid() and not run._finished:
                run.finish(
                    "killed",
                    exit_code=128 + signum,
                    error=f"received {signal.Signals(signum).name}",
                    timeout=10.0,
                )
        self._flush_children(5.0)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _flush_children(self, timeout: float) -> None:
        for run in list(_RUNS):
            if run._owner_pid != os.getpid() and not run._finished:
                try:
                    run.finish(timeout=timeout)  # in a forked child: flush only
                except Exception:
                    pass

    def _atexit(self) -> None:
        self._flush_children(10.0)
        exception = self.exception
        if exception is None and sys.excepthook is not self._excepthook and not hasattr(sys, "ps1"):
            # user code replaced sys.excepthook after init(): the interpreter still
            # records an uncaught exception in sys.last_value before calling the hook
            last = getattr(sys, "last_value", None)
            if isinstance(last, BaseException):
                exception = (type(last), last, last.__traceback__)
        for run in list(self.runs):
            if run._finished or run._owner_pid != os.getpid():
                continue
            if exception is not None:
                et, ev, tb = exception
                if issubclass(et, KeyboardInterrupt):
                    run.finish("killed", exit_code=130, error="KeyboardInterrupt")
                else:
                    run.finish("failed", exit_code=1, error=_format_exc(et, ev, tb))
            elif self.signal is not None:
                run.finish(
                    "killed", exit_code=128 + self.signal, error=f"received signal {self.signal}"
                )
            elif self.exit_code:
                run.finish("failed", exit_code=self.exit_code)
            else:
                run.finish("finished", exit_code=0)


_hooks = _ExitHooks()


def _before_fork() -> None:
    # Wait until the writer has opened the store (a fork while another thread imports
    # SQLAlchemy leaves the child with half-initialised modules), and for any batch
    # being written to commit, so the child never inherits a connection mid-transaction.
    held = []
    for run in list(_RUNS):
        w = run._writer
        if run._owner_pid != os.getpid() or not w.is_alive():
            continue
        w.store_ready.wait(10.0)
        catching_up = w._catching_up  # replays other processes' outbox: imports, connections
        if catching_up is not None and catching_up.is_alive():
            catching_up.join(10.0)
        if w.write_lock.acquire(timeout=10.0):
            held.append(w)
    _fork_state["held"] = held


def _after_fork_parent() -> None:
    for w in _fork_state.pop("held", []):
        w.write_lock.release()


def _after_fork_child() -> None:
    for w in _fork_state.pop("held", []):
        w.write_lock.release()
    _hooks.runs = [r for r in _hooks.runs if r._owner_pid == os.getpid()]
    for run in list(_RUNS):
        run._after_fork_in_child()


_fork_state: dict[str, Any] = {}


def _register_fork_hooks() -> None:
    # Registered at the first Run, after `logging` is imported: before-fork hooks run
    # in reverse order of registration, and ours must run before logging's takes its
    # lock (the writer thread may need that lock to finish opening the store).
    if not _fork_state.get("registered"):
        _fork_state["registered"] = True
        os.register_at_fork(
            before=_before_fork,
            after_in_parent=_after_fork_parent,
            after_in_child=_after_fork_child,
        )


# names used by _run.py
RUNS = _RUNS
hooks = _hooks
register_fork_hooks = _register_fork_hooks
exit_code = _exit_code
format_exc = _format_exc
