"""Every path attack is refused at the call site (log) or before writing (download)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import labledger
from labledger import InvalidArtifactError
from labledger.store import _schema as s


@pytest.fixture
def run(store_uri: str, tmp_path: Path) -> Any:
    r = labledger.init("sec", store=store_uri, artifacts=str(tmp_path / "arts"), capture=False)
    yield r
    r.finish()


@pytest.mark.parametrize(
    "name",
    [
        "a/b",
        "../escape",
        "a..b",
        "..",
        "",
        "x" * 129,
        "-dash",
        "sp ace",
        "semi;colon",
        "back\\slash",
        "new\nline",
    ],
)
def test_bad_artifact_names_raise(run: Any, tmp_path: Path, name: str) -> None:
    f = tmp_path / "ok.txt"
    f.write_text("x")
    with pytest.raises(InvalidArtifactError):
        run.log_artifact(f, name=name)


def test_bad_kind_raises(run: Any, tmp_path: Path) -> None:
    f = tmp_path / "ok.txt"
    f.write_text("x")
    with pytest.raises(InvalidArtifactError, match="kind"):
        run.log_artifact(f, kind="../model")


def test_symlink_escaping_the_directory_raises(run: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    d = tmp_path / "d"
    d.mkdir()
    (d / "ok.txt").write_text("fine")
    (d / "leak").symlink_to(secret)
    with pytest.raises(InvalidArtifactError, match="outside"):
        run.log_artifact(d)


def test_symlinked_directory_escaping_raises(run: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("x")
    d = tmp_path / "d"
    d.mkdir()
    (d / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidArtifactError, match="outside"):
        run.log_artifact(d)


def test_symlink_inside_the_directory_is_stored_as_content(run: Any, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "real.txt").write_text("real")
    (d / "alias.txt").symlink_to("real.txt")
    (d / "loop").symlink_to(".", target_is_directory=True)  # a cycle is not followed forever
    ref = run.log_artifact(d)
    assert ref.wait(30)
    assert [f["path"] for f in ref.files] == ["alias.txt", "real.txt"]
    assert ref.files[0]["sha256"] == ref.files[1]["sha256"]


def test_device_file_raises(run: Any) -> None:
    with pytest.raises(InvalidArtifactError, match="device"):
        run.log_artifact("/dev/null", name="null")


def test_fifo_inside_directory_raises(run: Any, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    os.mkfifo(d / "pipe")
    with pytest.raises(InvalidArtifactError, match="FIFO"):
        run.log_artifact(d)


def test_socket_inside_directory_raises(run: Any) -> None:
    d = Path(f"/tmp/ll-sock-{uuid.uuid4().hex[:8]}")  # AF_UNIX paths must be short
    d.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(d / "s"))
        with pytest.raises(InvalidArtifactError, match="socket"):
            run.log_artifact(d)
    finally:
        sock.close()
        (d / "s").unlink()
        d.rmdir()


def test_missing_path_raises(run: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifactError, match="no such file"):
        run.log_artifact(tmp_path / "nope")


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../x", "a/../../x", "a//b", "./a", "C:/win", "a\\b"]
)
def test_manifest_with_unsafe_path_is_refused_by_the_store(store_uri: str, path: str) -> None:
    from labledger.store import open_store

    store = open_store(store_uri)
    try:
        with pytest.raises(InvalidArtifactError):
            store.create_artifact_version(
                "p", "x", "artifact", None, [{"path": path, "sha256": "0" * 64, "size": 1}]
            )
    finally:
        store.close()


def _plant_version(
    store_uri: str, project: str, name: str, files: list[dict[str, Any]], storage: str
) -> None:
    """A tampered database: write a version row with a hostile manifest, bypassing validation."""
    engine = sa.create_engine("sqlite:///" + store_uri.split(":///", 1)[1])
    vid = uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(
            sa.insert(s.artifact_versions).values(
                id=vid,
                project=project,
                name=name,
                version=0,
                kind="artifact",
                run_id=None,
                sha256="1" * 64,
                size=1,
                file_count=len(files),
                storage=storage,
                meta={"type": "directory"},
                created_at=time.time(),
            )
        )
        conn.execute(sa.insert(s.artifact_files), [{"version_id": vid, **f} for f in files])
        conn.execute(
            sa.insert(s.artifact_aliases).values(
                project=project, name=name, alias="latest", version_id=vid, updated_at=time.time()
            )
        )
    engine.dispose()


@pytest.mark.parametrize("evil", ["../escaped.txt", "/tmp/abs-escape.txt", "a/../../escaped.txt"])
def test_get_refuses_manifest_paths_that_leave_the_output_dir(
    store_uri: str, tmp_path: Path, cli: Any, evil: str
) -> None:
    arts = tmp_path / "arts"
    # make the blob exist, so only the path check can stop the write
    f = tmp_path / "payload.txt"
    f.write_text("pwned")
    with labledger.init("sec", store=store_uri, artifacts=str(arts), capture=False) as r:
        good = r.log_artifact(f, name="payload")
    sha = good.files[0]["sha256"]
    _plant_version(store_uri, "sec", "evil", [{"path": evil, "sha256": sha, "size": 5}], str(arts))
    out = tmp_path / "out" / "inner"
    code, text = cli("artifacts", "get", "sec/evil", "-o", str(out), "--store", store_uri)
    assert code == 1
    assert "invalid artifact" in text
    assert not (tmp_path / "out" / "escaped.txt").exists()
    assert not Path("/tmp/abs-escape.txt").exists()
    assert not list(out.rglob("*.txt"))


def test_get_does_not_write_through_a_symlink_in_the_output_dir(
    store_uri: str, tmp_path: Path, cli: Any
) -> None:
    arts = tmp_path / "arts"
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "x.txt").write_text("data")
    with labledger.init("sec", store=store_uri, artifacts=str(arts), capture=False) as r:
        r.log_artifact(d, name="tree")
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    code, text = cli("artifacts", "get", "sec/tree", "-o", str(out), "--store", store_uri)
    assert code == 1, text
    assert "outside" in text
    assert not (elsewhere / "x.txt").exists()
