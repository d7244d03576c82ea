"""HttpStore against a real server on PostgreSQL: exact round trips, idempotency, reads."""

from __future__ import annotations

import gzip
import math
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from labledger._exceptions import RunNotFoundError, UsageError
from labledger.remote.http import HttpStore
from labledger.store import BATCH_MEDIA_TYPE, Batch
from labledger.store.sql import SqlStore

from .conftest import Server


def _run(project: str = "proj", **kw: object) -> dict[str, object]:
    now = time.time()
    return {
        "id": uuid.uuid4().hex,
        "project": project,
        "name": f"r-{uuid.uuid4().hex[:6]}",
        "created_at": now,
        "heartbeat_at": now,
        "host": "elsewhere",
        "pid": 1,
        **kw,
    }


@pytest.fixture
def client(shared_server: Server, tmp_path: Path) -> HttpStore:
    store = HttpStore(shared_server.url, spool_dir=tmp_path / "spool", sync_timeout=5)
    yield store  # type: ignore[misc]
    store.close()


def test_batch_round_trips_every_float_exactly(client: HttpStore, shared_server: Server) -> None:
    run = _run(config={"lr": 0.1, "bad": math.inf})
    client.create_run(run)
    special = np.array([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, 0.1])
    rng = np.random.default_rng(0)
    vals = np.concatenate([special, rng.standard_normal(2000)])
    steps = np.arange(len(vals), dtype=np.int64) * 3 - 7
    ts = time.time() + np.arange(len(vals)) / 1e6
    batch = Batch(
        run_id=str(run["id"]),
        metrics={"loss": (steps, vals, ts), "a/b": ([1], [2.5], [3.0])},
        run_update={"summary": {"best": -math.inf}},
        heartbeat=time.time(),
    )
    assert client.write_batch(batch) is True
    h = client.history(str(run["id"]), "loss")
    assert h.total == len(vals)
    assert h.steps.tolist() == steps.tolist()
    assert (
        h.values.tobytes() == vals.astype("<f8").tobytes()
    )  # bit-exact, NaN and signed zero included
    assert h.timestamps.tobytes() == ts.astype("<f8").tobytes()
    # the same through the SQL store underneath: one storage implementation
    sql = SqlStore(shared_server.backend_uri)
    try:
        assert sql.history(str(run["id"]), "loss").values.tobytes() == vals.tobytes()
    finally:
        sql.close()
    got = client.get_run(str(run["id"]))
    assert got["summary"]["best"] == -math.inf
    assert got["config"]["bad"] == math.inf
    assert sorted(client.metric_keys(str(run["id"]))) == ["a/b", "loss"]


def test_retried_batch_is_stored_once(client: HttpStore) -> None:
    run = _run()
    client.create_run(run)
    client.create_run(run)  # a retried create is accepted, not duplicated
    batch = Batch(run_id=str(run["id"]), metrics={"x": (list(range(10)), [1.0] * 10, [0.0] * 10)})
    assert client.write_batch(batch) is True
    assert client.write_batch(batch) is False
    assert client.history(str(run["id"]), "x").total == 10


def test_large_batch_goes_binary_without_gzip_and_is_accepted(
    shared_server: Server, client: HttpStore
) -> None:
    run = _run()
    client.create_run(run)
    n = 50_000
    batch = Batch(run_id=str(run["id"]), metrics={"big": (np.arange(n), np.zeros(n), np.zeros(n))})
    seen: list[tuple[str | None, str | None]] = []

    def hook(request: httpx.Request) -> None:
        seen.append((request.headers.get("content-type"), request.headers.get("content-encoding")))

    client._client.event_hooks["request"] = [hook]
    assert client.write_batch(batch)
    assert seen == [(BATCH_MEDIA_TYPE, None)]  # raw floats barely compress: never gzipped
    assert client.history(str(run["id"]), "big").total == n
    # a large JSON body (a run record) is still gzipped
    seen.clear()
    client.create_run(_run(config={"blob": "x" * 100_000}))
    assert seen == [("application/json", "gzip")]


def test_malformed_gzip_and_batches_get_the_error_shape(shared_server: Server) -> None:
    run = _run()
    with httpx.Client(base_url=shared_server.url) as c:
        assert c.post("/api/v1/runs", json=run).status_code == 201
        r = c.post(
            f"/api/v1/runs/{run['id']}/batches",
            content=b"not gzip",
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert r.status_code == 400 and set(r.json()) == {"code", "message", "details"}
        body = {
            "id": "b1",
            "metrics": {"x": {"steps": "AAAAAAAAAAA=", "values": "!!", "timestamps": ""}},
        }
        r = c.post(
            f"/api/v1/runs/{run['id']}/batches",
            content=gzip.compress(httpx.Request("POST", "/", json=body).content),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert r.status_code == 400 and r.json()["code"] == "bad_request"
        r = c.post(f"/api/v1/runs/{uuid.uuid4().hex}/batches", json={"id": "b2"})
        assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_projects_narrows_list_and_count_as_on_the_sql_store(client: HttpStore) -> None:
    tag = uuid.uuid4().hex[:6]
    a, b, c = (f"{x}-{tag}" for x in "abc")
    for project in (a, b, c):
        client.create_run(_run(project, config={"i": 1}))
    got = client.list_runs(projects=[a, b], filter="config.i = 1", order_by="project")
    assert [r["project"] for r in got] == [a, b]
    assert client.count_runs(projects=[c]) == 1
    assert client.count_runs(projects=[a, c], filter="config.i = 2") == 0
    assert client.list_runs(projects=[]) == []


def test_reads_list_count_projects_and_blobs(client: HttpStore) -> None:
    project = "reads-" + uuid.uuid4().hex[:6]
    ids = []
    for i in range(3):
        run = _run(project, config={"i": i})
        client.create_run(run)
        ids.append(run["id"])
    assert {r["id"] for r in client.list_runs(project=project)} == set(ids)
    assert len(client.list_runs(project=project, limit=2)) == 2
    assert client.count_runs(project=project) == 3
    assert any(p["project"] == project and p["runs"] == 3 for p in client.projects())
    with pytest.raises(RunNotFoundError):
        client.get_run("0" * 32)
    data = b"diff --git a/x b/x\n" * 100
    sha = client.put_blob(data)
    assert client.get_blob(sha) == data
    with pytest.raises(UsageError):
        client.list_runs(order_by="no_such_column")
