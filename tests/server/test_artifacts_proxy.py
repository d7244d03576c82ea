"""Artifacts proxied through the tracking server: real uvicorn, PostgreSQL, moto_server S3.

Training processes talk only to the server (``LABLEDGER_URI=http://...``) and hold no
cloud credentials; the server keeps the bytes in S3 (moto) or a local directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from labledger._exceptions import AuthError, IntegrityError, NotFoundError, UsageError
from labledger.remote.http import HttpBlobStore, HttpStore
from labledger.store import Store

from .conftest import S3_ENV, Server, cli_env, labledger, make_bucket, make_token

TRAIN = r"""
import json, pathlib, sys
import labledger
root = pathlib.Path(sys.argv[1])
run = labledger.init(project=sys.argv[2], name="train")
refs = [
    run.log_artifact(root / "data.csv", name="data"),
    run.log_artifact(root / "ds", name="ds"),
    run.log_model(root / "model.pt", name="weights"),
]
ok = [r.wait(60) for r in refs]
up = run._artifact_uploader
print(json.dumps({"id": run.id, "ok": ok, "uploaded": up.bytes_uploaded, "skipped": up.blobs_skipped,
                  "versions": [r.version for r in refs]}))
run.finish()
"""

CONSUME = r"""
import json, pathlib, sys
import labledger
run = labledger.init(project=sys.argv[1], name="eval")
out = {"id": run.id}
data = run.use_artifact("data")
ds = run.use_artifact("ds:v0")
model = run.use_artifact("weights:latest")
out["data"] = pathlib.Path(data).read_text()
out["ds"] = {str(p.relative_to(ds)): p.read_text() for p in sorted(pathlib.Path(ds).rglob("*")) if p.is_file()}
out["model"] = pathlib.Path(model).read_bytes().hex()
run.finish()
print(json.dumps(out))
"""


def _python(code: str, *args: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    # no AWS variables: the client needs no cloud credentials
    full = {k: v for k, v in cli_env(env).items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.fixture(scope="module")
def world(
    module_pg: str, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Two servers over one database: one keeps blobs in S3 (moto), one in a directory."""
    bucket = make_bucket(moto_endpoint)
    local_dir = tmp_path_factory.mktemp("server-blobs")
    s3_env = {**S3_ENV, "LABLEDGER_S3_ENDPOINT_URL": moto_endpoint}
    servers = {
        "s3": Server(
            module_pg, tmp_path_factory.mktemp("srv-s3"), artifacts_uri=bucket, env=s3_env
        ),
        "local": Server(
            module_pg, tmp_path_factory.mktemp("srv-local"), artifacts_uri=str(local_dir)
        ),
    }
    for s in servers.values():
        s.start()
    try:
        srv = servers["local"]
        tokens = {
            "root": make_token(srv, "root", "*", "admin"),
            "alice": make_token(srv, "alice", "alpha", "write"),
            "bob": make_token(srv, "bob", "alpha", "read"),
            "dave": make_token(srv, "dave", "gamma", "write"),
        }
        yield {
            "servers": servers,
            "bucket": bucket,
            "local_dir": local_dir,
            "moto": moto_endpoint,
            "tokens": tokens,
        }
    finally:
        for s in servers.values():
            s.stop()


def _stored_shas(world: dict[str, Any], backend: str) -> set[str]:
    if backend == "local":
        return {p.name for p in Path(world["local_dir"], "blobs").rglob("*") if p.is_file()}
    import boto3

    from labledger.artifacts._s3 import parse_s3_uri

    bucket, prefix = parse_s3_uri(world["bucket"])
    client = boto3.client("s3", endpoint_url=world["moto"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"].rsplit("/", 1)[-1] for o in listed}


@pytest.mark.parametrize("backend", ["s3", "local"])
def test_log_and_use_artifacts_through_the_server(
    world: dict[str, Any], backend: str, tmp_path: Path
) -> None:
    srv: Server = world["servers"][backend]
    project = f"proj-{backend}"
    env = {"LABLEDGER_URI": srv.url, "LABLEDGER_TOKEN": world["tokens"]["root"],
           "LABLEDGER_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    src = tmp_path / "src"
    (src / "ds" / "sub").mkdir(parents=True)
    (src / "data.csv").write_text("a,b\n1,2\n")
    (src / "ds" / "x.txt").write_text("x-content")
    (src / "ds" / "sub" / "y.txt").write_text("y-content")
    model = os.urandom(3 * 1024 * 1024 + 17)  # several upload chunks
    (src / "model.pt").write_bytes(model)
    expected = {hashlib.sha256(b).hexdigest() for b in
                (b"a,b\n1,2\n", b"x-content", b"y-content", model)}  # fmt: skip

    first = _python(TRAIN, str(src), project, env=env, cwd=tmp_path)
    assert first["ok"] == [True, True, True] and first["versions"] == [0, 0, 0]
    assert first["uploaded"] == sum(
        len(b) for b in (b"a,b\n1,2\n", b"x-content", b"y-content", model)
    )
    stored = _stored_shas(world, backend)
    assert expected <= stored

    # dedup: logging the same content again uploads nothing and stores no new blob
    again = _python(TRAIN, str(src), project, env=env, cwd=tmp_path)
    assert again["ok"] == [True, True, True] and again["versions"] == [1, 1, 1]
    assert again["uploaded"] == 0 and again["skipped"] == 4
    assert _stored_shas(world, backend) == stored

    # another run consumes them through the server, with verified bytes
    env["LABLEDGER_CACHE_DIR"] = str(tmp_path / "cache2")
    used = _python(CONSUME, project, env=env, cwd=tmp_path)
    assert used["data"] == "a,b\n1,2\n"
    assert used["ds"] == {"x.txt": "x-content", "sub/y.txt": "y-content"}
    assert bytes.fromhex(used["model"]) == model

    store = HttpStore(srv.url, token=world["tokens"]["root"], spool_dir=tmp_path / "spool")
    try:
        assert isinstance(store, Store)
        lineage = store.list_run_artifacts(used["id"])
        assert {(v["name"], v["version"]) for v in lineage["consumed"]} == {
            ("data", 1),
            ("ds", 0),
            ("weights", 1),
        }
        produced = store.list_run_artifacts(first["id"])["produced"]
        assert {v["name"] for v in produced} == {"data", "ds", "weights"}
        weights = store.get_artifact_version(project, "weights:v0")
        assert weights["kind"] == "model" and weights["storage"] == srv.url
        assert store.artifact_consumers(store.get_artifact_version(project, "ds:v0")["id"]) == [
            used["id"]
        ]
        aliased = store.set_artifact_alias(project, "weights", 0, "best")
        assert "best" in aliased["aliases"]
        assert store.get_artifact_version(project, "weights:best")["id"] == weights["id"]
        assert expected <= store.referenced_blob_shas()
        assert len(store.list_artifact_versions(project, "data")) == 2
        # the run record (labledger show) lists produced and used artifacts
        run = store.get_run(used["id"])
        assert {a["name"] for a in run.get("used_artifacts") or []} == {"data", "ds", "weights"}
    finally:
        store.close()

    # the CLI works against the server too
    cli = {"LABLEDGER_URI": srv.url, "LABLEDGER_TOKEN": world["tokens"]["root"]}
    out = labledger("artifacts", "get", f"{project}/ds:v1", "-o", str(tmp_path / "got"), env=cli)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "got" / "sub" / "y.txt").read_text() == "y-content"
    out = labledger("artifacts", "ls", first["id"], env=cli)
    assert out.returncode == 0, out.stderr
    assert "weights" in out.stdout and "ds" in out.stdout


def test_corrupted_upload_is_refused(world: dict[str, Any], tmp_path: Path) -> None:
    srv: Server = world["servers"]["s3"]
    auth = {"Authorization": f"Bearer {world['tokens']['root']}"}
    good = os.urandom(2 * 1024 * 1024)
    sha = hashlib.sha256(good).hexdigest()
    bad = bytearray(good)
    bad[12345] ^= 0xFF
    with httpx.Client(base_url=srv.url, headers=auth, timeout=60) as c:
        r = c.put(f"/api/v1/artifact-blobs/{sha}", content=bytes(bad))
        assert r.status_code == 400 and r.json()["code"] == "integrity"
        assert set(r.json()) == {"code", "message", "details"}
        assert c.head(f"/api/v1/artifact-blobs/{sha}").status_code == 404
        assert sha not in _stored_shas(world, "s3")
        # a version whose blobs never arrived is refused
        r = c.post("/api/v1/projects/proj-x/artifacts/m/versions",
                   json={"manifest": [{"path": "m.bin", "sha256": sha, "size": len(good)}]})  # fmt: skip
        assert r.status_code == 409 and r.json()["details"]["missing"] == [sha]

    # the client: a file that no longer matches its hash is refused, not stored
    f = tmp_path / "f.bin"
    f.write_bytes(bytes(bad))
    blobs = HttpBlobStore(srv.url, token=world["tokens"]["root"])
    try:
        with pytest.raises(IntegrityError):
            blobs.put_file(f, sha, len(good))
        assert not blobs.has(sha)
        f.write_bytes(good)
        blobs.put_file(f, sha, len(good))
        assert blobs.has(sha) and sha in _stored_shas(world, "s3")
        blobs.download(sha, tmp_path / "back.bin")
        assert (tmp_path / "back.bin").read_bytes() == good
        with blobs.open(sha) as fh:
            assert fh.read() == good
    finally:
        blobs.close()
    with httpx.Client(base_url=srv.url, headers=auth) as c:
        r = c.get(f"/api/v1/artifact-blobs/{sha}")
        assert r.headers["content-disposition"] == f'attachment; filename="{sha}"'
        assert r.content == good
        # a manifest whose size does not match the stored blob is refused (downloads of
        # such a version would break mid-stream)
        r = c.post("/api/v1/projects/proj-x/artifacts/m/versions",
                   json={"manifest": [{"path": "m.bin", "sha256": sha, "size": len(good) + 1}]})  # fmt: skip
        assert r.status_code == 400 and r.json()["code"] == "size_mismatch", r.text
        assert f"says {len(good) + 1} bytes" in r.json()["message"]
        r = c.post("/api/v1/projects/proj-x/artifacts/m/versions",
                   json={"manifest": [{"path": "m.bin", "sha256": sha, "size": len(good)}]})  # fmt: skip
        assert r.status_code == 201, r.text


def test_path_tricks_are_rejected(world: dict[str, Any]) -> None:
    srv: Server = world["servers"]["local"]
    auth = {"Authorization": f"Bearer {world['tokens']['root']}"}
    with httpx.Client(base_url=srv.url, headers=auth) as c:
        for bad in ("..%2F..%2Fetc%2Fpasswd", "A" * 64, "0" * 63, "0" * 63 + "g", "0" * 65):
            for method in ("GET", "HEAD", "PUT"):
                r = c.request(method, f"/api/v1/artifact-blobs/{bad}", content=b"x")
                assert r.status_code in (400, 404), (method, bad, r.status_code)
                assert r.status_code != 200
        r = c.get("/api/v1/artifact-blobs/../../../etc/passwd")
        assert r.status_code == 404 and "root:" not in r.text
        ok = {"path": "a.txt", "sha256": "0" * 64, "size": 1}
        for project, name, entry in [
            ("proj-x", "..", ok),
            ("proj-x", "a..b", ok),
            ("..", "model", ok),
            ("proj-x", "model", {**ok, "path": "../../etc/passwd"}),
            ("proj-x", "model", {**ok, "path": "/etc/passwd"}),
            ("proj-x", "model", {**ok, "path": "a/./b"}),
            ("proj-x", "model", {**ok, "sha256": "../" * 21 + "a"}),
        ]:
            r = c.post(f"/api/v1/projects/{project}/artifacts/{name}/versions",
                       json={"manifest": [entry]})  # fmt: skip
            assert r.status_code in (400, 404, 422), (project, name, entry, r.status_code, r.text)
        r = c.get("/api/v1/projects/proj-x/artifact-ref", params={"ref": "../etc:v0"})
        assert r.status_code == 400
        r = c.put("/api/v1/projects/proj-x/artifacts/m/aliases/latest", json={"version": 0})
        assert r.status_code == 400  # latest is reserved
    store = HttpStore(srv.url, token=world["tokens"]["root"], spool_dir="/nonexistent-spool")
    try:
        with pytest.raises(UsageError):
            store.get_artifact_version("proj-x", "../../x")
    finally:
        store.close()


def test_roles_on_artifact_routes(world: dict[str, Any], tmp_path: Path) -> None:
    srv: Server = world["servers"]["local"]
    toks = world["tokens"]
    env = {"LABLEDGER_URI": srv.url, "LABLEDGER_TOKEN": toks["alice"],
           "LABLEDGER_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    src = tmp_path / "src"
    (src / "ds").mkdir(parents=True)
    (src / "data.csv").write_text("alpha secret")
    (src / "ds" / "x.txt").write_text("x")
    (src / "model.pt").write_bytes(b"weights of alpha")
    made = _python(TRAIN, str(src), "alpha", env=env, cwd=tmp_path)
    assert made["ok"] == [True, True, True]
    sha = hashlib.sha256(b"alpha secret").hexdigest()

    def client(user: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {toks[user]}"} if user else {}
        return httpx.Client(base_url=srv.url, headers=headers)

    with (
        client(None) as anon,
        client("bob") as bob,
        client("dave") as dave,
        client("alice") as alice,
    ):
        for c, status in ((anon, 401), (dave, 403)):
            assert (
                c.get("/api/v1/projects/alpha/artifact-ref", params={"ref": "data"}).status_code
                == status
            )
            # another project's run answers as if it did not exist (404), not 403 (#16)
            run_status = 404 if status == 403 else status
            assert c.get(f"/api/v1/runs/{made['id']}/artifacts").status_code == run_status
            versions = c.get("/api/v1/artifact-versions", params={"project": "alpha"})
            assert versions.status_code == status
        # listing without a project shows only readable projects
        assert dave.get("/api/v1/artifact-versions").json()["versions"] == []
        assert anon.get(f"/api/v1/artifact-blobs/{sha}").status_code == 401
        assert anon.put(f"/api/v1/artifact-blobs/{sha}", content=b"alpha secret").status_code == 401
        # bob reads alpha but may not write it
        v = bob.get("/api/v1/projects/alpha/artifact-ref", params={"ref": "data"})
        assert v.status_code == 200 and v.json()["name"] == "data"
        assert bob.get(f"/api/v1/artifact-blobs/{sha}").content == b"alpha secret"
        r = bob.post("/api/v1/projects/alpha/artifacts/data/versions",
                     json={"manifest": [{"path": "d", "sha256": sha, "size": 12}]})  # fmt: skip
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert (
            bob.put(
                "/api/v1/projects/alpha/artifacts/data/aliases/best", json={"version": 0}
            ).status_code
            == 403
        )
        assert bob.put(f"/api/v1/artifact-blobs/{sha}", content=b"alpha secret").status_code == 403
        assert (
            bob.delete("/api/v1/projects/alpha/artifact-ref", params={"ref": "data:v0"}).status_code
            == 403
        )
        # dave writes gamma, but cannot record use of an alpha artifact nor read it by id
        vid = v.json()["id"]
        assert dave.get(f"/api/v1/artifact-versions/{vid}").status_code == 403
        # a project named in the reference is checked too
        assert (
            dave.get(
                "/api/v1/projects/gamma/artifact-ref", params={"ref": "alpha/data"}
            ).status_code
            == 403
        )
        # alice writes alpha: aliases yes, deletion (admin) no, admin-wide blob listing no
        assert (
            alice.put(
                "/api/v1/projects/alpha/artifacts/data/aliases/best", json={"version": 0}
            ).status_code
            == 200
        )
        assert (
            alice.delete(
                "/api/v1/projects/alpha/artifact-ref", params={"ref": "data:v0"}
            ).status_code
            == 403
        )
        assert alice.get("/api/v1/artifact-blobs").status_code == 403
        assert alice.get("/api/v1/admin/referenced-blob-shas").status_code == 403

    # the same through the Python client
    bob_store = HttpStore(srv.url, token=toks["bob"], spool_dir="/nonexistent-spool")
    try:
        assert bob_store.get_artifact_version("alpha", "data:best")["version"] == 0
        with pytest.raises(AuthError):
            bob_store.set_artifact_alias("alpha", "data", 0, "prod")
    finally:
        bob_store.close()


def test_repro_verdicts_through_the_server(world: dict[str, Any], tmp_path: Path) -> None:
    srv: Server = world["servers"]["local"]
    toks = world["tokens"]
    alice = HttpStore(srv.url, token=toks["alice"], spool_dir=tmp_path / "spool")
    bob = HttpStore(srv.url, token=toks["bob"], spool_dir=tmp_path / "spool")
    dave = HttpStore(srv.url, token=toks["dave"], spool_dir=tmp_path / "spool")
    try:
        a, b = uuid.uuid4().hex, uuid.uuid4().hex
        alice.create_run({"id": a, "project": "alpha", "name": "r"})
        # a verdict exists only with its reproduction run (job_type "repro", parent a)
        alice.create_run({"id": b, "project": "alpha", "name": "r", "job_type": "repro",
                          "parent_run_id": a})  # fmt: skip
        # neither run has metrics: the store derives "not-reproducible" from them
        vid = alice.add_repro_verdict({"original_run_id": a, "repro_run_id": b,
                                       "verdict": "not-reproducible", "tolerance": 0.01,
                                       "details": {"loss": {"delta": float("nan")}}})  # fmt: skip
        assert (
            alice.add_repro_verdict({"id": vid, "original_run_id": a, "verdict": "reproduced"})
            == vid
        )
        got = bob.repro_verdicts([b])
        assert [v["id"] for v in got] == [vid]
        assert got[0]["verdict"] == "not-reproducible" and got[0]["repro_run_id"] == b
        assert got[0]["by"] == "alice"
        assert got[0]["details"]["loss"]["delta"] != got[0]["details"]["loss"]["delta"]  # NaN kept
        with pytest.raises(AuthError):
            bob.add_repro_verdict({"original_run_id": a, "verdict": "reproduced"})
        with pytest.raises(NotFoundError):  # another project's run: as if it did not exist
            dave.repro_verdicts([a])
        with pytest.raises(UsageError):
            alice.add_repro_verdict({"original_run_id": a, "verdict": "maybe"})
    finally:
        for s in (alice, bob, dave):
            s.close()


def test_http_store_speaks_the_whole_store_protocol(tmp_path: Path) -> None:
    store = HttpStore("http://127.0.0.1:9", spool_dir=tmp_path / "spool")  # nothing listens there
    try:
        assert isinstance(store, Store)
        from labledger.artifacts import BlobStore, open_blob_store

        blobs = open_blob_store(None, "http://127.0.0.1:9/")
        assert isinstance(blobs, HttpBlobStore) and isinstance(blobs, BlobStore)
        assert blobs.uri == "http://127.0.0.1:9"
    finally:
        store.close()
