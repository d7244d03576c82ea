"""Where the bytes of rich results live: the artifact blob store, beside the run store.

A logged image, table or curve is a ``media`` row in the run store (key, step, kind,
sha256, size, metadata; covered by the sealed record) and its bytes in the artifact
blob store (a directory, or ``s3://``), content-addressed like artifact files, so
identical bytes are stored once and ``labledger gc`` / ``verify`` see them. Which blob
store: the one named for the run (``init(artifacts=...)``, the server's
``--artifacts-uri``: :meth:`MediaBytes.use`), else env LABLEDGER_ARTIFACTS_URI, else
``artifacts/`` beside an SQLite file (``_locate.artifacts_uri_for``).

A batch's bytes are put in the blob store *before* the transaction that writes its
rows, in one ``put_many`` (one flush for the batch, not one per image): a row never
names bytes that are not durable, and a failed transaction leaves only unreferenced
blobs, which gc removes after its grace period. Rich results stored before the bytes
moved here (in the ``blobs`` table) are read from there.

Each ``media`` row names the blob store holding its bytes (``storage``, migration 0013),
so a reader that opens the database directly finds bytes a server put in its own
``--artifacts-uri``.

Standard library only: the embedded write path (``_lite.py``) imports it on ``init()``;
the blob store itself (and boto3 for S3) is opened on the first rich result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .._exceptions import NotFoundError

__all__ = ["MediaBlobs", "MediaBytes"]


class MediaBlobs(Protocol):
    """What a blob store (``artifacts.LocalBlobStore``, ``S3BlobStore``) offers rich results."""

    uri: str

    def put_many(self, blobs: Mapping[str, bytes]) -> None: ...

    def get_bytes(self, sha: str) -> bytes: ...


class MediaBytes:
    """The blob store of one run store's rich results, opened on first use."""

    def __init__(self, store_uri: str | None, artifacts_uri: str | None = None) -> None:
        self.store_uri = store_uri
        self.artifacts_uri = artifacts_uri or None
        self._blobs: MediaBlobs | None = None
        self._others: dict[str, MediaBlobs] = {}  # blob stores other rows name
        self._staged: dict[str, str] = {}  # sha256 -> temporary file (see stage)
        self._lock = threading.Lock()

    def use(self, artifacts_uri: str | None = None, blobs: MediaBlobs | None = None) -> None:
        """Keep the bytes in ``artifacts_uri`` (or in the blob store ``blobs``, already open)."""
        with self._lock:
            if blobs is not None:
                self._blobs = blobs
                self.artifacts_uri = blobs.uri
            elif artifacts_uri and artifacts_uri != self.artifacts_uri:
                self.artifacts_uri = artifacts_uri
                self._blobs = None

    @property
    def uri(self) -> str:
        from ._locate import artifacts_uri_for

        return artifacts_uri_for(self.artifacts_uri, self.store_uri)

    def blobs(self) -> MediaBlobs:
        with self._lock:
            if self._blobs is None:
                from ._backends import open_blobs

                self._blobs = open_blobs(self.uri)
            return self._blobs

    def put(self, media: Sequence[Any]) -> str | None:
        """The bytes of a batch's rich results (``MediaItem``), durable when this returns;
        identical bytes once. Returns the blob store's URI (the rows' ``storage``)."""
        if not media:
            return None
        batch: dict[str, bytes] = {}
        for m in media:
            batch.setdefault(m.sha256, m.data)
        blobs = self.blobs()
        with self._lock:
            staged = {sha: self._staged.pop(sha) for sha in batch if sha in self._staged}
        if staged:
            blobs.put_many(batch, staged=staged)  # type: ignore[call-arg]
        else:
            blobs.put_many(batch)
        return blobs.uri

    def stage(self, media: Sequence[Any]) -> None:
        """Start writing the bytes of some rich results before their batch is complete
        (a local blob store only: files written, not yet synced or visible); ``put``
        finishes them. Never raises: ``put`` writes whatever staging did not."""
        try:
            blobs = self.blobs()
            stage = getattr(blobs, "stage", None)
            if stage is None:
                return
            got = stage({m.sha256: m.data for m in media})
        except Exception:
            return
        with self._lock:
            self._staged.update(got)

    def _at(self, storage: str | None) -> MediaBlobs:
        """The blob store a row names (``storage``), this store's own when it is the same."""
        own = self.blobs()
        if not storage or storage == own.uri:
            return own
        with self._lock:
            other = self._others.get(storage)
            if other is None:
                from ._backends import open_blobs

                other = self._others[storage] = open_blobs(storage)
            return other

    def get(self, sha: str, legacy: Callable[[str], bytes], storage: str | None = None) -> bytes:
        """The verified bytes of ``sha``: from the blob store the row names (``storage``),
        else this store's own; a row without one (stored before the bytes moved to blob
        stores) from the run store's ``blobs`` table (``legacy``) first."""
        tries: list[Callable[[str], bytes]] = [lambda h: self._at(storage).get_bytes(h)]
        if storage:
            tries.append(lambda h: self._at(None).get_bytes(h))
        else:
            tries.insert(0, legacy)
        for read in tries:
            try:
                return read(sha)
            except NotFoundError:
                pass
        raise NotFoundError(f"the bytes of rich result {sha[:16]}… are missing from {self.uri}")
