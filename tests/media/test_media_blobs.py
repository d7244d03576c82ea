"""The bytes of rich results live in the artifact blob store (a directory or S3), content
addressed: identical images are one blob, reads are verified, older rich results (bytes in
the ``blobs`` table) still read, ``gc`` keeps them and ``verify`` re-hashes them; on SQLite
with local blobs, PostgreSQL with S3 (a real moto_server on loopback), and through the
server with ``--artifacts-uri s3://`` (live and through the offline outbox)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from tests.server.conftest import S3_ENV, Server, cli_env, make_bucket
from tests.server.conftest import labledger as labledger_cli

import labledger
from labledger._exceptions import IntegrityError
from labledger.artifacts import LocalBlobStore, open_blob_store
from labledger.cli import cli
from labledger.store import open_store


def _images(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(n)]


def _log(uri: str, images: list[np.ndarray], **init: Any) -> str:
    with labledger.init("blobs", store=uri, capture=False, **init) as run:
        for step, img in enumerate(images):
            run.log({"samples": labledger.Image(img), "loss": 1.0 / (step + 1)}, step=step)
        run.log({"preds": labledger.Table(rows=[[1, "cat"]], columns=["id", "label"])}, step=0)
        return run.id


def _all_bytes(uri: str, run_id: str) -> dict[tuple[str, int], bytes]:
    with labledger.Ledger(uri) as ledger:
        items = ledger.media(run_id)
        got = {(m["key"], m["step"]): ledger.media_bytes(run_id, m) for m in items}
        for m in items:
            assert hashlib.sha256(got[(m["key"], m["step"])]).hexdigest() == m["sha256"]
        return got


def _blob_files(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs").rglob("*") if p.is_file()}


def _table_blobs(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT count(*) FROM blobs").fetchone()[0])


def _s3_keys(uri: str) -> set[str]:
    from labledger.artifacts._s3 import S3BlobStore

    store = open_blob_store(uri)
    assert isinstance(store, S3BlobStore)
    return set(store.iter_shas())


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Env pointing boto3 at the session's moto_server; returns its endpoint."""
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("LABLEDGER_S3_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


# -- SQLite + a local blob directory ---------------------------------------------------


def test_identical_images_in_two_runs_are_one_blob_beside_the_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'ledger.db'}"
    shared = _images(0, 3)
    a = _log(uri, shared)
    b = _log(uri, [shared[0], *_images(1, 1)])  # one image again, one new
    root = tmp_path / "artifacts"  # the default: beside the SQLite file
    with labledger.Ledger(uri) as ledger:
        shas = {m["sha256"] for r in (a, b) for m in ledger.media(r)}
    assert len(shas) == 3 + 1 + 1  # 3 images, the table (same in both runs), 1 new image
    assert _blob_files(root) == shas
    assert _table_blobs(tmp_path / "ledger.db") == 0  # no media bytes in the database
    assert _all_bytes(uri, b)[("samples", 0)] == _all_bytes(uri, a)[("samples", 0)]
    # `labledger media get` writes the very bytes that were stored
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["media", "get", a, "samples", "-o", str(out), "--store", uri])
    assert res.exit_code == 0, res.output
    files = sorted((out / "samples").iterdir())
    assert [hashlib.sha256(f.read_bytes()).hexdigest() for f in files] == [
        m["sha256"] for m in labledger.Ledger(uri).media(a, "samples")
    ]


def test_a_large_batch_is_encoded_in_parallel_and_staged_without_leftovers(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'ledger.db'}"
    images = _images(9, 150)  # one batch: encoded on threads, files staged as they come
    run_id = _log(uri, [*images, images[0]], flush_interval=60.0)
    root = tmp_path / "artifacts"
    with labledger.Ledger(uri) as ledger:
        items = ledger.media(run_id, "samples")
    assert [m["step"] for m in items] == list(range(151))
    assert _blob_files(root) == {m["sha256"] for m in ledger.media(run_id)}
    assert not list((root / "tmp").iterdir())  # every staged file was put in place
    got = _all_bytes(uri, run_id)
    assert got[("samples", 150)] == got[("samples", 0)]


def test_export_carries_references_to_rich_results(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'ledger.db'}"
    run_id = _log(uri, _images(8, 3))
    res = CliRunner().invoke(cli, ["export", "--format", "json", "--store", uri])
    assert res.exit_code == 0, res.output
    (row,) = [r for r in json.loads(res.output) if r["id"] == run_id]
    with labledger.Ledger(uri) as ledger:
        last = ledger.media(run_id, "samples", step=2)[0]
    assert row["media.samples"] == f"sha256:{last['sha256']}"
    assert (row["media.samples.step"], row["media.samples.kind"]) == (2, "image")
    assert (row["media.samples.size"], row["media.samples.count"]) == (last["size"], 3)
    assert (row["media.preds.kind"], row["media.preds.count"]) == ("table", 1)


def test_bytes_go_to_the_artifacts_location_given_to_init(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'ledger.db'}"
    elsewhere = tmp_path / "team-blobs"
    run_id = _log(uri, _images(2, 2), artifacts=str(elsewhere))
    assert len(_blob_files(elsewhere)) == 3
    assert not (tmp_path / "artifacts").exists()
    # a reader told nothing finds them: each media row names its blob store
    with labledger.Ledger(uri) as ledger:
        item = ledger.media(run_id, "samples", step=1)[0]
        assert hashlib.sha256(ledger.media_bytes(run_id, item)).hexdigest() == item["sha256"]


def test_rich_results_stored_in_the_blobs_table_before_still_read(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'ledger.db'}"
    run_id = _log(uri, _images(3, 1))
    before = _all_bytes(uri, run_id)
    # as an older version stored them: the bytes in the run store's `blobs` table only
    store = open_store(uri)
    try:
        for data in before.values():
            store.put_blob(data)
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "ledger.db") as con:
        con.execute("UPDATE media SET storage = NULL")  # rows written before migration 0013
    for p in (tmp_path / "artifacts" / "blobs").rglob("*"):
        if p.is_file():
            p.unlink()
    assert _all_bytes(uri, run_id) == before
    # and verify does not expect them in the blob store
    res = CliRunner().invoke(cli, ["artifacts", "verify", "--json", "--store", uri])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["missing"] == []


def test_gc_keeps_media_blobs_and_verify_rehashes_them(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'ledger.db'}"
    run_id = _log(uri, _images(4, 2))
    blobs = LocalBlobStore(tmp_path / "artifacts")
    stray = b"nobody refers to me"
    blobs.put_bytes(hashlib.sha256(stray).hexdigest(), stray)
    res = CliRunner().invoke(cli, ["gc", "--min-age", "0", "--yes", "--json", "--store", uri])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert [b["sha256"] for b in report["unreferenced"]] == [hashlib.sha256(stray).hexdigest()]
    assert len(_all_bytes(uri, run_id)) == 3  # every rich result still reads
    # verify re-hashes media blobs: a damaged one is reported, a missing one too
    with labledger.Ledger(uri) as ledger:
        first, second = ledger.media(run_id, "samples")
    damaged = blobs.path(first["sha256"])
    damaged.chmod(0o644)
    damaged.write_bytes(b"bit rot")
    blobs.path(second["sha256"]).unlink()
    res = CliRunner().invoke(cli, ["artifacts", "verify", "--json", "--store", uri])
    assert res.exit_code == 1, res.output
    report = json.loads(res.output)
    assert [d["sha256"] for d in report["damaged"]] == [first["sha256"]]
    assert report["missing"] == [second["sha256"]]
    with pytest.raises(IntegrityError), labledger.Ledger(uri) as ledger:
        ledger.media_bytes(run_id, first)


def test_put_many_refuses_bytes_that_are_not_their_sha(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "b")
    good = b"good bytes"
    with pytest.raises(IntegrityError):
        blobs.put_many({hashlib.sha256(good).hexdigest(): good, "0" * 64: b"not zeros"})
    assert not (tmp_path / "b" / "blobs").exists()  # nothing of the batch was written
    blobs.put_many({hashlib.sha256(good).hexdigest(): good})
    assert blobs.get_bytes(hashlib.sha256(good).hexdigest()) == good
    assert not list((tmp_path / "b" / "tmp").iterdir())  # no partial files left


# -- PostgreSQL + S3 (moto_server on loopback) -----------------------------------------


@pytest.mark.postgres
def test_postgres_with_s3_blobs(pg_uri: str, s3_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = make_bucket(s3_env)
    monkeypatch.setenv("LABLEDGER_ARTIFACTS_URI", bucket)
    shared = _images(5, 2)
    a = _log(pg_uri, shared)
    b = _log(pg_uri, shared)  # the same images again: no new object
    with labledger.Ledger(pg_uri) as ledger:
        shas = {m["sha256"] for r in (a, b) for m in ledger.media(r)}
        assert ledger.store.media_blob_shas() == shas
    assert _s3_keys(bucket) == shas
    assert _all_bytes(pg_uri, a) == _all_bytes(pg_uri, b)
    blobs = open_blob_store(bucket)
    with pytest.raises(IntegrityError):
        blobs.put_many({"1" * 64: b"x", "2" * 64: b"y"})  # type: ignore[attr-defined]
    assert _s3_keys(bucket) == shas


# -- through the server, --artifacts-uri s3:// ------------------------------------------

OFFLINE = """
import numpy as np, labledger
rng = np.random.default_rng(7)
with labledger.init(project="blobs", name="offline", capture=False) as run:
    for s in range(3):
        run.log({"samples": labledger.Image(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))}, step=s)
print(run.id)
"""


def _media_get(env: dict[str, str], run_id: str, out: Path) -> list[str]:
    got = labledger_cli("media", "get", run_id, "samples", "-o", str(out), env=env)
    assert got.returncode == 0, got.stderr
    return [hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted((out / "samples").iterdir())]


@pytest.mark.slow
def test_server_puts_media_bytes_in_its_s3_store_live_and_from_the_outbox(
    tmp_path: Path, s3_env: str
) -> None:
    from tests.conftest import run_script

    bucket = make_bucket(s3_env)
    s3 = {**S3_ENV, "LABLEDGER_S3_ENDPOINT_URL": s3_env}
    db = tmp_path / "server.db"
    srv = Server(f"sqlite:///{db}", tmp_path, artifacts_uri=bucket, env=s3)
    srv.start()
    spool = tmp_path / "spool"
    client = {"LABLEDGER_URI": srv.url, "LABLEDGER_SPOOL_DIR": str(spool)}
    try:
        live = _log(srv.url, _images(6, 3))
        with labledger.Ledger(srv.url) as ledger:
            shas = [m["sha256"] for m in ledger.media(live, "samples")]
        assert _media_get(client, live, tmp_path / "live") == shas
        assert set(shas) <= _s3_keys(bucket)
        assert _table_blobs(db) == 0  # nothing in the server's database
        # read from the server's database directly: its rows name the bucket
        direct = {"LABLEDGER_URI": f"sqlite:///{db}", **s3}
        assert _media_get(direct, live, tmp_path / "direct") == shas

        srv.kill()  # down: the client keeps the run in its outbox
        env = cli_env({**client, "LABLEDGER_SYNC_TIMEOUT": "1"})
        proc = run_script(OFFLINE, cwd=tmp_path, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        offline = proc.stdout.strip().splitlines()[-1]
        srv.start()
        synced = labledger_cli("sync", "--spool-dir", str(spool), "--json", env=client)
        assert synced.returncode == 0, synced.stderr
        with labledger.Ledger(srv.url) as ledger:
            shas = [m["sha256"] for m in ledger.media(offline, "samples")]
        assert len(shas) == 3
        assert _media_get(client, offline, tmp_path / "offline") == shas
        assert set(shas) <= _s3_keys(bucket)
    finally:
        srv.stop()
