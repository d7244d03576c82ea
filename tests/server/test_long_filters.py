"""A filter too long for a URL (thousands of ids in an `in` list) works over the server:
the client sends it in the body of POST /api/v1/runs/search, with the same permissions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Server, labledger, make_token

WANTED = list(range(0, 6000, 2))  # 3,000 values: about 17,000 characters of filter
LONG = "config.i in (" + ", ".join(str(i) for i in WANTED) + ")"


@pytest.fixture(scope="module")
def world(module_pg: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    srv = Server(module_pg, tmp_path_factory.mktemp("srv"))
    srv.start()
    try:
        toks = {
            "root": make_token(srv, "root", "*", "admin"),
            "bob": make_token(srv, "bob", "projA", "read"),
        }
        expected: dict[str, set[str]] = {"projA": set(), "projB": set()}
        with httpx.Client(
            base_url=srv.url, headers={"Authorization": f"Bearer {toks['root']}"}
        ) as root:
            # i = 0..39 in both projects: the even ones are in the list, the odd ones not
            for project in ("projA", "projB"):
                for i in range(40):
                    rid = uuid.uuid4().hex
                    r = root.post(
                        "/api/v1/runs",
                        json={"id": rid, "project": project, "name": f"r{i}", "config": {"i": i}},
                    )
                    assert r.status_code == 201, r.text
                    if i % 2 == 0:
                        expected[project].add(rid)
        yield {"server": srv, "tokens": toks, "expected": expected}
    finally:
        srv.stop()


def _ls(world: dict[str, Any], user: str, *args: str) -> Any:
    out = labledger(
        "ls", "--filter", LONG, "--json", *args,
        env={"LABLEDGER_URI": world["server"].url, "LABLEDGER_TOKEN": world["tokens"][user]},
    )  # fmt: skip
    return out


def test_ls_with_thousands_of_values_in_an_in_list_over_the_server(world: dict[str, Any]) -> None:
    assert len(LONG) > 15_000
    out = _ls(world, "root", "--project", "projA")
    assert out.returncode == 0, out.stderr
    assert {r["id"] for r in json.loads(out.stdout)} == world["expected"]["projA"]
    # every project the caller reads, when none is named
    out = _ls(world, "root")
    assert out.returncode == 0, out.stderr
    everything = world["expected"]["projA"] | world["expected"]["projB"]
    assert {r["id"] for r in json.loads(out.stdout)} == everything


def test_the_body_search_keeps_the_readers_permissions(world: dict[str, Any]) -> None:
    # bob reads projA only: without a project he sees projA's matches, never projB's
    out = _ls(world, "bob")
    assert out.returncode == 0, out.stderr
    assert {r["id"] for r in json.loads(out.stdout)} == world["expected"]["projA"]
    # naming projB is refused, as GET /runs?project=projB is
    out = _ls(world, "bob", "--project", "projB")
    assert out.returncode != 0
    assert "read role on project 'projB'" in out.stderr
    headers = {"Authorization": f"Bearer {world['tokens']['bob']}"}
    with httpx.Client(base_url=world["server"].url, headers=headers) as bob:
        r = bob.post("/api/v1/runs/search", json={"project": "projB", "filter": LONG})
        assert r.status_code == 403, r.text
        r = bob.post("/api/v1/runs/search", json={"filter": LONG, "limit": 5})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(world["expected"]["projA"]) and len(body["runs"]) == 5
        # the same query in a URL is refused with a reason, which is why the body exists
        r = bob.get("/api/v1/runs", params={"filter": LONG})
        assert r.status_code == 422 and "filter" in r.text
        # an unknown field is refused, not ignored
        r = bob.post("/api/v1/runs/search", json={"filtr": "status = 'x'"})
        assert r.status_code == 422 and "filtr" in r.text


def test_the_list_total_is_capped_on_request(world: dict[str, Any]) -> None:
    """total_cap stops the count there (the runs page shows "N+"); 0 counts every run."""
    srv = world["server"]
    with httpx.Client(
        base_url=srv.url, headers={"Authorization": f"Bearer {world['tokens']['root']}"}
    ) as root:
        capped = root.get("/api/v1/runs", params={"project": "projA", "limit": 1, "total_cap": 5})
        assert (capped.json()["total"], capped.json()["total_capped"]) == (5, True)
        exact = root.get("/api/v1/runs", params={"project": "projA", "limit": 1, "total_cap": 0})
        assert (exact.json()["total"], exact.json()["total_capped"]) == (40, False)
        default = root.post("/api/v1/runs/search", json={"project": "projA", "limit": 1})
        assert (default.json()["total"], default.json()["total_capped"]) == (40, False)
