"""A version is registered only when every blob is there with the size its manifest declares
(issue #12 item 11): local directory, S3 (moto) and, in tests/server, the tracking server."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import labledger
from labledger._exceptions import InvalidArtifactError
from labledger.artifacts import open_blob_store
from labledger.store._manifest import check_blobs


def _put(blobs: Any, tmp_path: Path, data: bytes) -> str:
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    blobs.put_file(f, sha, len(data))
    return sha


def _truncate(blobs: Any, sha: str, data: bytes) -> None:
    """Damage the stored blob behind the store's back: a shorter copy under the same name."""
    if hasattr(blobs, "client"):
        blobs.client.put_object(Bucket=blobs.bucket, Key=blobs.key(sha), Body=data)
    else:
        p = blobs.path(sha)
        p.chmod(0o644)
        p.write_bytes(data)


def test_sizes_and_existence_are_checked(artifacts_uri: str, tmp_path: Path) -> None:
    blobs = open_blob_store(artifacts_uri)
    data = b"x" * 1000
    sha = _put(blobs, tmp_path, data)
    check_blobs(blobs, [{"path": "m.bin", "sha256": sha, "size": 1000}], "m")
    with pytest.raises(
        InvalidArtifactError, match=r"the manifest says 999 bytes, blob .* holds 1000"
    ):
        check_blobs(blobs, [{"path": "m.bin", "sha256": sha, "size": 999}], "m")
    other = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(InvalidArtifactError, match="not in the artifact store"):
        check_blobs(blobs, [{"path": "n.bin", "sha256": other, "size": 12}], "m")


def test_a_damaged_blob_is_not_registered_as_a_version(
    store_uri: str, artifacts_uri: str, tmp_path: Path
) -> None:
    data = b"weights " * 4096
    blobs = open_blob_store(artifacts_uri)
    sha = _put(blobs, tmp_path, data)
    _truncate(blobs, sha, data[:100])  # the upload is skipped (same sha): only the check sees it
    f = tmp_path / "model.bin"
    f.write_bytes(data)
    expected = r"NOT stored.*says 32768 bytes, blob .* holds 100"
    with (
        pytest.warns(RuntimeWarning, match=expected),
        labledger.init("p", store=store_uri, artifacts=artifacts_uri, capture=False) as run,
    ):
        ref = run.log_artifact(f, name="model")
        assert not ref.wait(60)
    with labledger.Ledger(store_uri) as ledger:
        assert ledger.store.list_artifact_versions("p", "model") == []
