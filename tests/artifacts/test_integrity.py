"""Atomic writes under kill -9, verification catching damage, gc, and failures that never hurt training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import labledger
from labledger import IntegrityError
from labledger.artifacts import LocalBlobStore, open_blob_store
from labledger.store import open_store

ROOT = Path(__file__).resolve().parents[2]


def _child(code: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **env}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=full,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _versions(store_uri: str) -> list[dict[str, Any]]:
    store = open_store(store_uri)
    try:
        return store.list_artifact_versions()
    finally:
        store.close()


_LOG_BIG = """
import labledger
run = labledger.init("atomic", store={store!r}, artifacts={arts!r}, capture=False)
run.log_model({path!r}, name="big")
run.finish()
print("done")
"""


def test_kill_during_local_upload_leaves_no_blob_and_no_version(
    store_uri: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        fh.truncate(512 * 1024 * 1024)  # sparse: cheap to make, real bytes to copy
    arts = tmp_path / "arts"
    proc = _child(_LOG_BIG.format(store=store_uri, arts=str(arts), path=str(big)), tmp_path)
    partial: list[Path] = []
    deadline = time.monotonic() + 60
    while not partial and proc.poll() is None and time.monotonic() < deadline:
        tmp = arts / "tmp"
        partial = [p for p in tmp.glob("*.part") if p.stat().st_size > 0] if tmp.is_dir() else []
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert partial, "the upload finished before it could be interrupted"
    assert "done" not in out
    blobs = LocalBlobStore(arts)
    assert list(blobs.iter_shas()) == []  # the half-written copy never became a blob
    assert _versions(store_uri) == []


def test_kill_during_s3_multipart_upload_leaves_no_object_and_no_version(
    store_uri: str, s3_uri: str, tmp_path: Path
) -> None:
    import boto3

    big = tmp_path / "big.bin"
    big.write_bytes(b"\x01" * (64 * 1024 * 1024))
    proc = _child(_LOG_BIG.format(store=store_uri, arts=s3_uri, path=str(big)), tmp_path)
    blobs = open_blob_store(s3_uri)
    client = boto3.client(
        "s3", endpoint_url=os.environ["LABLEDGER_S3_ENDPOINT_URL"], region_name="us-east-1"
    )
    bucket = s3_uri.split("/")[2]
    uploading = False
    deadline = time.monotonic() + 60
    while not uploading and proc.poll() is None and time.monotonic() < deadline:
        for up in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            parts = client.list_parts(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"]).get(
                "Parts", []
            )
            uploading = uploading or bool(parts)
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert uploading, "the upload finished before it could be interrupted"
    assert "done" not in out
    assert list(blobs.iter_shas()) == []  # an incomplete multipart upload is no object
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert _versions(store_uri) == []


def _damage(blobs: Any, sha: str) -> None:
    if isinstance(blobs, LocalBlobStore):
        p = blobs.path(sha)
        p.chmod(0o644)
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0x01
        p.write_bytes(bytes(data))
    else:
        with blobs.open(sha) as fh:
            data = bytearray(fh.read())
        data[len(data) // 2] ^= 0x01
        blobs.client.put_object(Bucket=blobs.bucket, Key=blobs.key(sha), Body=bytes(data))


def test_verify_catches_a_flipped_byte_and_download_refuses_it(
    store_uri: str, artifacts_uri: str, tmp_path: Path, cli: Any
) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(os.urandom(200_000))
    with labledger.init("v", store=store_uri, artifacts=artifacts_uri, capture=False) as run:
        ref = run.log_model(f)
        run.log_artifact(tmp_path / "w.bin", name="other")  # same blob: verified once
    code, out = cli("artifacts", "verify", "--store", store_uri, "--artifacts", artifacts_uri)
    assert code == 0, out
    assert "all blobs intact" in out

    blobs = open_blob_store(artifacts_uri, store_uri)
    sha = ref.files[0]["sha256"]
    _damage(blobs, sha)
    code, out = cli(
        "artifacts", "verify", "--store", store_uri, "--artifacts", artifacts_uri, "--json"
    )
    assert code == 1
    report = json.loads(out)
    assert [d["sha256"] for d in report["damaged"]] == [sha]

    with (
        labledger.init("v", store=store_uri, artifacts=artifacts_uri, capture=False) as consumer,
        pytest.raises(IntegrityError),
    ):
        consumer.use_artifact("model")
    code, out = cli(
        "artifacts",
        "get",
        "v/model",
        "-o",
        str(tmp_path / "out"),
        "--store",
        store_uri,
        "--artifacts",
        artifacts_uri,
    )
    assert code == 1 and "damaged" in out
    assert not (tmp_path / "out" / "w.bin").exists()


def test_verify_reports_a_missing_blob(store_uri: str, tmp_path: Path, cli: Any) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    with labledger.init("v", store=store_uri, capture=False) as run:
        ref = run.log_model(f)
    open_blob_store(None, store_uri).delete(ref.files[0]["sha256"])
    code, out = cli("artifacts", "verify", "--store", store_uri)
    assert code == 1
    assert "missing" in out and ref.files[0]["sha256"] in out


def test_gc_dry_run_then_yes_removes_only_unreferenced_blobs(
    store_uri: str, artifacts_uri: str, tmp_path: Path, cli: Any
) -> None:
    f = tmp_path / "m.bin"
    with labledger.init("g", store=store_uri, artifacts=artifacts_uri, capture=False) as run:
        f.write_bytes(b"version zero")
        old = run.log_model(f)
        old.wait(30)
        f.write_bytes(b"version one")
        new = run.log_model(f)
    old_sha, new_sha = old.files[0]["sha256"], new.files[0]["sha256"]
    code, out = cli("artifacts", "rm", "g/model:v0", "--yes", "--store", store_uri)
    assert code == 0, out
    blobs = open_blob_store(artifacts_uri, store_uri)

    args = ["--store", store_uri, "--artifacts", artifacts_uri, "--json"]
    code, out = cli("gc", *args)  # default grace period keeps fresh blobs
    assert code == 0 and json.loads(out)["count"] == 0
    code, out = cli("gc", "--min-age", "0", *args)
    report = json.loads(out)
    assert (
        code == 0
        and [b["sha256"] for b in report["unreferenced"]] == [old_sha]
        and not report["deleted"]
    )
    assert blobs.has(old_sha)  # dry run deletes nothing
    code, out = cli("gc", "--min-age", "0", "--yes", *args)
    assert code == 0 and json.loads(out)["count"] == 1
    assert not blobs.has(old_sha) and blobs.has(new_sha)
    with labledger.init("g", store=store_uri, artifacts=artifacts_uri, capture=False) as consumer:
        assert consumer.use_artifact("model").read_bytes() == b"version one"  # latest moved back


def test_finish_waits_for_pending_uploads(store_uri: str, s3_uri: str, tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"\x02" * (24 * 1024 * 1024))
    run = labledger.init("w", store=store_uri, artifacts=s3_uri, capture=False)
    ref = run.log_model(f)
    run.finish()
    assert ref.done and ref.version == 0
    assert [v["name"] for v in _versions(store_uri)] == ["model"]


_UNREACHABLE = """
import labledger
run = labledger.init("down", store={store!r}, artifacts="s3://bucket/x", capture=False)
ref = run.log_model({path!r})
ref2 = run.log_artifact({path!r}, name="second")
for i in range(100):
    run.log({{"loss": 1.0 / (i + 1)}})
print("trained", flush=True)
run.finish()
print("finished", ref.done, ref.version, flush=True)
"""


def test_unreachable_s3_warns_once_and_training_continues(store_uri: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    proc = _child(
        _UNREACHABLE.format(store=store_uri, path=str(f)),
        tmp_path,
        LABLEDGER_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        # long enough for the first failed attempt (boto3's import and its own retries)
        # to be reported on a loaded machine; finish() then gives up waiting
        LABLEDGER_ARTIFACT_TIMEOUT="8",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION="us-east-1",
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "trained" in out and "finished False None" in out
    assert err.count("could not store artifact") == 1  # reported once, not per retry
    assert "2 artifact upload(s) are still pending after 8s" in err
    with labledger.Ledger(store_uri) as ledger:
        run = ledger.runs(project="down")[0]
        assert run["status"] == "finished"
        assert run["metrics"]["loss"]["count"] == 100
        assert ledger.get(run["id"])["artifacts"] == []


def test_a_file_changed_after_hashing_is_refused_and_nothing_becomes_visible(
    artifacts_uri: str, store_uri: str, tmp_path: Path
) -> None:
    from labledger.artifacts import hash_file
    from labledger.artifacts._blobstore import file_fingerprint

    f = tmp_path / "ckpt.bin"
    f.write_bytes(b"a" * 1000)
    sha, size = hash_file(f)
    fp = file_fingerprint(f)
    time.sleep(0.01)
    f.write_bytes(b"b" * 1000)  # same size, rewritten after it was hashed
    blobs = open_blob_store(artifacts_uri, store_uri)
    with pytest.raises(IntegrityError, match="changed after it was logged"):
        if isinstance(blobs, LocalBlobStore):
            blobs.put_file(f, sha, size, fingerprint=fp)  # fast path: fingerprint moved
        else:
            blobs.put_file(f, sha, size)  # streamed and hashed on the way
    if isinstance(blobs, LocalBlobStore):
        with pytest.raises(IntegrityError):
            blobs.put_file(f, sha, size)  # streamed and hashed on the way
    assert not blobs.has(sha)
    assert list(blobs.iter_shas()) == []
