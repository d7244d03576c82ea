"""The outbox's directory layout: what a store has not accepted yet, durably on disk.

One record format (:mod:`._outbox`) for runs, batches, blobs and artifacts, whatever the
store (stores keep nothing themselves; they raise): each run's process (``init()`` and
its writer thread) owns one *session* folder under the spool root and holds an
exclusive ``flock`` on it while it lives.
A request is one JSON file, written to a temporary name, fsynced, renamed into place
and the folder fsynced, so after a crash a file is either complete or absent. Files
are named by time and sequence, so replaying them in name order keeps each run's
order (its creation before its batches). ``labledger sync`` replays the sessions
whose owner is gone (their lock is free).

Root: ``LABLEDGER_SPOOL_DIR``, else ``$XDG_CACHE_HOME/labledger/spool``, else
``~/.cache/labledger/spool``.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from .._settings import setting

__all__ = [
    "SendResult",
    "Spool",
    "SpoolEntry",
    "default_spool_dir",
    "locked_sessions",
    "session_dirs",
]

_LOCK = ".lock"
REJECTED = "rejected"


class SendResult:
    """What became of one spool record sent to the server."""

    OK = "ok"
    RETRY = "retry"  # server down, 5xx, 408/425/429: keep and retry later
    AUTH = "auth"  # 401, or 403 other than not_owner: the token; kept, never waited for
    REJECTED = "rejected"  # the server refused it for good (4xx)


def default_spool_dir() -> Path:
    env = setting("LABLEDGER_SPOOL_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "labledger" / "spool"


class SpoolEntry(NamedTuple):
    """One spooled request: replay ``method path`` on ``uri`` with ``body``.

    A named tuple, not a dataclass: ``init()`` imports this module, and ``dataclasses``
    (with ``inspect``) costs milliseconds there."""

    path: Path
    record: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.record.get("kind", "?"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """One session folder of the spool (created on first write)."""

    def __init__(
        self, root: str | os.PathLike[str] | None = None, session: str | None = None
    ) -> None:
        self.root = Path(root) if root is not None else default_spool_dir()
        # os.uname and os.urandom: socket and uuid cost init() several ms to import
        self.session = session or f"{os.uname().nodename}-{os.getpid()}-{os.urandom(4).hex()}"
        self.dir = self.root / self.session
        self._lock_fh: IO[str] | None = None
        self._seq = itertools.count()
        # the writer thread, the artifact uploader and finish() share a session: a write
        # and the release (which removes an empty folder) never interleave
        self._guard = threading.RLock()

    def _ensure(self) -> None:
        if self._lock_fh is not None:
            return
        if self.dir.is_dir():  # released earlier and taken again (a spill after finish())
            fh = open(self.dir / _LOCK, "a+")  # noqa: SIM115 - held for the owner's lifetime
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                raise
            self._lock_fh = fh
            return
        # a new session appears locked: made under a hidden name, locked, then renamed,
        # so `sync` or another process's catch-up never sees it empty and unlocked
        self.root.mkdir(parents=True, exist_ok=True)
        new = self.root / f".new-{self.session}"
        new.mkdir()
        fh = open(new / _LOCK, "a+")  # noqa: SIM115 - held for the owner's lifetime
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(new, self.dir)
        self._lock_fh = fh

    def put(self, record: dict[str, Any], *, durable: bool = True) -> Path:
        """Write ``record`` (fsynced unless ``durable=False``); return its file.

        The file appears whole or not at all (written under a temporary name, then
        renamed). ``durable=False`` skips the fsyncs: the record survives the process
        being killed (the kernel has it), not a power loss until :meth:`sync` runs;
        ``init()`` writes the run record so and the writer thread syncs it."""
        data = json.dumps(record, allow_nan=False, separators=(",", ":")).encode()
        with self._guard:
            self._ensure()
            name = f"{time.time_ns():020d}-{next(self._seq):08d}-{record.get('kind', 'req')}.json"
            final = self.dir / name
            tmp = self.dir / (".tmp-" + name)
            with open(tmp, "wb") as fh:
                fh.write(data)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, final)
            if durable:
                _fsync_dir(self.dir)
        return final

    def sync(self, path: Path) -> None:
        """fsync a record written with ``durable=False``, and the session folder."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return  # replayed and removed meanwhile
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.dir)

    def entries(self) -> list[SpoolEntry]:
        return read_entries(self.dir)

    def close(self) -> None:
        """Release the session; remove its folder when nothing is left in it. Safe from
        several threads at once (the writer's end and finish() may both release it)."""
        with self._guard:
            fh = self._lock_fh
            if fh is None:
                return
            with contextlib.suppress(OSError):
                if not read_entry_paths(self.dir):
                    import shutil  # (with bz2/lzma, a few ms: not on init()'s path)

                    shutil.rmtree(self.dir, ignore_errors=True)
            self._lock_fh = None
            fh.close()


def read_entry_paths(folder: Path) -> list[Path]:
    try:
        names = sorted(
            n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")
        )
    except FileNotFoundError:
        return []
    return [folder / n for n in names]


def read_entries(folder: Path) -> list[SpoolEntry]:
    out = []
    for p in read_entry_paths(folder):
        try:
            out.append(SpoolEntry(p, json.loads(p.read_bytes())))
        except FileNotFoundError:
            continue  # uploaded by someone else meanwhile
        except ValueError:
            reject(p, "unreadable spool file")
    return out


def reject(path: Path, reason: str) -> Path:
    """Move a request the server refused for good to ``<root>/rejected/`` (kept, not retried)."""
    dest_dir = path.parent.parent / REJECTED
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{path.parent.name}-{path.name}"
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, dest)
        (dest_dir / (dest.name + ".reason")).write_text(reason + "\n")
    return dest


def session_dirs(root: Path) -> list[Path]:
    try:
        return sorted(
            p
            for p in root.iterdir()
            if p.is_dir() and p.name != REJECTED and not p.name.startswith(".")
        )
    except FileNotFoundError:
        return []


@contextlib.contextmanager
def locked_sessions(root: Path) -> Iterator[list[Path]]:
    """Sessions whose owner is gone, each locked for the caller while the block runs."""
    held: list[tuple[Path, IO[str]]] = []
    try:
        for d in session_dirs(root):
            try:
                fh = open(d / _LOCK, "a+")  # noqa: SIM115
            except OSError:
                continue
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()  # a live client owns it and uploads it itself
                continue
            held.append((d, fh))
        yield [d for d, _ in held]
    finally:
        for d, lock_fh in held:
            if not read_entry_paths(d):
                import shutil

                shutil.rmtree(d, ignore_errors=True)
            lock_fh.close()
