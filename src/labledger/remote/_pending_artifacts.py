"""Artifacts in the offline spool: what a run could not upload because its server was unreachable.

When the tracking server cannot be reached, the artifact uploader does not retry for
minutes: it writes one spool record per pending artifact (kind ``"artifact"``) into the
run's outbox session (``Run.defer_artifact``, behind the run's batches) and moves on.
The record names the local files, their sizes and sha256 (the manifest), the artifact's project, name and
kind, the run id and the server. Files are NOT copied into the spool, except small ones
(at most :data:`INLINE_MAX` bytes each, embedded base64): the others must still exist,
unchanged, when the record is replayed. Replaying (the run's writer once the server
answers, or ``labledger sync``) re-hashes each file first and refuses a record whose
file is gone or changed, which then goes to the spool's ``rejected/`` with the reason; otherwise it
uploads the missing blobs, then registers the version.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._exceptions import LabledgerError
from .._values import fmt_size
from ..artifacts import server_unreachable

if TYPE_CHECKING:
    from ..store import ArtifactCatalog

__all__ = ["INLINE_MAX", "artifact_record", "describe_artifact", "replay_artifact"]

INLINE_MAX = 64 * 1024
_API = "/api/v1"


def artifact_record(
    *,
    uri: str,
    run_id: str,
    project: str,
    name: str,
    kind: str,
    manifest: Sequence[Mapping[str, Any]],
    sources: Mapping[str, tuple[str, int]],
    metadata: Mapping[str, Any],
    storage: str | None,
    sha256: str,
) -> dict[str, Any]:
    """The spool record of one artifact version not yet uploaded (``sources``: sha -> (file, size))."""
    blobs: list[dict[str, Any]] = []
    for sha, (path, size) in sources.items():
        blob: dict[str, Any] = {"sha256": sha, "size": int(size), "path": os.path.abspath(path)}
        if size <= INLINE_MAX:
            try:
                with open(path, "rb") as fh:
                    data = fh.read(INLINE_MAX + 1)
            except OSError:
                data = b""
            if len(data) == size and hashlib.sha256(data).hexdigest() == sha:
                blob["data"] = base64.b64encode(data).decode("ascii")
        blobs.append(blob)
    return {
        "v": 1,
        "kind": "artifact",
        "uri": uri,
        "method": "POST",
        "path": f"{_API}/projects/{project}/artifacts/{name}/versions",
        "run_id": run_id,
        "body": {
            "project": project,
            "name": name,
            "kind": kind,
            "sha256": sha256,
            "manifest": [dict(f) for f in manifest],
            "metadata": dict(metadata),
            "storage": storage,
            "blobs": blobs,
        },
    }


def describe_artifact(record: Mapping[str, Any]) -> str:
    """``project/name (12.3 KB)`` for messages."""
    body = record.get("body") or {}
    size = sum(int(b.get("size", 0)) for b in body.get("blobs", []))
    return f"{body.get('project')}/{body.get('name')} ({fmt_size(size)})"


def _check_files(blobs: Sequence[Mapping[str, Any]]) -> str | None:
    """None when every blob's source is there with its recorded sha256; else the reason."""
    from ..artifacts import hash_file

    for b in blobs:
        if "data" in b:
            data = base64.b64decode(str(b["data"]))
            if hashlib.sha256(data).hexdigest() != b["sha256"]:
                return f"the copy of {b['path']} in the spool record is damaged"
            continue
        try:
            sha, size = hash_file(str(b["path"]))
        except OSError as exc:
            return f"{b['path']} cannot be read any more ({exc.strerror or exc}); the artifact was not uploaded"
        if sha != b["sha256"] or size != int(b["size"]):
            return (
                f"{b['path']} changed since it was logged (sha256 {sha[:12]}…, "
                f"logged {str(b['sha256'])[:12]}…); the artifact was not uploaded"
            )
    return None


def replay_artifact(store: ArtifactCatalog, record: Mapping[str, Any]) -> tuple[str, Any]:
    """Upload one spooled artifact through ``store``: (SendResult, version or reason)."""
    from ..artifacts import open_blob_store
    from .spool import SendResult

    body = record.get("body") or {}
    blobs_meta: list[dict[str, Any]] = list(body.get("blobs", []))
    reason = _check_files(blobs_meta)
    if reason:
        return SendResult.REJECTED, reason
    recorded = str(record.get("uri") or "")
    storage = body.get("storage")
    if not storage or storage == recorded:
        storage = store.uri  # the bytes go to the server (sync --uri may name another)
    try:
        done = _existing_version(store, body, str(record.get("run_id") or ""))
        if done is not None:  # registered before the answer was lost: not a second version
            return SendResult.OK, done
        blobs = open_blob_store(str(storage), store.uri)
        try:
            for b in blobs_meta:
                sha, size = str(b["sha256"]), int(b["size"])
                if blobs.has(sha):
                    continue
                if "data" in b:
                    _put_bytes(blobs, base64.b64decode(str(b["data"])), sha, size)
                else:
                    blobs.put_file(str(b["path"]), sha, size)
        finally:
            close = getattr(blobs, "close", None)
            if close is not None:
                close()
        version = store.create_artifact_version(
            str(body["project"]),
            str(body["name"]),
            str(body["kind"]),
            record.get("run_id"),
            list(body["manifest"]),
            dict(body.get("metadata") or {}),
            storage=str(storage),
            late=True,  # logged before the run ended, which may have ended since
        )
    except Exception as exc:
        if server_unreachable(exc) or (isinstance(exc, LabledgerError) and "HTTP 5" in str(exc)):
            return SendResult.RETRY, f"{type(exc).__name__}: {exc}"
        return SendResult.REJECTED, f"{type(exc).__name__}: {exc}"
    return SendResult.OK, version


def _existing_version(
    store: ArtifactCatalog, body: Mapping[str, Any], run_id: str
) -> dict[str, Any] | None:
    for v in store.list_artifact_versions(str(body["project"]), str(body["name"])):
        if v.get("run_id") == run_id and v.get("sha256") == body.get("sha256"):
            return v
    return None


def _put_bytes(blobs: Any, data: bytes, sha: str, size: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".labledger-spool-", suffix=".blob")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        blobs.put_file(tmp, sha, size)
    finally:
        os.unlink(tmp)
