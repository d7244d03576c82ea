"""Artifact store: content-addressed files and models with versions, aliases and lineage.

- ``Run.log_artifact`` / ``Run.log_model`` -> :func:`log_artifact`: validate, hash while
  streaming, hand the upload to a background thread, register ``project/name:vN``.
- ``Run.use_artifact`` -> :func:`use_artifact`: record lineage, return a verified local copy.
- Metadata lives in the run store (``Store.create_artifact_version`` & co.), bytes in
  a :class:`BlobStore` (a local directory or ``s3://bucket/prefix``).

See docs/artifacts.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import IntegrityError, InvalidArtifactError, RunFinishedError
from .._settings import setting
from ..store import default_name, manifest_digest, parse_ref, scan, validate_kind, validate_name
from ._blobstore import (
    BlobInfo,
    BlobStore,
    Fingerprint,
    LocalBlobStore,
    atomic_download,
    check_sha,
    file_fingerprint,
    hash_file,
    is_sha256,
    open_blob_store,
    resolve_artifacts_uri,
)
from ._uploader import ArtifactRef, Uploader, UploadJob, server_unreachable

if TYPE_CHECKING:
    from ..store import ArtifactCatalog
    from ._maintenance import collect_garbage, verify_blobs
    from ._s3 import S3BlobStore
    from ._uploader import Run

__all__ = [
    "ArtifactRef",
    "BlobInfo",
    "BlobStore",
    "Fingerprint",
    "LocalBlobStore",
    "S3BlobStore",
    "atomic_download",
    "check_sealed",
    "check_sha",
    "collect_garbage",
    "download_artifact",
    "file_fingerprint",
    "hash_file",
    "is_sha256",
    "log_artifact",
    "open_blob_store",
    "parse_ref",
    "reader_blob_store",
    "resolve_artifacts_uri",
    "server_unreachable",
    "use_artifact",
    "verify_blobs",
]


def __getattr__(name: str) -> Any:
    # the maintenance commands (verify, gc) are loaded on first use
    if name in ("collect_garbage", "verify_blobs"):
        from . import _maintenance

        return getattr(_maintenance, name)
    if name == "S3BlobStore":  # (boto3, on first use)
        from ._s3 import S3BlobStore

        return S3BlobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_uploader_lock = threading.Lock()


def _check_uri(uri: str) -> None:
    from ..store import blob_scheme

    blob_scheme(uri)  # UsageError for a scheme no blob store serves


def _uploader_for(run: Run) -> Uploader:
    with _uploader_lock:
        up: Uploader | None = getattr(run, "_artifact_uploader", None)
        if up is not None and up.is_alive():
            return up
        uri = resolve_artifacts_uri(run.artifacts_uri, run.store_uri)
        _check_uri(uri)
        store_uri = run.store_uri
        up = Uploader(run, lambda: open_blob_store(uri, store_uri))
        run._artifact_uploader = up  # type: ignore[attr-defined]
        hooks = getattr(run, "_before_finish", None)
        if hooks is not None:
            hooks.append(up.finish_hook)
        up.start()
        return up


def log_artifact(
    run: Run, path: str | os.PathLike[str], *, name: str | None = None, kind: str | None = None
) -> ArtifactRef:
    """Store a file or directory as the next version of artifact ``name`` in the run's project.

    Hashes the content here (sha256 streamed in 8 MiB chunks), then uploads in the
    background: blobs the store already has are skipped. Raises
    :class:`InvalidArtifactError` for a bad name or an unsafe path (absolute or ``..``
    paths, symlinks leaving the directory, device files, FIFOs, sockets). Returns an
    :class:`ArtifactRef`; ``ref.wait()`` blocks until the version is registered.
    Do not modify the files until then (a file that changed is refused, not stored).
    """
    if run._finished:
        raise RunFinishedError(run.id, run.status)
    kind = validate_kind(kind if kind is not None else "artifact")
    p = Path(os.fspath(path)).expanduser()
    root_type, files = scan(p)
    name = validate_name(name) if name is not None else default_name(p.absolute())
    manifest: list[dict[str, Any]] = []
    sources: dict[str, tuple[str, int, Fingerprint]] = {}
    for f in files:
        before = file_fingerprint(f.source)
        sha, size = hash_file(f.source)
        after = file_fingerprint(f.source)
        if before != after or size != after[0]:
            raise InvalidArtifactError(
                f.source, "the file changed while it was being hashed; log it once it is complete"
            )
        manifest.append({"path": f.relpath, "sha256": sha, "size": size})
        sources.setdefault(sha, (f.source, size, after))
    ref = ArtifactRef(
        run.project, name, kind, root_type, manifest, manifest_digest(root_type, manifest)
    )
    meta = {"type": root_type, "source": str(p.absolute())}
    _uploader_for(run).submit(UploadJob(ref, sources, meta))
    return ref


def reader_blob_store(
    version: dict[str, Any], artifacts_uri: str | None, store_uri: str | None
) -> BlobStore:
    """Where to read a version's bytes: an explicit location (argument or env), else where it
    was written (``version["storage"]``), else the default beside the store."""
    explicit = artifacts_uri or setting("LABLEDGER_ARTIFACTS_URI")
    if explicit:
        return open_blob_store(explicit, store_uri)
    if version.get("storage"):
        return open_blob_store(version["storage"], store_uri)
    return open_blob_store(None, store_uri)


def use_artifact(run: Run, ref: str) -> Path:
    """Record that ``run`` consumes artifact ``ref``; return the path of a verified local copy.

    ``ref`` is ``name`` (latest), ``name:v3``, ``name:alias`` or ``project/name:alias``.
    A file artifact gives the file's path, a directory artifact the directory's.
    """
    if run._finished:
        raise RunFinishedError(run.id, run.status)
    parse_ref(ref)  # a malformed reference raises here, before waiting on the store
    store = run.store()
    version = store.get_artifact_version(run.project, ref)
    store.record_artifact_use(run.id, version["id"])
    from ._cache import cached_path

    return cached_path(version, reader_blob_store(version, run.artifacts_uri, run.store_uri))


def download_artifact(
    store: ArtifactCatalog,
    project: str,
    ref: str,
    dest: str | os.PathLike[str],
    artifacts_uri: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], list[Path]]:
    """Write the files of version ``ref`` under ``dest`` (each verified); return (version, paths).

    ``on_progress(bytes_done, bytes_total)`` follows the transfer (a progress bar).
    """
    from ._cache import materialize

    version = store.get_artifact_version(project, ref)
    check_sealed(store, version)
    blobs = reader_blob_store(version, artifacts_uri, store.uri)
    return version, materialize(version, blobs, dest, on_progress)


def check_sealed(store: Any, version: dict[str, Any]) -> None:
    """Refuse (IntegrityError) a version whose file rows are not the manifest its producing
    run's sealed record holds: each file's bytes are then checked against that manifest.

    Without a sealed record (the run still goes, or a store without an audit trail) the
    version's own digest, re-derived from its files in :func:`materialize`, is the check."""
    from ..store import AuditTrail, artifact_field

    run_id = version.get("run_id")
    if not isinstance(store, AuditTrail) or not run_id:
        return

    mine = artifact_field(version["name"], version["version"])
    result = store.verify_run(run_id)
    bad = [p for p in result.get("problems", []) if p.get("field") in (mine, "artifacts")]
    if result.get("sealed") and bad:
        raise IntegrityError(
            f"artifact {version.get('uri') or mine}",
            str(version.get("sha256", "")),
            "",
            reason=f"its manifest is not the one run {run_id[:12]} sealed ({bad[0]['message']})",
        )
