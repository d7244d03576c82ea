"""Tokens and per-project roles, checked on every route of the real server."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from labledger import AuthError
from labledger.remote.http import HttpStore
from labledger.server import create_app
from labledger.store import Batch

from .conftest import Server, labledger

PUBLIC = {
    "/healthz",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/login",
    "/logout",
    "/favicon.ico",
}


def app_routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the app, included routers expanded."""
    app = create_app("sqlite:////nonexistent/never-opened.db")
    out: set[tuple[str, str]] = set()

    def add(route: Any) -> None:
        for m in getattr(route, "methods", None) or ():
            if m != "HEAD":
                out.add((m, route.path))

    for r in app.routes:
        if hasattr(r, "effective_candidates"):
            for c in r.effective_candidates():
                add(c)
        elif hasattr(r, "path"):
            add(r)
    return sorted(out)


def token(server: Server, user: str, project: str, role: str) -> tuple[str, str]:
    out = labledger(
        "server",
        "token",
        "create",
        "--backend-uri",
        server.backend_uri,
        "--user",
        user,
        "--project",
        project,
        "--role",
        role,
        "--json",
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["token"].startswith("llt_")
    return doc["id"], doc["token"]


@pytest.fixture(scope="module")
def world(shared_server: Server) -> Iterator[dict[str, Any]]:
    with httpx.Client(base_url=shared_server.url) as anon:
        assert anon.get("/api/v1/projects").status_code == 200  # open while no token exists
    toks = {
        "alice": token(shared_server, "alice", "alpha", "write"),
        "bob": token(shared_server, "bob", "alpha", "read"),
        "carol": token(shared_server, "carol", "beta", "admin"),
        "dave": token(shared_server, "dave", "gamma", "read"),
        "root": token(shared_server, "root", "*", "admin"),
    }
    runs = {}
    for user, project in (("alice", "alpha"), ("carol", "beta")):
        store = HttpStore(shared_server.url, token=toks[user][1], spool_dir="/nonexistent-spool")
        rid = uuid.uuid4().hex
        store.create_run(
            {"id": rid, "project": project, "name": f"{project}-run", "created_at": time.time()}
        )
        assert store.write_batch(
            Batch(run_id=rid, metrics={"loss": ([0, 1], [0.5, 0.25], [0.0, 1.0])})
        )
        runs[project] = rid
        store.close()
    sha = HttpStore(shared_server.url, token=toks["alice"][1]).put_blob(b"secret patch of alpha")
    yield {
        "tokens": toks,
        "runs": runs,
        "sha": sha,
        "url": shared_server.url,
        "server": shared_server,
    }


def _fill(path: str, w: dict[str, Any]) -> str:
    rid = w["runs"]["alpha"]
    return re.sub(r"\{(\w+)\}", lambda m: w["sha"] if m.group(1) == "sha256" else rid, path)


def _call(client: httpx.Client, method: str, path: str, w: dict[str, Any]) -> httpx.Response:
    params = {
        "key": "loss",
        "run": w["runs"]["alpha"],
        "runs": w["runs"]["alpha"],
        "metric": "loss",
    }
    body: Any = {"id": uuid.uuid4().hex} if method in ("POST", "PUT") else None
    return client.request(method, _fill(path, w), params=params, json=body)


def test_every_api_route_requires_a_token(world: dict[str, Any]) -> None:
    routes = [(m, p) for m, p in app_routes() if p.startswith("/api/v1")]
    assert len(routes) >= 12
    with httpx.Client(base_url=world["url"]) as anon:
        for method, path in routes:
            r = _call(anon, method, path, world)
            assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
            assert r.json()["code"] == "unauthorized" and set(r.json()) == {
                "code",
                "message",
                "details",
            }
        bad = {"Authorization": "Bearer llt_000000000000_forged"}
        assert anon.get("/api/v1/runs", headers=bad).status_code == 401


def test_no_route_leaks_another_projects_data(world: dict[str, Any]) -> None:
    alpha = world["runs"]["alpha"]
    headers = {"Authorization": f"Bearer {world['tokens']['dave'][1]}"}  # reads gamma only
    with httpx.Client(base_url=world["url"], headers=headers) as dave:
        for method, path in [(m, p) for m, p in app_routes() if p.startswith("/api/v1")]:
            r = _call(dave, method, path, world)
            assert r.status_code < 500 or r.status_code == 501, (method, path, r.text[:300])
            if r.status_code < 400:
                assert alpha not in r.text and '"alpha"' not in r.text, (method, path, r.text[:300])
            if "{ref}" in path or "{run_id}" in path:
                # another project's run answers as if it did not exist (#16)
                assert r.status_code == 404, (method, path, r.status_code)


def test_roles_read_write_admin(world: dict[str, Any]) -> None:
    toks, runs = world["tokens"], world["runs"]

    def client(user: str) -> httpx.Client:
        return httpx.Client(
            base_url=world["url"], headers={"Authorization": f"Bearer {toks[user][1]}"}
        )

    batch = {"id": uuid.uuid4().hex, "metrics": {}}
    with (
        client("bob") as bob,
        client("alice") as alice,
        client("carol") as carol,
        client("root") as root,
    ):
        assert bob.get(f"/api/v1/runs/{runs['alpha']}").status_code == 200
        r = bob.post(f"/api/v1/runs/{runs['alpha']}/batches", json=batch)
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert alice.post(f"/api/v1/runs/{runs['alpha']}/batches", json=batch).status_code == 200
        assert alice.get(f"/api/v1/runs/{runs['beta']}").status_code == 404  # unreadable: unknown
        assert (
            bob.post(
                "/api/v1/runs", json={"id": uuid.uuid4().hex, "project": "alpha", "name": "x"}
            ).status_code
            == 403
        )
        assert {p["project"] for p in bob.get("/api/v1/projects").json()["projects"]} == {"alpha"}
        assert [r["id"] for r in bob.get("/api/v1/runs").json()["runs"]] == [runs["alpha"]]
        assert bob.get("/api/v1/runs").json()["total"] == 1
        assert bob.get("/api/v1/runs", params={"project": "beta"}).status_code == 403
        assert {p["project"] for p in root.get("/api/v1/projects").json()["projects"]} >= {
            "alpha",
            "beta",
        }
        assert alice.post("/api/v1/admin/reap").status_code == 403
        assert (
            carol.post("/api/v1/admin/reap").status_code == 403
        )  # admin of beta, not of every project
        assert root.post("/api/v1/admin/reap").status_code == 200
        assert carol.get("/api/v1/whoami").json() == {"user": "carol", "roles": {"beta": "admin"}}
    # the web UI's login cookie is accepted like the header
    with httpx.Client(base_url=world["url"], cookies={"labledger_token": toks["bob"][1]}) as c:
        assert c.get(f"/api/v1/runs/{runs['alpha']}").json()["project"] == "alpha"


def test_token_list_hides_secrets_and_revoke_takes_effect(world: dict[str, Any]) -> None:
    srv: Server = world["server"]
    tid, text = token(srv, "erin", "alpha", "read")
    listed = labledger("server", "token", "list", "--backend-uri", srv.backend_uri, "--json")
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    secret = text.split("_", 2)[2]  # llt_<id>_<secret>: the secret may itself hold "_"
    assert text not in listed.stdout and secret not in listed.stdout
    assert {"id": tid, "user": "erin", "active": True} == {
        k: next(r for r in rows if r["id"] == tid)[k] for k in ("id", "user", "active")
    }
    h = {"Authorization": f"Bearer {text}"}
    assert httpx.get(f"{srv.url}/api/v1/projects", headers=h).status_code == 200
    out = labledger("server", "token", "revoke", "--backend-uri", srv.backend_uri, tid)
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 60
    while httpx.get(f"{srv.url}/api/v1/projects", headers=h).status_code != 401:
        assert time.monotonic() < deadline, "revoked token still accepted"
        time.sleep(0.2)
    again = labledger("server", "token", "revoke", "--backend-uri", srv.backend_uri, tid)
    assert again.returncode == 1 and "no active token" in again.stderr


def test_client_with_a_read_token_stops_at_once_with_the_fix_named(
    world: dict[str, Any], tmp_path: Any
) -> None:
    """A refused token is a configuration fault (issue 26): raised, never spooled or waited for."""
    store = HttpStore(
        world["url"],
        token=world["tokens"]["bob"][1],
        spool_dir=tmp_path / "spool",
        sync_timeout=30,
    )
    try:
        batch = Batch(run_id=world["runs"]["alpha"], metrics={"x": ([1], [1.0], [1.0])})
        with pytest.raises(AuthError, match="LABLEDGER_TOKEN") as info:
            store.write_batch(batch)
        assert info.value.status_code == 403
        assert "write role" in str(info.value)
        assert not list((tmp_path / "spool").rglob("*.json"))
        with pytest.raises(AuthError):  # and stays stopped: no second request
            store.write_batch(batch)
    finally:
        store.close()
