"""Dataset fingerprints: sha256 over the sorted per-file hashes of a file or directory tree."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = ["fingerprint"]

_CHUNK = 1 << 20


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(path: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
    p = Path(path).resolve()
    if not p.exists():
        raise FileNotFoundError(f"dataset path {str(p)!r} does not exist")
    if p.is_file():
        digest = _file_sha256(p)
        return {
            "name": name or p.name,
            "path": str(p),
            "sha256": digest,
            "size": p.stat().st_size,
            "files": 1,
        }
    entries = []
    size = 0
    for root, dirs, files in os.walk(p):
        dirs.sort()
        for f in sorted(files):
            fp = Path(root) / f
            if not fp.is_file():
                continue
            rel = fp.relative_to(p).as_posix()
            entries.append(f"{rel}\0{_file_sha256(fp)}")
            size += fp.stat().st_size
    h = hashlib.sha256("\n".join(sorted(entries)).encode())
    return {
        "name": name or p.name,
        "path": str(p),
        "sha256": h.hexdigest(),
        "size": size,
        "files": len(entries),
    }
