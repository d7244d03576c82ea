"""Where artifact bytes live: content-addressed blobs keyed by their sha256.

:class:`BlobStore` is the protocol; :class:`LocalBlobStore` keeps blobs in a directory,
``S3BlobStore`` (in ``_s3.py``) in S3-compatible object storage. ``open_blob_store``
chooses one from the artifacts URI and the run store URI.

Every write is atomic (a temporary file renamed into place, or a multipart upload
completed only after the hash matched), so a reader never sees half a blob; every
read that lands on disk is verified against the sha256 while it streams.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from .._exceptions import IntegrityError, NotFoundError, UsageError
from .._settings import setting
from ..store import is_sha256

__all__ = [
    "CHUNK_SIZE",
    "BlobInfo",
    "BlobStore",
    "Fingerprint",
    "LocalBlobStore",
    "atomic_download",
    "check_sha",
    "copy_verified",
    "current_umask",
    "file_fingerprint",
    "hash_file",
    "is_sha256",
    "open_blob_store",
    "reporting_copied_bytes",
    "resolve_artifacts_uri",
]

CHUNK_SIZE = 8 * 1024 * 1024


def check_sha(sha: str) -> str:
    if not is_sha256(sha):
        raise UsageError(f"not a sha256 digest: {sha!r}")
    return sha


def hash_file(path: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> tuple[str, int]:
    """sha256 and size of a file, streamed through one reused buffer (never the whole file in memory)."""
    h = hashlib.sha256()
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(view)
            if not n:
                break
            h.update(view[:n])
            size += n
    return h.hexdigest(), size


_COPIED: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar(
    "labledger_copied_bytes", default=None
)


@contextlib.contextmanager
def reporting_copied_bytes(callback: Callable[[int], None]) -> Iterator[None]:
    """While active, :func:`copy_verified` in this thread calls ``callback(bytes so far)`` for
    the blob it is copying (0 when a copy starts, so a retried download starts over).

    This is how downloads report progress through every :class:`BlobStore` (they all land
    on disk through :func:`copy_verified`) without a parameter on each of them.
    """
    token = _COPIED.set(callback)
    try:
        yield
    finally:
        _COPIED.reset(token)


def copy_verified(
    src: BinaryIO, dest: BinaryIO, sha: str, what: str, chunk_size: int = CHUNK_SIZE
) -> int:
    """Copy ``src`` to ``dest`` hashing on the way; IntegrityError when the content is not ``sha``."""
    h = hashlib.sha256()
    size = 0
    report = _COPIED.get()
    if report is not None:
        report(0)
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        buf = bytearray(chunk_size)
        view = memoryview(buf)
        while True:
            n = readinto(view)
            if not n:
                break
            h.update(view[:n])
            dest.write(view[:n])
            size += n
            if report is not None:
                report(size)
    else:
        while True:
            chunk = src.read(chunk_size)
            if not chunk:
                break
            h.update(chunk)
            dest.write(chunk)
            size += len(chunk)
            if report is not None:
                report(size)
    actual = h.hexdigest()
    if actual != sha:
        raise IntegrityError(what, sha, actual)
    return size


Fingerprint = tuple[int, int, int, int]


def file_fingerprint(fd_or_path: int | str | os.PathLike[str]) -> Fingerprint:
    """(size, mtime_ns, inode, device): changes whenever the file is rewritten."""
    st = os.fstat(fd_or_path) if isinstance(fd_or_path, int) else os.stat(fd_or_path)
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _kernel_copy(src: BinaryIO, out: BinaryIO) -> int:
    """Copy a whole file without moving its bytes through Python (copy_file_range, else a loop)."""
    out.flush()
    total = 0
    try:
        while True:
            n = os.copy_file_range(src.fileno(), out.fileno(), 1 << 30)
            if not n:
                return total
            total += n
    except (AttributeError, OSError):
        if total:
            raise
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    while True:
        n = src.readinto(view)  # type: ignore[attr-defined]
        if not n:
            return total
        out.write(view[:n])
        total += n


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int
    modified: float  # seconds since the epoch


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed bytes. Implementations must make ``put_file`` atomic."""

    uri: str

    def has(self, sha: str) -> bool: ...

    def put_file(self, path: str | os.PathLike[str], sha: str, size: int) -> None:
        """Store the file at ``path`` as blob ``sha``, verifying the hash while streaming.

        IntegrityError when the file no longer hashes to ``sha`` (it changed after it
        was hashed); nothing becomes visible then.
        """
        ...

    def open(self, sha: str) -> BinaryIO:
        """A binary stream of the blob (NotFoundError when absent). Not verified: see ``download``."""
        ...

    def download(self, sha: str, dest: str | os.PathLike[str]) -> None:
        """Write the blob to ``dest`` atomically, verifying its sha256 while streaming."""
        ...

    def delete(self, sha: str) -> None: ...

    def iter_blobs(self) -> Iterator[BlobInfo]: ...

    def iter_shas(self) -> Iterator[str]: ...

    def touch(self, sha: str) -> None:
        """Mark a blob as recently used (protects a deduplicated blob from a concurrent gc)."""
        ...


def current_umask() -> int:
    """The process umask, read without changing it (Linux /proc), else set and restored."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_download(stream: BinaryIO, sha: str, dest: str | os.PathLike[str], what: str) -> None:
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".labledger-", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            copy_verified(stream, out, sha, what)
            # mkstemp makes 0600; a downloaded file gets the mode a plain copy would (0644 at umask 022)
            os.fchmod(out.fileno(), 0o666 & ~current_umask())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class LocalBlobStore:
    """Blobs in a directory: ``ROOT/blobs/ab/abcdef…``; partial writes live in ``ROOT/tmp/``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(os.fspath(root)).expanduser().resolve()
        self.uri = str(self.root)
        self._blobs = self.root / "blobs"
        self._tmp = self.root / "tmp"

    def __repr__(self) -> str:
        return f"LocalBlobStore({self.uri!r})"

    def path(self, sha: str) -> Path:
        check_sha(sha)
        return self._blobs / sha[:2] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def size(self, sha: str) -> int | None:
        """The blob's size in bytes, None when it is not there."""
        try:
            return self.path(sha).stat().st_size
        except FileNotFoundError:
            return None

    def put_file(
        self,
        path: str | os.PathLike[str],
        sha: str,
        size: int,
        *,
        fingerprint: Fingerprint | None = None,
    ) -> None:
        """Copy ``path`` into the store as blob ``sha`` (temporary file, fsync, rename).

        Without ``fingerprint`` the copy is hashed while streaming and refused when it
        is not ``sha``. With the fingerprint taken when the file was hashed, the copy
        runs in the kernel (``copy_file_range``) and is refused when the file's size,
        mtime or inode moved since: the same "unchanged since hashed" test git and
        rsync use, at a quarter of the cost of hashing again.
        """
        final = self.path(sha)
        if final.is_file():
            self.touch(sha)
            return
        what = f"file {os.fspath(path)!r} (it changed after it was logged)"
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=sha[:16] + "-", suffix=".part", dir=self._tmp)
        try:
            with open(path, "rb", buffering=0) as src, os.fdopen(fd, "wb") as out:
                if fingerprint is not None and file_fingerprint(src.fileno()) == fingerprint:
                    written = _kernel_copy(src, out)
                    if file_fingerprint(src.fileno()) != fingerprint:
                        raise IntegrityError(what, sha, "unknown (modified during the copy)")
                else:
                    written = copy_verified(src, out, sha, what)
                out.flush()
                os.fsync(out.fileno())
            if written != size:
                raise IntegrityError(what, sha, f"size {written} != {size}")
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)  # atomic: the blob appears complete or not at all
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def open(self, sha: str) -> BinaryIO:
        try:
            return open(self.path(sha), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"blob {sha[:16]}… is missing from {self.uri}") from None

    def download(self, sha: str, dest: str | os.PathLike[str]) -> None:
        with self.open(sha) as fh:
            atomic_download(fh, sha, dest, f"blob {sha[:16]}… in {self.uri}")

    def delete(self, sha: str) -> None:
        with contextlib.suppress(OSError):
            self.path(sha).unlink()

    def touch(self, sha: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self.path(sha))

    def iter_blobs(self) -> Iterator[BlobInfo]:
        if not self._blobs.is_dir():
            return
        for sub in sorted(self._blobs.iterdir()):
            if not sub.is_dir():
                continue
            for f in sorted(sub.iterdir()):
                if is_sha256(f.name):
                    st = f.stat()
                    yield BlobInfo(f.name, st.st_size, st.st_mtime)

    def iter_shas(self) -> Iterator[str]:
        return (b.sha256 for b in self.iter_blobs())

    def stale_partials(self, older_than: float) -> list[Path]:
        """Temporary files left by killed writers, older than ``older_than`` seconds."""
        if not self._tmp.is_dir():
            return []
        now = time.time()
        return [p for p in self._tmp.iterdir() if now - p.stat().st_mtime > older_than]


def resolve_artifacts_uri(
    artifacts_uri: str | os.PathLike[str] | None, store_uri: str | None
) -> str:
    """The artifacts location: explicit, else env LABLEDGER_ARTIFACTS_URI, else beside the store."""
    if artifacts_uri is not None and os.fspath(artifacts_uri):
        return os.fspath(artifacts_uri)
    env = setting("LABLEDGER_ARTIFACTS_URI")
    if env:
        return env
    from ..store import Location, default_root, scheme_family

    if store_uri:
        return Location(store_uri, scheme_family(store_uri)).default_artifacts_uri()
    return str(default_root() / "artifacts")


def open_blob_store(
    artifacts_uri: str | os.PathLike[str] | None = None, store_uri: str | None = None
) -> BlobStore:
    """The blob store for ``artifacts_uri`` (a directory, ``file://``, ``s3://bucket/prefix``).

    Without one: env LABLEDGER_ARTIFACTS_URI, else ``artifacts/`` beside an SQLite
    store, the tracking server for an http(s) store, else ``.labledger/artifacts``.
    The URI's scheme picks the class from ``BLOB_BACKENDS`` (``store/_backends.py``).
    """
    from ..store import BLOB_BACKENDS, blob_scheme, load_backend

    uri = resolve_artifacts_uri(artifacts_uri, store_uri)
    scheme = blob_scheme(uri)
    if scheme == "file":
        uri = uri[len("file://") :]
    store: BlobStore = load_backend(BLOB_BACKENDS[scheme])(uri)
    return store
