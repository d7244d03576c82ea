"""A reader of one project learns nothing about other projects' runs; artifact refs name their project."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Server, cli_env, make_token

PRODUCE = r"""
import pathlib, sys, labledger
path = pathlib.Path(sys.argv[1])
run = labledger.init(project="projA", name="producer")
assert run.log_artifact(path, name="model").wait(60)
run.finish()
"""


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[len(prefix) :]


@pytest.fixture(scope="module")
def world(module_pg: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    blobs = tmp_path_factory.mktemp("blobs")
    srv = Server(module_pg, tmp_path_factory.mktemp("srv"), artifacts_uri=str(blobs))
    srv.start()
    try:
        toks = {
            "root": make_token(srv, "root", "*", "admin"),
            "alice": make_token(srv, "alice", "projA", "write"),
            "bob": make_token(srv, "bob", "projA", "read"),
        }
        runs = {
            "a1": _id("ab1"),
            "a2": _id("ab2"),
            "b1": _id("ab3"),
            "b2": _id("ac5e7"),  # a prefix no other run shares (the producer's id is random)
        }
        with httpx.Client(
            base_url=srv.url, headers={"Authorization": f"Bearer {toks['root']}"}
        ) as root:
            for key, rid in runs.items():
                project = "projA" if key.startswith("a") else "projB"
                r = root.post(
                    "/api/v1/runs",
                    json={"id": rid, "project": project, "name": f"{project}-{key}-secret"},
                )
                assert r.status_code == 201, r.text
        work = tmp_path_factory.mktemp("work")
        (work / "model.bin").write_bytes(b"weights of A")
        proc = subprocess.run(
            [sys.executable, "-c", PRODUCE, str(work / "model.bin")],
            env=cli_env({"LABLEDGER_URI": srv.url, "LABLEDGER_TOKEN": toks["root"]}),
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield {"server": srv, "tokens": toks, "runs": runs}
    finally:
        srv.stop()


def _client(world: dict[str, Any], user: str) -> httpx.Client:
    return httpx.Client(
        base_url=world["server"].url,
        headers={"Authorization": f"Bearer {world['tokens'][user]}"},
    )


def test_artifact_ref_checks_the_role_on_the_project_it_names(
    world: dict[str, Any], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"  # the cwd names a project bob cannot read
    elsewhere.mkdir()
    env = cli_env({"LABLEDGER_URI": world["server"].url, "LABLEDGER_TOKEN": world["tokens"]["bob"]})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "labledger.cli",
            "artifacts",
            "get",
            "projA/model:v0",
            "-o",
            str(tmp_path / "got"),
        ],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"weights of A" in b"".join(
        p.read_bytes() for p in (tmp_path / "got").rglob("*") if p.is_file()
    )
    # and a ref to a project bob cannot read is refused naming that project
    with _client(world, "bob") as bob:
        r = bob.get("/api/v1/projects/elsewhere/artifact-ref", params={"ref": "projB/model:v0"})
        assert r.status_code == 403 and "projB" in r.json()["message"]


def test_a_reader_learns_nothing_about_other_projects_runs(world: dict[str, Any]) -> None:
    runs = world["runs"]
    with _client(world, "bob") as bob, _client(world, "root") as root:
        # an ambiguous prefix lists readable runs only
        r = bob.get("/api/v1/runs/ab")
        assert r.status_code == 404
        assert runs["a1"][:8] in r.text and runs["a2"][:8] in r.text
        assert runs["b1"][:8] not in r.text and "projB" not in r.text
        # a prefix that is unique among readable runs resolves, whatever else exists
        assert bob.get("/api/v1/runs/ab1").json()["id"] == runs["a1"]
        # another project's id prefix, full id and name: not found, like nothing at all
        for ref in ("ac5e7", runs["b2"], runs["b1"], "projB-b1-secret"):
            r = bob.get(f"/api/v1/runs/{ref}")
            assert r.status_code == 404, (ref, r.status_code)
            other = "zz-no-such-run"
            nothing = bob.get(f"/api/v1/runs/{other}")
            assert nothing.status_code == 404
            # the same answer as for a run that does not exist (the ref itself aside)
            assert r.json() == json.loads(nothing.text.replace(other, ref))
        assert root.get("/api/v1/runs/ac").json()["id"] == runs["b2"]
        assert bob.get(f"/api/v1/runs/{runs['b1']}/history", params={"key": "x"}).status_code == 404
    with _client(world, "alice") as alice:
        # creating a run with another project's id: refused without naming that project
        r = alice.post("/api/v1/runs", json={"id": runs["b1"], "project": "projA", "name": "clash"})
        assert r.status_code == 409, r.text
        assert "projB" not in r.text and "secret" not in r.text
        # writing to it answers as for a run that does not exist
        r = alice.post(f"/api/v1/runs/{runs['b1']}/batches", json={"id": uuid.uuid4().hex})
        assert r.status_code == 404
