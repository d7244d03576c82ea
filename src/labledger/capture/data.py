"""Dataset fingerprints: sha256 over the sorted per-file hashes of a file or directory tree.

The fingerprint of a directory is ``sha256("\\n".join(sorted(f"{relpath}\\0{file_sha256}")))``;
of a single file, the file's sha256. Per-file hashes are cached, keyed by the file's
relative path, size, mtime (ns) and inode, in one small JSON file per dataset root under
the user cache directory (``$LABLEDGER_CACHE_DIR/fingerprints``, default
``~/.cache/labledger/fingerprints``), so re-fingerprinting unchanged data costs one
``stat`` per file. A file modified less than two seconds before it is hashed is not
cached (its mtime could still change within the filesystem's timestamp granularity
without the size changing).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .._settings import setting

__all__ = ["cache_dir", "fingerprint"]

_CHUNK = 1 << 20
_RACY_S = 2.0
_CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where fingerprint caches live: $LABLEDGER_CACHE_DIR/fingerprints, else the user cache dir."""
    base = setting("LABLEDGER_CACHE_DIR")
    if base:
        return Path(base).expanduser() / "fingerprints"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "labledger" / "fingerprints"


def _file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class _Cache:
    """``{relpath: [size, mtime_ns, inode, sha256]}`` for one dataset root."""

    def __init__(self, root: Path) -> None:
        key = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:32]
        self.file = cache_dir() / f"{key}.json"
        self.root = str(root)
        self.entries: dict[str, list[Any]] = {}
        self.dirty = False
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            if data.get("version") == _CACHE_VERSION and data.get("root") == self.root:
                self.entries = data["files"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.entries = {}

    def sha(self, rel: str, full: str, st: os.stat_result) -> str:
        hit = self.entries.get(rel)
        if (
            hit is not None
            and hit[0] == st.st_size
            and hit[1] == st.st_mtime_ns
            and hit[2] == st.st_ino
        ):
            return str(hit[3])
        digest = _file_sha256(full)
        if time.time() - st.st_mtime >= _RACY_S:
            self.entries[rel] = [st.st_size, st.st_mtime_ns, st.st_ino, digest]
            self.dirty = True
        elif rel in self.entries:
            del self.entries[rel]
            self.dirty = True
        return digest

    def save(self, seen: set[str] | None = None) -> None:
        if seen is not None and len(seen) != len(self.entries):
            gone = [k for k in self.entries if k not in seen]
            for k in gone:
                del self.entries[k]
            self.dirty = self.dirty or bool(gone)
        if not self.dirty:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".fp-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": _CACHE_VERSION, "root": self.root, "files": self.entries}, fh)
            os.replace(tmp, self.file)
        except OSError:
            pass  # a read-only cache directory only costs speed


def _walk(top: str, prefix: str, out: list[tuple[str, str, os.stat_result]]) -> None:
    try:
        it = os.scandir(top)
    except OSError:
        return
    with it:
        for e in it:
            rel = prefix + e.name
            try:
                if e.is_dir(follow_symlinks=False):
                    _walk(e.path, rel + "/", out)
                elif e.is_file():  # follows file symlinks, as the hash does
                    out.append((rel, e.path, e.stat()))
            except OSError:
                continue


def fingerprint(path: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
    """``{name, path, sha256, size, files}`` of a file or directory tree."""
    p = Path(path).resolve()
    if not p.exists():
        raise FileNotFoundError(f"dataset path {str(p)!r} does not exist")
    cache = _Cache(p)
    if p.is_file():
        st = p.stat()
        digest = cache.sha("", str(p), st)
        cache.save()
        return {
            "name": name or p.name,
            "path": str(p),
            "sha256": digest,
            "size": st.st_size,
            "files": 1,
        }
    found: list[tuple[str, str, os.stat_result]] = []
    _walk(str(p), "", found)
    entries = []
    size = 0
    for rel, full, st in found:
        entries.append(f"{rel}\0{cache.sha(rel, full, st)}")
        size += st.st_size
    cache.save({rel for rel, _, _ in found})
    h = hashlib.sha256("\n".join(sorted(entries)).encode("utf-8", "surrogateescape"))
    return {
        "name": name or p.name,
        "path": str(p),
        "sha256": h.hexdigest(),
        "size": size,
        "files": len(entries),
    }
