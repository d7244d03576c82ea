"""The background uploader: moves logged artifacts into the blob store, then registers them.

``log_artifact`` hashes in the caller's thread (so it knows the version's content and
can skip known blobs) and hands a job to this thread; the training loop never waits
for the network or the disk. Failures are retried with backoff and reported once;
they never raise into training. When the run's store is a tracking server that cannot
be reached, a job is not retried: it goes to the run's offline spool at once
(:mod:`labledger.remote._pending_artifacts`), uploaded later in the background or by
``labledger sync``, and the run's end says so once. ``finish()`` calls :meth:`Uploader.finish_hook`,
which waits for pending jobs up to a timeout and says what is still pending.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._exceptions import IntegrityError, StoreUnavailableError, UsageError
from .._settings import setting
from .._values import fmt_size, warn
from ._blobstore import Fingerprint, LocalBlobStore

if TYPE_CHECKING:
    from ._blobstore import BlobStore

    class Run(Protocol):
        """What artifacts need of a run. ``labledger.tracking``'s Run is one; artifacts sit
        below the engine, so they name the shape instead of importing the class."""

        id: str
        project: str
        store_uri: str
        artifacts_uri: str | None
        status: str
        _finished: bool

        def store(self, timeout: float | None = 30.0) -> Any: ...


__all__ = [
    "ArtifactRef",
    "DeferredUploads",
    "UploadJob",
    "Uploader",
    "default_timeout",
    "server_unreachable",
]

log = logging.getLogger("labledger.artifacts")


def default_timeout() -> float:
    """How long ``finish()`` waits for pending uploads: env LABLEDGER_ARTIFACT_TIMEOUT, default 600 s."""
    try:
        return float(setting("LABLEDGER_ARTIFACT_TIMEOUT") or "600")
    except ValueError:
        return 600.0


def _max_attempts() -> int:
    try:
        return max(1, int(setting("LABLEDGER_ARTIFACT_RETRIES") or "8"))
    except ValueError:
        return 8


def server_unreachable(exc: BaseException) -> bool:
    """A tracking server that does not answer (refused, timed out, 5xx after retries)."""
    if isinstance(exc, StoreUnavailableError):
        return True
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx comes with every http store
        return False
    return isinstance(exc, httpx.TransportError)


@runtime_checkable
class DeferredUploads(Protocol):
    """A run that keeps an artifact upload for later while its server is unreachable.

    The tracking run (``tracking/_run.py``) is one: the upload goes to the run's outbox,
    where its writer keeps what the store did not take, and is uploaded with the rest.
    The uploader asks for this protocol instead of importing ``tracking/``, so
    ``artifacts/`` stays below it.
    """

    store_uri: str

    def unreachable(self) -> bool:
        """True while the run's own writes wait in its outbox for the server."""
        ...

    def defer_artifact(
        self,
        *,
        run_id: str,
        project: str,
        name: str,
        kind: str,
        manifest: Sequence[Mapping[str, Any]],
        sources: Mapping[str, tuple[str, int]],
        metadata: Mapping[str, Any],
        storage: str | None,
        sha256: str,
    ) -> None:
        """Keep one artifact version (``sources``: sha256 -> (file, size)) to upload later."""
        ...


class ArtifactRef:
    """Handle returned by ``log_artifact``: content known at once, version once registered.

    ``sha256`` (of the manifest), ``size`` and ``files`` are set immediately;
    ``version`` and ``uri`` once the bytes are stored and the version registered
    (``wait()`` blocks until then). ``error`` holds the reason when it gave up.
    """

    def __init__(
        self,
        project: str,
        name: str,
        kind: str,
        root_type: str,
        files: list[dict[str, Any]],
        sha256: str,
    ) -> None:
        self.project = project
        self.name = name
        self.kind = kind
        self.type = root_type
        self.files = files
        self.sha256 = sha256
        self.size = sum(f["size"] for f in files)
        self.version: int | None = None
        self.record: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.spooled = False  # in the offline spool: registered by `labledger sync`
        self._done = threading.Event()

    @property
    def uri(self) -> str | None:
        return None if self.version is None else f"{self.project}/{self.name}:v{self.version}"

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stored and registered (True) or failed, spooled or timed out (False)."""
        return self._done.wait(timeout) and self.error is None and self.version is not None

    def _resolve(self, record: dict[str, Any] | None, error: BaseException | None) -> None:
        self.record = record
        if record is not None:
            self.version = int(record["version"])
        self.error = error
        self._done.set()

    def __repr__(self) -> str:
        state = (
            f"v{self.version}"
            if self.version is not None
            else "failed"
            if self.error is not None
            else "spooled"
            if self.spooled
            else "pending"
        )
        return f"<ArtifactRef {self.project}/{self.name} {state} {self.sha256[:12]} {fmt_size(self.size)}>"


@dataclass
class UploadJob:
    ref: ArtifactRef
    sources: dict[
        str, tuple[str, int, Fingerprint]
    ]  # sha -> (a file holding it, size, fingerprint)
    metadata: dict[str, Any] = field(default_factory=dict)


class _GoOffline(Exception):
    """The tracking server cannot be reached: spool the job instead of retrying."""


class Uploader(threading.Thread):
    """One daemon thread per run that owns its blob store and processes jobs in order."""

    def __init__(self, run: Run, open_blobs: Callable[[], BlobStore]) -> None:
        super().__init__(name=f"labledger-artifacts-{run.id[:8]}", daemon=True)
        self.run_obj = run
        self._open_blobs = open_blobs
        self.jobs: queue.Queue[UploadJob] = queue.Queue()
        self.pending: list[ArtifactRef] = []
        self.deferred: list[ArtifactRef] = []  # in the offline spool, for `labledger sync`
        self.failed: list[ArtifactRef] = []
        self._lock = threading.Lock()
        self._stop_evt = threading.Event()
        self._warned = False
        self.blobs: BlobStore | None = None
        self.bytes_uploaded = 0
        self.blobs_skipped = 0

    def submit(self, job: UploadJob) -> None:
        with self._lock:
            self.pending.append(job.ref)
        self.jobs.put(job)

    # -- the thread ------------------------------------------------------------------

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                try:
                    record: dict[str, Any] | None = self._process(job)
                except _GoOffline as exc:
                    self._spool(job, exc.__cause__ or exc)
                    record = None
                job.ref._resolve(record, None)
            except BaseException as exc:  # never raised into training
                job.ref._resolve(None, exc)
                with self._lock:
                    self.failed.append(job.ref)
                self._report(exc, job.ref, final=True)
            finally:
                with self._lock:
                    if job.ref in self.pending:
                        self.pending.remove(job.ref)

    def _retrying(self, what: str, ref: ArtifactRef, fn: Callable[[], Any]) -> Any:
        delay = 0.5
        attempts = _max_attempts()
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except (IntegrityError, UsageError):
                raise  # the file changed, or bad input: retrying cannot help
            except Exception as exc:  # network, disk, store: retried
                log.debug(
                    "artifact %s: %s failed (attempt %d)", ref.name, what, attempt, exc_info=exc
                )
                if self._http_store() is not None and server_unreachable(exc):
                    raise _GoOffline(exc) from exc
                if attempt == attempts:
                    raise
                self._report(exc, ref, final=False)
                if self._stop_evt.wait(delay):
                    raise
                delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def _http_store(self) -> DeferredUploads | None:
        """The run when it can keep uploads for later (its store is a server), else None."""
        from ..store import scheme_family

        if scheme_family(self.run_obj.store_uri) not in ("http", "https"):
            return None
        run = self.run_obj
        return run if isinstance(run, DeferredUploads) else None

    def _spool(self, job: UploadJob, why: BaseException) -> None:
        """Write the job to the run's offline spool (durably); the ref becomes ``spooled``."""
        store = self._http_store()
        if store is None:
            raise why
        ref = job.ref
        store.defer_artifact(
            run_id=self.run_obj.id,
            project=ref.project,
            name=ref.name,
            kind=ref.kind,
            manifest=ref.files,
            sources={sha: (src, size) for sha, (src, size, _fp) in job.sources.items()},
            metadata=job.metadata,
            storage=self.blobs.uri if self.blobs is not None else None,
            sha256=ref.sha256,
        )
        ref.spooled = True
        with self._lock:
            self.deferred.append(ref)
        log.debug("artifact %s spooled (%s)", ref.name, why)

    def unregistered(self) -> list[dict[str, str]]:
        """``[{name, kind, sha256}]`` of the artifacts logged but not registered yet (still
        uploading, or waiting in the offline spool): the run's seal lists them, and only these
        may join the run after its end (docs/trust.md)."""
        with self._lock:
            refs = [*self.pending, *self.deferred]
        out: dict[str, dict[str, str]] = {}
        for r in refs:
            if r.version is None and r.error is None:
                out.setdefault(r.sha256, {"name": r.name, "kind": r.kind, "sha256": r.sha256})
        return list(out.values())

    def _process(self, job: UploadJob) -> dict[str, Any]:
        ref = job.ref
        http = self._http_store()
        if http is not None and http.unreachable():
            # the run's own requests already wait in the spool: queue behind them, no retries
            raise _GoOffline(
                StoreUnavailableError(http.store_uri, "requests are waiting in the spool")
            )
        if self.blobs is None:
            self.blobs = self._retrying("open the artifact store", ref, self._open_blobs)
        blobs = self.blobs
        assert blobs is not None
        for sha, (source, size, fp) in job.sources.items():

            def put(
                sha: str = sha, source: str = source, size: int = size, fp: Fingerprint = fp
            ) -> None:
                if blobs.has(sha):
                    blobs.touch(sha)  # dedup: an unchanged file costs only its hash
                    self.blobs_skipped += 1
                    return
                if isinstance(blobs, LocalBlobStore):
                    blobs.put_file(source, sha, size, fingerprint=fp)
                else:
                    blobs.put_file(source, sha, size)
                self.bytes_uploaded += size

            self._retrying(f"upload {sha[:12]}", ref, put)
        run = self.run_obj

        def register() -> dict[str, Any]:
            store = run.store(timeout=30.0)
            if http is None:  # the server checks the blobs itself
                from ..store import check_blobs

                check_blobs(blobs, ref.files, ref.name)
            record: dict[str, Any] = store.create_artifact_version(
                ref.project, ref.name, ref.kind, run.id, ref.files, job.metadata, storage=blobs.uri
            )
            return record

        result: dict[str, Any] = self._retrying("register the version", ref, register)
        return result

    def _report(self, exc: BaseException, ref: ArtifactRef, *, final: bool) -> None:
        if final:
            text = (
                f"labledger: artifact {ref.name!r} of run {self.run_obj.id[:8]} was NOT stored "
                f"({type(exc).__name__}: {exc}); training continues"
            )
        elif not self._warned:
            text = (
                f"labledger: could not store artifact {ref.name!r} of run {self.run_obj.id[:8]} "
                f"({type(exc).__name__}: {exc}); retrying in the background, training continues"
            )
        else:
            return
        self._warned = True
        try:
            warn(text)
        except Exception:  # warnings turned into errors must not kill the thread
            log.warning(text)

    # -- called from finish() --------------------------------------------------------

    def wait_all(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if not self.pending:
                    return True
                ref = self.pending[0]
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            ref._done.wait(remaining if remaining is None else min(remaining, 1.0))

    def finish_hook(self, timeout: float | None) -> None:
        limit = default_timeout() if timeout is None else timeout
        if not self.wait_all(limit):
            with self._lock:
                pending = list(self.pending)
            names = ", ".join(f"{r.name} ({fmt_size(r.size)})" for r in pending[:10])
            more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
            warn(
                f"labledger: run {self.run_obj.id[:8]} finished but {len(pending)} artifact upload(s) are "
                f"still pending after {limit:.0f}s: {names}{more}. They are not registered yet and are lost "
                "if this process exits now (raise LABLEDGER_ARTIFACT_TIMEOUT to wait longer)"
            )
        with self._lock:
            failed, self.failed = list(self.failed), []
        if failed:
            names = ", ".join(f"{r.name} ({type(r.error).__name__}: {r.error})" for r in failed[:5])
            warn(
                f"labledger: run {self.run_obj.id[:8]}: {len(failed)} artifact(s) were NOT stored: {names}"
            )
