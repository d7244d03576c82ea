"""The automatic catch-up: a new run's writer replays what ended processes left in the outbox.

Beside :mod:`._outbox` (the records, and their replay into SQL stores) and
:mod:`.http` (their replay through a server), which it uses both.
"""

from __future__ import annotations

__all__ = ["catch_up"]


def catch_up(uri: str) -> int:
    """Replay the outbox sessions left by processes that are gone, for the store at ``uri``.

    Called once by each run's writer (in a thread of its own) when its store is open and
    the outbox holds other sessions: the automatic catch-up of a process killed before
    ``sync``. A session is taken when its first record is for ``uri`` and its owner is
    gone (its lock is free); it stays locked while it is replayed, so ``labledger sync``
    and other processes skip it meanwhile. Returns the records written.
    """
    import contextlib
    import fcntl
    import json
    import shutil

    from ._outbox import replay_local
    from .spool import default_spool_dir, read_entries, read_entry_paths, session_dirs

    done = 0
    for folder in session_dirs(default_spool_dir()):
        paths = read_entry_paths(folder)
        try:
            first = json.loads(paths[0].read_bytes()) if paths else None
        except (OSError, ValueError):
            continue
        if not isinstance(first, dict) or first.get("uri") != uri:
            continue
        try:
            lock = open(folder / ".lock", "a+")  # noqa: SIM115 - closed below
        except OSError:
            continue
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its process is alive and writes it itself
            entries = read_entries(folder)
            if any(str(e.record.get("uri") or "") != uri for e in entries):
                continue  # records for another store too: left to `labledger sync`
            if uri.split(":", 1)[0].lower() in ("http", "https"):
                from .http import replay_folder_counts

                done += replay_folder_counts(folder).uploaded
            else:
                done += replay_local(entries)[0]
            if not read_entry_paths(folder):
                with contextlib.suppress(OSError):
                    shutil.rmtree(folder)
        finally:
            lock.close()
    return done
