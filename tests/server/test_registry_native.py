"""The registry's native read routes (what the UI's registry page reads), on SQLite and
PostgreSQL, with tokens: a model with its versions (source run, headline facts, the
content-addressed artifact), its alias history (edit events by their true actor, chained
in the audit log) and the versions that point at a run. What a caller may not read
answers exactly like what does not exist; the rules are the write core's."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Server, backend_server, cli_env, labledger, make_token

WEIGHTS = b"\x00registry weights\xff" * 64

PRODUCE = r"""
import pathlib, sys, labledger
path = pathlib.Path(sys.argv[1])
run = labledger.init(project=sys.argv[2], name="producer", capture=False)
run.log({"val_acc": 0.5})
run.log({"val_acc": 0.875})
assert run.log_artifact(path, name="model", kind="model").wait(60)
run.finish()
print(run.id)
"""


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    with backend_server(request, tmp_path_factory, "registry-native") as srv:
        yield _world(srv)


def _world(srv: Server) -> dict[str, Any]:
    """Tokens, one produced run, and a model with two versions and a moved alias."""
    tmp = srv.log_dir
    toks = {
        "root": make_token(srv, "root", "*", "admin"),
        "alice": make_token(srv, "alice", "projA", "write"),
        "bob": make_token(srv, "bob", "projA", "read"),
        "carol": make_token(srv, "carol", "projB", "write"),
    }
    (tmp / "model.bin").write_bytes(WEIGHTS)
    proc = subprocess.run(
        [sys.executable, "-c", PRODUCE, str(tmp / "model.bin"), "projA"],
        env=cli_env({"LABLEDGER_URI": srv.url, "LABLEDGER_TOKEN": toks["root"]}),
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "labledger:" not in proc.stderr, proc.stderr[-3000:]  # written as it went
    run_id = proc.stdout.split()[-1]
    name = f"digits-{uuid.uuid4().hex[:6]}"
    with _client(srv, toks["alice"]) as alice:
        assert alice.post("/api/v1/models", json={"name": name}).status_code == 200
        for _ in range(2):
            r = alice.post(
                f"/api/v1/models/{name}/versions", json={"run_id": run_id, "artifact": "model"}
            )
            assert r.status_code == 200, r.text
        for version in (1, 2):
            r = alice.put(f"/api/v1/models/{name}/aliases/champion", json={"version": version})
            assert r.status_code == 200, r.text
    return {"server": srv, "tokens": toks, "run_id": run_id, "name": name}


def _client(server: Server, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def _as(world: dict[str, Any], user: str | None) -> httpx.Client:
    return _client(world["server"], world["tokens"][user] if user else None)


def test_a_reader_sees_versions_with_their_run_and_artifact(world: dict[str, Any]) -> None:
    name, run_id = world["name"], world["run_id"]
    with _as(world, "bob") as bob:
        model = bob.get(f"/api/v1/models/{name}")
        assert model.status_code == 200, model.text
        assert model.json()["aliases"] == {"champion": 2}
        assert model.json()["project"] == "projA"
        r = bob.get(f"/api/v1/models/{name}/versions")
    assert r.status_code == 200, r.text
    versions = r.json()
    assert [v["version"] for v in versions] == [1, 2]
    assert [v["aliases"] for v in versions] == [[], ["champion"]]
    v2 = versions[1]
    assert v2["author"] == "alice"
    run = v2["run"]
    assert run["id"] == run_id and run["status"] == "finished" and run["name"] == "producer"
    assert run["summary"]["val_acc"] == 0.875
    assert run["sealed"] is True and len(run["record_sha256"]) == 64
    art = v2["artifact"]
    assert art["id"] == v2["artifact_version_id"] and art["name"] == "model"
    assert art["file_count"] == 1
    assert art["files"][0]["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()


def test_alias_history_names_the_true_actor_and_is_chained(world: dict[str, Any]) -> None:
    name, run_id = world["name"], world["run_id"]
    with _as(world, "bob") as bob:
        r = bob.get(f"/api/v1/models/{name}/alias-history")
    assert r.status_code == 200, r.text
    moves = r.json()
    assert [(m["alias"], m["old_version"], m["new_version"]) for m in moves] == [
        ("champion", None, 1),
        ("champion", 1, 2),
    ]
    # alice moved them, not root (who wrote the run) and not the reader asking
    assert {m["author"] for m in moves} == {"alice"}
    assert all(m["run_id"] == run_id for m in moves)
    seqs = [m["audit_seq"] for m in moves]
    assert all(isinstance(s, int) for s in seqs) and seqs == sorted(seqs) and seqs[0] < seqs[1]
    assert {m["audit_project"] for m in moves} == {"projA"}
    # and the chain that holds them verifies
    from labledger.store import open_store

    store = open_store(world["server"].backend_uri)
    try:
        assert store.audit_verify("projA")["ok"]
    finally:
        store.close()


def test_model_versions_of_a_run(world: dict[str, Any]) -> None:
    name, run_id = world["name"], world["run_id"]
    with _as(world, "bob") as bob:
        r = bob.get("/api/v1/model-versions", params={"run_id": run_id})
        assert r.status_code == 200, r.text
        assert [(v["name"], v["version"], v["aliases"]) for v in r.json()] == [
            (name, 1, []),
            (name, 2, ["champion"]),
        ]
        # a unique prefix resolves as everywhere else
        r = bob.get("/api/v1/model-versions", params={"run_id": run_id[:12]})
        assert [v["version"] for v in r.json()] == [1, 2]
        every = bob.get("/api/v1/model-versions")
        assert every.status_code == 200
        assert {(v["name"], v["version"]) for v in every.json()} >= {(name, 1), (name, 2)}
        missing = bob.get("/api/v1/model-versions", params={"run_id": uuid.uuid4().hex})
        assert missing.status_code == 404, missing.text


def test_what_a_caller_may_not_read_looks_missing(world: dict[str, Any]) -> None:
    name, run_id = world["name"], world["run_id"]
    with _as(world, "carol") as carol:  # a writer of projB only
        hidden = [
            carol.get(f"/api/v1/models/{name}"),
            carol.get(f"/api/v1/models/{name}/versions"),
            carol.get(f"/api/v1/models/{name}/alias-history"),
            carol.get("/api/v1/model-versions", params={"run_id": run_id}),
        ]
        other = uuid.uuid4().hex
        absent = [
            carol.get("/api/v1/models/no-such-model"),
            carol.get("/api/v1/models/no-such-model/versions"),
            carol.get("/api/v1/models/no-such-model/alias-history"),
            carol.get("/api/v1/model-versions", params={"run_id": other}),
        ]
        for h, a in zip(hidden, absent, strict=True):
            assert h.status_code == a.status_code == 404, (h.text, a.text)
            # the same answer, word for word, but for the name the caller asked about
            assert h.text.replace(name, "N").replace(run_id, "R") == a.text.replace(
                "no-such-model", "N"
            ).replace(other, "R")
        listed = carol.get("/api/v1/model-versions").json()
        assert all(v["name"] != name for v in listed)
        assert all(m["name"] != name for m in carol.get("/api/v1/models").json())
    with _as(world, "bob") as bob:  # a reader may not move an alias
        r = bob.put(f"/api/v1/models/{name}/aliases/champion", json={"version": 1})
        assert r.status_code == 403, r.text
    with _as(world, None) as anon:  # no token: 401 on every read
        for path in (
            f"/api/v1/models/{name}",
            f"/api/v1/models/{name}/versions",
            f"/api/v1/models/{name}/alias-history",
            "/api/v1/model-versions",
        ):
            assert anon.get(path).status_code == 401, path


def test_models_show_cli_over_http_and_over_the_store(world: dict[str, Any]) -> None:
    name, server = world["name"], world["server"]
    for store, env in (
        (server.url, {"LABLEDGER_TOKEN": world["tokens"]["bob"]}),
        (server.backend_uri, {}),
    ):
        out = labledger("models", "show", name, "--json", "--store", store, env=env)
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["model"]["aliases"] == {"champion": 2}
        assert [v["version"] for v in doc["versions"]] == [1, 2]
        assert doc["versions"][1]["run"]["id"] == world["run_id"]
        assert [m["author"] for m in doc["alias_history"]] == ["alice", "alice"]
        text = labledger("models", "show", name, "--store", store, env=env)
        assert text.returncode == 0, text.stderr
        assert "@champion: v1 -> v2  by alice" in text.stdout
    out = labledger(
        "models", "show", name, "--store", server.url,
        env={"LABLEDGER_TOKEN": world["tokens"]["carol"]},
    )  # fmt: skip
    assert out.returncode != 0 and "not found" in out.stderr.lower()


def test_the_mover_is_sealed_into_the_chain(world: dict[str, Any]) -> None:
    """Rewriting who moved an alias breaks `labledger audit verify` (the author is hashed)."""
    import sqlalchemy as sa

    from labledger.store import _schema as s
    from labledger.store import open_store

    name = world["name"]
    store: Any = open_store(world["server"].backend_uri)  # SqlStore: its _tx below
    e = s.run_edits
    where = e.c.field == f"registry.{name}@champion"
    try:
        assert store.audit_verify("projA")["ok"]
        with store._tx() as conn:
            conn.execute(sa.update(e).where(where).values(author="mallory"))
        assert not store.audit_verify("projA")["ok"]
    finally:
        with store._tx() as conn:
            conn.execute(sa.update(e).where(where).values(author="alice"))
        assert store.audit_verify("projA")["ok"]
        store.close()


def test_http_store_reads_the_same(world: dict[str, Any]) -> None:
    from labledger.remote.http import HttpStore

    name, run_id = world["name"], world["run_id"]
    store = HttpStore(world["server"].url, token=world["tokens"]["bob"], spool_dir="/nonexistent")
    try:
        mine = store.model_versions(run_id=run_id)
        assert [(v["name"], v["version"]) for v in mine] == [(name, 1), (name, 2)]
        assert [v["version"] for v in store.model_versions(name)] == [1, 2]
        moves = store.model_alias_events(name)
        assert [(m["alias"], m["new_version"], m["author"]) for m in moves] == [
            ("champion", 1, "alice"),
            ("champion", 2, "alice"),
        ]
        assert store.model_version_by_alias(name, "champion")["version"] == 2
    finally:
        store.close()
    hidden = HttpStore(
        world["server"].url, token=world["tokens"]["carol"], spool_dir="/nonexistent"
    )
    try:
        from labledger._exceptions import NotFoundError

        with pytest.raises(NotFoundError):
            hidden.model_alias_events(name)
        with pytest.raises(NotFoundError):
            hidden.model_versions(run_id=run_id)
    finally:
        hidden.close()


def test_a_version_whose_run_is_unreadable_hides_the_run(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """An admin registers a projB run as a version of the projA model: a projA reader sees
    the version and the alias move, but not the run, its artifact or its chain entry."""
    name, server = world["name"], world["server"]
    (tmp_path / "model.bin").write_bytes(WEIGHTS)
    proc = subprocess.run(
        [sys.executable, "-c", PRODUCE, str(tmp_path / "model.bin"), "projB"],
        env=cli_env({"LABLEDGER_URI": server.url, "LABLEDGER_TOKEN": world["tokens"]["root"]}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "labledger:" not in proc.stderr, proc.stderr[-3000:]  # written as it went
    other = proc.stdout.split()[-1]
    with _as(world, "root") as root:
        r = root.post(
            f"/api/v1/models/{name}/versions", json={"run_id": other, "artifact": "model"}
        )
        assert r.status_code == 200, r.text
        number = r.json()["version"]
        r = root.put(f"/api/v1/models/{name}/aliases/crossed", json={"version": number})
        assert r.status_code == 200, r.text
        seen = root.get(f"/api/v1/models/{name}/alias-history").json()
        assert seen[-1]["run_id"] == other and seen[-1]["audit_project"] == "projB"
    with _as(world, "bob") as bob:
        v = bob.get(f"/api/v1/models/{name}/versions").json()[-1]
        assert v["version"] == number and v["run"] is None and v["artifact"] is None
        assert v["run_id"] is None and v["source"] is None and v["artifact_version_id"] is None
        listed = [x for x in bob.get("/api/v1/model-versions").json() if x["name"] == name]
        assert listed[-1]["version"] == number and listed[-1]["run_id"] is None
        assert other not in bob.get(f"/api/v1/models/{name}/versions").text
        model = bob.get(f"/api/v1/models/{name}").json()
        assert model["latest_version"]["version"] == number
        assert model["latest_version"]["run_id"] is None
        assert other not in bob.get("/api/v1/models").text
        last = bob.get(f"/api/v1/models/{name}/alias-history").json()[-1]
        assert (last["alias"], last["new_version"], last["author"]) == ("crossed", number, "root")
        assert last["run_id"] is None and last["audit_seq"] is None
        assert other not in bob.get(f"/api/v1/models/{name}/alias-history").text
        assert bob.get("/api/v1/model-versions", params={"run_id": other}).status_code == 404
        # the same rule on every other door: the MLflow REST API and the /models page
        ml = "/api/2.0/mlflow"
        answers = [
            bob.get(f"{ml}/registered-models/get", params={"name": name}),
            bob.get(f"{ml}/registered-models/search"),
            bob.get(f"{ml}/registered-models/get-latest-versions", params={"name": name}),
            bob.get(f"{ml}/registered-models/alias", params={"name": name, "alias": "crossed"}),
            bob.get(f"{ml}/model-versions/get", params={"name": name, "version": number}),
            bob.get(f"{ml}/model-versions/search", params={"filter": f"name = '{name}'"}),
            bob.get("/models"),
        ]
        for r in answers:
            assert r.status_code == 200, (r.url, r.text)
            assert other not in r.text, r.url
        got = bob.get(f"{ml}/model-versions/get", params={"name": name, "version": number})
        shown = got.json()["model_version"]
        assert shown["version"] == str(number) and "run_id" not in shown
        assert "crossed" in shown["aliases"]
        # downloading the version's files answers like a missing version
        r = bob.get(
            f"{ml}/model-versions/get-download-uri", params={"name": name, "version": number}
        )
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert other not in r.text
    with _as(world, "root") as root:  # an admin reads the run behind it on the MLflow API
        got = root.get(f"{ml}/model-versions/get", params={"name": name, "version": number})
        assert got.json()["model_version"]["run_id"] == other
