"""Contract configuration (LABLEDGER_ARTIFACTS_URI, AWS_ENDPOINT_URL) and a failure that heals."""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from pathlib import Path

import pytest

import labledger
from labledger.artifacts import LocalBlobStore, open_blob_store


def test_artifacts_uri_and_aws_endpoint_url_from_the_environment(
    s3_uri: str, moto_endpoint: str, store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``artifacts=`` argument: env LABLEDGER_ARTIFACTS_URI picks S3, and the endpoint comes
    from the standard AWS_ENDPOINT_URL (the labledger-specific variable is unset)."""
    import boto3

    monkeypatch.delenv("LABLEDGER_S3_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("LABLEDGER_ARTIFACTS_URI", s3_uri)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(os.urandom(50_000))
    with labledger.init("envcfg", store=store_uri, capture=False) as run:
        ref = run.log_model(weights)
    assert ref.wait(0) and ref.uri == "envcfg/model:v0"

    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    bucket, _, prefix = s3_uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [f"{prefix}/blobs/{sha[:2]}/{sha}"]
    assert not (tmp_path / "store" / "artifacts").exists()  # nothing fell back to the local default

    with labledger.init("envcfg", store=store_uri, capture=False) as consumer:
        assert consumer.use_artifact("model:latest").read_bytes() == weights.read_bytes()


def test_a_transient_disk_failure_is_retried_and_the_upload_completes(
    store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The artifact folder cannot be created at first (a file is in the way); once it can,
    the background retry stores the blob and registers the version, with one warning."""
    blocker = tmp_path / "mnt"
    blocker.write_text("not a directory yet")
    arts = blocker / "artifacts"
    f = tmp_path / "w.pkl"
    f.write_bytes(b"pickled weights" * 1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = labledger.init("retry", store=store_uri, artifacts=str(arts), capture=False)
        try:
            ref = run.log_model(f)  # returns at once: storing happens in the background
            for i in range(50):
                run.log({"loss": 1.0 / (i + 1)})
            deadline = time.monotonic() + 30
            while not [w for w in caught if "could not store artifact" in str(w.message)]:
                assert time.monotonic() < deadline, [str(w.message) for w in caught]
                time.sleep(0.05)
            assert not ref.done  # still pending, being retried
            blocker.unlink()  # the "disk" comes back
            assert ref.wait(60), ref.error
        finally:
            run.finish()
    assert ref.uri == "retry/model:v0"
    mine = [str(w.message) for w in caught if "artifact" in str(w.message)]
    assert len(mine) == 1 and "retrying in the background" in mine[0], mine
    blobs = open_blob_store(str(arts), store_uri)
    assert isinstance(blobs, LocalBlobStore)
    assert blobs.has(hashlib.sha256(f.read_bytes()).hexdigest())
    with labledger.Ledger(store_uri) as ledger:
        rec = ledger.get(run.id)
    assert rec["status"] == "finished" and rec["metrics"]["loss"]["count"] == 50
    assert [a["uri"] for a in rec["artifacts"]] == ["retry/model:v0"]
