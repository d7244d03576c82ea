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
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from .._exceptions import IntegrityError, NotFoundError, UsageError
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
    "verified_bytes",
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


def verified_bytes(sha: str, data: bytes, what: str) -> bytes:
    """``data`` when it hashes to ``sha``; IntegrityError otherwise."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha:
        raise IntegrityError(what, sha, actual)
    return data


def _syncfs(fd: int) -> bool:
    """Flush the whole file system holding ``fd`` (Linux ``syncfs``): one call makes a
    batch of new files durable, where one ``fsync`` per file costs a journal commit each.
    False where the call is not available (the caller then fsyncs file by file)."""
    if _SYNCFS_FN[0] is None:
        fn: Any = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                fn = ctypes.CDLL(None, use_errno=True).syncfs
            except (AttributeError, OSError):
                fn = False
        _SYNCFS_FN[0] = fn
    fn = _SYNCFS_FN[0]
    if fn is False:
        return False
    return int(fn(fd)) == 0


_SYNCFS_FN: list[Any] = [None]


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

    def put_bytes(self, sha: str, data: bytes) -> None:
        """Store ``data`` as blob ``sha`` (temporary file, fsync, rename); kept when there."""
        self.put_many({sha: data})

    def stage(self, blobs: Mapping[str, bytes]) -> dict[str, str]:
        """Write blobs that are not stored yet to temporary files, neither synced nor
        visible; returns sha256 -> temporary path, for :meth:`put_many` ``staged=``.

        Lets a caller write the files of one part of a batch while it still prepares the
        rest (the writer thread stages images while other threads encode the next ones).
        A staged file never put is a partial that ``gc`` removes after an hour.
        """
        root = str(self._blobs)
        todo = {}
        for sha, data in blobs.items():
            check_sha(sha)
            if not os.path.exists(f"{root}/{sha[:2]}/{sha}"):
                todo[sha] = verified_bytes(sha, data, f"blob {sha[:16]}… (bytes to store)")
        if not todo:
            return {}
        self._tmp.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}-{os.urandom(4).hex()}"
        return {sha: self._write_tmp(sha, data, tag, False) for sha, data in todo.items()}

    def _write_tmp(self, sha: str, data: bytes, tag: str, fsync: bool) -> str:
        tmp = f"{self._tmp}/{sha[:16]}-{tag}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def put_many(
        self, blobs: Mapping[str, bytes], *, staged: Mapping[str, str] | None = None
    ) -> None:
        """Store a batch of small blobs, durable together when this returns.

        Each is checked against its sha256 first (IntegrityError: nothing is written),
        one already there is only touched (gc's grace period counts from its use), the
        others are written to temporary files (or taken from ``staged``, see
        :meth:`stage`) and renamed into place. Durability costs one ``syncfs`` before
        the renames (the bytes) and one after (the names), not an ``fsync`` per file and
        per folder (1,000 fsyncs took 3.5-4 s on the 2-core test machine, two syncfs
        0.05-0.3 s). ``syncfs`` also flushes other processes' dirty data on the same file
        system; where it is missing (not Linux) each file and folder is fsynced.
        """
        staged = dict(staged or {})
        for sha, data in blobs.items():
            check_sha(sha)
            if sha not in staged:
                verified_bytes(sha, data, f"blob {sha[:16]}… (bytes to store)")
        root = str(self._blobs)
        todo: list[tuple[str, bytes, str]] = []
        for sha, data in blobs.items():
            final = f"{root}/{sha[:2]}/{sha}"
            try:
                os.utime(final)  # there already: only marked as used
            except FileNotFoundError:
                todo.append((sha, data, final))
            except OSError:
                pass  # there, but not ours to touch
        written: list[tuple[str, str]] = []
        done = {sha for sha, _, _ in todo}
        for sha, tmp in staged.items():
            if sha not in done:  # stored meanwhile, or not in this batch
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        if not todo:
            return
        self._tmp.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}-{os.urandom(4).hex()}"
        single = len(todo) == 1 and not staged
        try:
            for sha, data, final in todo:
                tmp = staged.get(sha, "")
                if not tmp or not os.path.exists(tmp):
                    if sha in staged:  # not checked above
                        verified_bytes(sha, data, f"blob {sha[:16]}… (bytes to store)")
                    tmp = self._write_tmp(sha, data, tag, single)
                written.append((tmp, final))
            synced = not single and self._sync()
            if not single and not synced:
                for tmp, _ in written:
                    fd = os.open(tmp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            folders: set[str] = set()
            for tmp, final in written:
                folder = final[: final.rindex("/")]
                if folder not in folders:
                    os.makedirs(folder, exist_ok=True)
                    folders.add(folder)
                os.replace(tmp, final)  # atomic: the blob appears complete or not at all
            written = []
            if synced and self._sync():
                return
            for folder in (*folders, root):
                _fsync_dir(Path(folder))
        finally:
            for tmp, _ in written:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _sync(self) -> bool:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            return _syncfs(fd)
        finally:
            os.close(fd)

    def get_bytes(self, sha: str) -> bytes:
        try:
            data = self.path(sha).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {sha[:16]}… is missing from {self.uri}") from None
        return verified_bytes(sha, data, f"blob {sha[:16]}… in {self.uri}")

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


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # a file system that cannot fsync a folder
    finally:
        os.close(fd)


def resolve_artifacts_uri(
    artifacts_uri: str | os.PathLike[str] | None, store_uri: str | None
) -> str:
    """The artifacts location: explicit, else env LABLEDGER_ARTIFACTS_URI, else beside the store."""
    from ..store import artifacts_uri_for

    return artifacts_uri_for(artifacts_uri, store_uri)


def open_blob_store(
    artifacts_uri: str | os.PathLike[str] | None = None, store_uri: str | None = None
) -> BlobStore:
    """The blob store for ``artifacts_uri`` (a directory, ``file://``, ``s3://bucket/prefix``).

    Without one: env LABLEDGER_ARTIFACTS_URI, else ``artifacts/`` beside an SQLite
    store, the tracking server for an http(s) store, else ``.labledger/artifacts``.
    The URI's scheme picks the class from ``BLOB_BACKENDS`` (``store/_backends.py``).
    """
    from ..store import open_blobs

    store: BlobStore = open_blobs(resolve_artifacts_uri(artifacts_uri, store_uri))
    return store
