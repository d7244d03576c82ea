"""Round trips, dedup, versions, aliases and lineage, on the local and the S3 back end."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

import labledger
from labledger import ArtifactNotFoundError, InvalidArtifactError
from labledger.artifacts import LocalBlobStore, open_blob_store


def _init(store_uri: str, artifacts_uri: str, project: str = "vision", **kw: Any) -> labledger.Run:
    return labledger.init(project, store=store_uri, artifacts=artifacts_uri, capture=False, **kw)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_file_round_trip_through_use_artifact_and_cli_get(
    store_uri: str, artifacts_uri: str, tmp_path: Path, cli: Any
) -> None:
    weights = tmp_path / "model.pt"
    weights.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    with _init(store_uri, artifacts_uri) as run:
        ref = run.log_model(weights)
        assert ref.sha256 and ref.size == weights.stat().st_size
    assert ref.done and ref.version == 0 and ref.uri == "vision/model:v0"

    with _init(store_uri, artifacts_uri) as consumer:
        local = consumer.use_artifact("model")
    assert local.name == "model.pt"
    assert local.read_bytes() == weights.read_bytes()

    code, out = cli(
        "artifacts", "get", "vision/model:v0", "-o", str(tmp_path / "out"), "--store", store_uri
    )
    assert code == 0, out
    assert (tmp_path / "out" / "model.pt").read_bytes() == weights.read_bytes()


def test_directory_round_trip_keeps_relative_paths(
    store_uri: str, artifacts_uri: str, tmp_path: Path
) -> None:
    src = tmp_path / "ckpt"
    (src / "shards").mkdir(parents=True)
    (src / "config.json").write_text('{"layers": 12}')
    (src / "shards" / "00.bin").write_bytes(os.urandom(100_000))
    (src / "shards" / "01.bin").write_bytes(b"")  # empty files are kept
    with _init(store_uri, artifacts_uri) as run:
        ref = run.log_artifact(src, name="checkpoint", kind="model")
    assert ref.wait(30)
    assert [f["path"] for f in ref.files] == ["config.json", "shards/00.bin", "shards/01.bin"]
    with _init(store_uri, artifacts_uri) as consumer:
        local = consumer.use_artifact("checkpoint:v0")
    assert local.is_dir()
    assert _tree(local) == _tree(src)


def test_unchanged_content_is_stored_once_across_runs_and_versions(
    store_uri: str, artifacts_uri: str, tmp_path: Path
) -> None:
    data = tmp_path / "weights.bin"
    data.write_bytes(os.urandom(2_000_000))
    refs = []
    for _ in range(2):
        with _init(store_uri, artifacts_uri) as run:
            refs.append(run.log_model(data, name="net"))
            uploader = run._artifact_uploader  # type: ignore[attr-defined]
    assert [r.version for r in refs] == [0, 1]
    assert refs[0].sha256 == refs[1].sha256
    assert uploader.bytes_uploaded == 0 and uploader.blobs_skipped == 1  # second run: hash only
    blobs = open_blob_store(artifacts_uri, store_uri)
    assert list(blobs.iter_shas()) == [hashlib.sha256(data.read_bytes()).hexdigest()]


def test_latest_moves_and_user_aliases_resolve(
    store_uri: str, tmp_path: Path, cli: Any, request: pytest.FixtureRequest
) -> None:
    arts = str(tmp_path / "arts")
    f = tmp_path / "m.txt"
    with _init(store_uri, arts) as run:
        for i in range(3):
            f.write_text(f"epoch {i}")
            assert run.log_artifact(f, name="m").wait(30)
    store = labledger.Ledger(store_uri).store
    request.addfinalizer(store.close)
    assert store.get_artifact_version("vision", "m")["version"] == 2
    assert store.get_artifact_version("vision", "m:v0")["aliases"] == []

    code, out = cli("artifacts", "alias", "vision/m:v1", "best", "--store", store_uri)
    assert code == 0, out
    assert store.get_artifact_version("vision", "m:best")["version"] == 1
    with _init(store_uri, arts) as consumer:
        assert consumer.use_artifact("m:best").read_text() == "epoch 1"
        assert consumer.use_artifact("m:latest").read_text() == "epoch 2"
    # moving an alias takes it off the previous version
    store.set_artifact_alias("vision", "m", 0, "best")
    assert "best" not in store.get_artifact_version("vision", "m:v1")["aliases"]
    with pytest.raises(InvalidArtifactError, match="latest"):
        store.set_artifact_alias("vision", "m", 0, "latest")
    with pytest.raises(InvalidArtifactError, match="version"):
        store.set_artifact_alias("vision", "m", 0, "v7")
    with pytest.raises(ArtifactNotFoundError):
        store.get_artifact_version("vision", "m:production")


def test_lineage_walks_both_ways(any_store_uri: str, tmp_path: Path, cli: Any) -> None:
    arts = str(tmp_path / "arts")
    (tmp_path / "tok.json").write_text("{}")
    with _init(any_store_uri, arts, name="prep") as producer:
        producer.log_artifact(tmp_path / "tok.json", name="tokenizer", kind="dataset")
    with _init(any_store_uri, arts, name="train") as consumer:
        consumer.use_artifact("tokenizer")
        consumer.use_artifact("vision/tokenizer:v0")  # the same version again: one record

    with labledger.Ledger(any_store_uri) as ledger:
        made = ledger.get(producer.id)
        assert [(a["name"], a["kind"], a["version"]) for a in made["artifacts"]] == [
            ("tokenizer", "dataset", 0)
        ]
        version = made["artifacts"][0]
        assert {"name", "kind", "version", "sha256", "size", "uri"} <= set(version)
        # producer -> version -> consumers
        assert ledger.store.artifact_consumers(version["id"]) == [consumer.id]
        # consumer -> version -> producer
        used = ledger.get(consumer.id)["used_artifacts"]
        assert [u["uri"] for u in used] == ["vision/tokenizer:v0"]
        assert used[0]["run_id"] == producer.id

    code, out = cli("show", producer.id[:8], "--json", "--store", any_store_uri)
    assert code == 0, out
    doc = json.loads(out)
    assert doc["artifacts"][0]["uri"] == "vision/tokenizer:v0"
    assert doc["artifacts"][0]["sha256"] == version["sha256"]
    code, out = cli("show", consumer.id, "--store", any_store_uri)
    assert code == 0, out
    assert "used artifacts" in out and "vision/tokenizer:v0" in out and producer.id[:8] in out
    code, out = cli("artifacts", "ls", consumer.id, "--json", "--store", any_store_uri)
    assert code == 0, out
    listing = json.loads(out)
    assert listing["produced"] == [] and listing["consumed"][0]["run_id"] == producer.id
    code, out = cli(
        "artifacts", "versions", "tokenizer", "-p", "vision", "--json", "--store", any_store_uri
    )
    assert code == 0, out
    assert json.loads(out)[0]["consumers"] == [consumer.id]


def test_version_numbers_are_per_project_and_name(store_uri: str, tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("x")
    with _init(store_uri, str(tmp_path / "arts"), project="p1") as r1:
        a = r1.log_artifact(f, name="a")
        b = r1.log_artifact(f, name="b")
    with _init(store_uri, str(tmp_path / "arts"), project="p2") as r2:
        c = r2.log_artifact(f, name="a")
    assert (a.version, b.version, c.version) == (0, 0, 0)
    with _init(store_uri, str(tmp_path / "arts"), project="p2") as r3:
        assert r3.use_artifact("p1/a").read_text() == "x"  # across projects by full reference
        with pytest.raises(ArtifactNotFoundError, match="no artifact named 'b'"):
            r3.use_artifact("b")


def test_cache_hit_is_verified_and_a_tampered_copy_is_replaced(
    store_uri: str, tmp_path: Path
) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"original weights")
    with _init(store_uri, str(tmp_path / "arts")) as run:
        run.log_model(f)
    with _init(store_uri, str(tmp_path / "arts")) as consumer:
        first = consumer.use_artifact("model")
        first.chmod(0o644)
        first.write_bytes(b"tampered weights")  # same size, new mtime
        second = consumer.use_artifact("model")
    assert second.read_bytes() == b"original weights"


def test_local_blob_layout_is_beside_an_sqlite_store(store_uri: str, tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc")
    with labledger.init("p", store=store_uri, capture=False) as run:
        run.log_model(f)
    blobs = open_blob_store(None, store_uri)
    assert isinstance(blobs, LocalBlobStore)
    assert blobs.root == (tmp_path / "store" / "artifacts").resolve()
    assert blobs.has(hashlib.sha256(b"abc").hexdigest())
