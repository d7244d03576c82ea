"""Keeping a blob store honest: re-hash every blob (verify) and drop unreferenced ones (gc)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from ._blobstore import CHUNK_SIZE, BlobStore, LocalBlobStore

__all__ = ["collect_garbage", "rehash", "verify_blobs"]


def rehash(blobs: BlobStore, sha: str) -> str:
    """The sha256 of the stored bytes of blob ``sha`` (streamed)."""
    h = hashlib.sha256()
    with blobs.open(sha) as fh:
        while True:
            chunk = fh.read(CHUNK_SIZE)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def verify_blobs(
    blobs: BlobStore, expected: set[str], progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Re-hash every blob; report ``damaged`` (content != name) and ``missing`` (referenced, absent)."""
    damaged: list[dict[str, Any]] = []
    checked = 0
    total = 0
    present: set[str] = set()
    for info in blobs.iter_blobs():
        present.add(info.sha256)
        actual = rehash(blobs, info.sha256)
        checked += 1
        total += info.size
        if actual != info.sha256:
            damaged.append({"sha256": info.sha256, "actual": actual, "size": info.size})
        if progress is not None:
            progress(info.sha256)
    missing = sorted(expected - present)
    return {
        "store": blobs.uri,
        "checked": checked,
        "bytes": total,
        "damaged": damaged,
        "missing": missing,
        "ok": not damaged and not missing,
    }


def collect_garbage(
    blobs: BlobStore, referenced: set[str], *, min_age: float = 3600.0, delete: bool = False
) -> dict[str, Any]:
    """Blobs that no artifact version references and older than ``min_age`` seconds (the grace
    period protects uploads whose version is not registered yet); deleted when ``delete``."""
    now = time.time()
    garbage = [
        b for b in blobs.iter_blobs() if b.sha256 not in referenced and now - b.modified >= min_age
    ]
    partials = 0
    if delete:
        for b in garbage:
            blobs.delete(b.sha256)
        if isinstance(blobs, LocalBlobStore):
            for p in blobs.stale_partials(max(min_age, 3600.0)):
                p.unlink(missing_ok=True)
                partials += 1
        abort = getattr(blobs, "abort_stale_uploads", None)
        if abort is not None:
            partials += int(abort(max(min_age, 3600.0)))
    return {
        "store": blobs.uri,
        "unreferenced": [{"sha256": b.sha256, "size": b.size} for b in garbage],
        "count": len(garbage),
        "bytes": sum(b.size for b in garbage),
        "deleted": delete,
        "partials_removed": partials,
    }
