"""The binary batch body (``application/vnd.labledger.batch``) next to the JSON one.

Both forms reach the same write core: same points, same idempotency, same limits. The
HTTP client sends binary and falls back to JSON for a server that does not read it."""

from __future__ import annotations

import json
import math
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from labledger import StoreUnavailableError
from labledger.remote.http import HttpStore
from labledger.store import (
    BATCH_MEDIA_TYPE,
    Batch,
    batch_from_binary,
    batch_from_wire,
    batch_to_binary,
    batch_to_wire,
)

from .conftest import Server


def _run() -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "project": "bin", "name": "b", "created_at": time.time()}


def _batch(run_id: str, **kw: Any) -> Batch:
    vals = np.array([math.nan, math.inf, -math.inf, -0.0, 5e-324, 0.25])
    return Batch(
        run_id=run_id,
        metrics={
            "loss": (np.arange(6) * 2 - 3, vals, np.arange(6) + 0.5),
            "a/b": ([7], [1.5], [2.0]),
        },
        heartbeat=12.5,
        **{"run_update": {"summary": {"best": -math.inf}, "tags": ["x"]}, **kw},
    )


def test_binary_and_json_forms_decode_to_the_same_batch() -> None:
    batch = _batch("r" * 32)
    a = batch_from_binary(batch.run_id, batch_to_binary(batch))
    b = batch_from_wire(batch.run_id, batch_to_wire(batch))
    assert (a.id, a.heartbeat, list(a.metrics)) == (b.id, b.heartbeat, list(b.metrics))
    assert a.run_update["summary"]["best"] == -math.inf and a.run_update["tags"] == ["x"]
    for key in b.metrics:
        for x, y in zip(a.metrics[key], b.metrics[key], strict=True):
            assert np.asarray(x).tobytes() == np.asarray(y).tobytes()  # bit-exact
    assert len(batch_to_binary(batch)) % 8 == 0


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"LLB2\x02\x00\x00\x00{}",
        b"LLB1\xff\x00\x00\x00{}",
        b"LLB1\x02\x00\x00\x00[]\x00\x00",
        struct.pack("<4sI", b"LLB1", 33) + b'{"id":"a","metrics":[{"key":"x","n":2}]}',
        struct.pack("<4sI", b"LLB1", 16) + b'{"id":"a"}      ' + b"\x00" * 8,  # trailing bytes
    ],
)
def test_malformed_binary_bodies_are_refused(body: bytes) -> None:
    from labledger import UsageError

    with pytest.raises(UsageError):
        batch_from_binary("r", body)


def _post(c: httpx.Client, run_id: str, content: bytes, kind: str = BATCH_MEDIA_TYPE) -> Any:
    return c.post(f"/api/v1/runs/{run_id}/batches", content=content, headers={"Content-Type": kind})


def test_the_server_stores_a_binary_batch_once_as_it_stores_json(
    shared_server: Server, tmp_path: Path
) -> None:
    one, two = _run(), _run()
    with httpx.Client(base_url=shared_server.url) as c:
        for run in (one, two):
            assert c.post("/api/v1/runs", json=run).status_code == 201
        batch = _batch(one["id"])
        r = _post(c, one["id"], batch_to_binary(batch))
        assert r.status_code == 200 and r.json() == {"applied": True, "points": 7}
        r = _post(c, one["id"], batch_to_binary(batch))  # the same id again: not applied
        assert r.status_code == 200 and r.json()["applied"] is False
        same = _batch(two["id"])  # batch ids are unique store-wide
        r = c.post(f"/api/v1/runs/{two['id']}/batches", json=batch_to_wire(same))
        assert r.status_code == 200 and r.json() == {"applied": True, "points": 7}
    reader = HttpStore(shared_server.url, spool_dir=tmp_path)
    try:
        got = [reader.history(run["id"], "loss") for run in (one, two)]
    finally:
        reader.close()
    assert got[0].total == got[1].total == 6
    for a, b in ((got[0].values, got[1].values), (got[0].steps, got[1].steps)):
        assert a.tobytes() == b.tobytes()
    assert got[0].values.tobytes() == _batch("").metrics["loss"][1].tobytes()
    with httpx.Client(base_url=shared_server.url) as c:
        runs = [c.get(f"/api/v1/runs/{run['id']}").json() for run in (one, two)]
        assert runs[0]["summary"] == runs[1]["summary"]
        assert runs[0]["summary"]["best"] == {"$float": "-Infinity"}


def test_the_server_answers_bad_binary_bodies_with_the_error_shape(shared_server: Server) -> None:
    run = _run()
    with httpx.Client(base_url=shared_server.url) as c:
        assert c.post("/api/v1/runs", json=run).status_code == 201
        r = _post(c, run["id"], b"LLB1 not a batch")
        assert r.status_code == 400 and r.json()["code"] == "bad_request"
        over = _batch(run["id"], run_update={"tags": ["t" * 10_000]})
        r = _post(c, run["id"], batch_to_binary(over))  # the JSON body's limits hold
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        r = _post(c, run["id"], b'{"id": "x"}', kind="text/plain")
        assert r.status_code == 422 and "application/json" in json.dumps(r.json())


def test_the_client_sends_binary_and_falls_back_to_json_for_an_older_server(
    tmp_path: Path,
) -> None:
    seen: list[str] = []

    def old_server(request: httpx.Request) -> httpx.Response:
        kind = request.headers.get("content-type", "")
        seen.append(kind)
        if kind != "application/json":  # FastAPI reads a non-JSON body as bytes: 422
            return httpx.Response(
                422, json={"code": "invalid_request", "message": "", "details": {}}
            )
        body = json.loads(request.content)
        assert "metrics" not in body or all(
            isinstance(s["values"], str) for s in body["metrics"].values()
        )
        return httpx.Response(200, json={"applied": True, "points": 1})

    store = HttpStore(
        "http://old.invalid", spool_dir=tmp_path, transport=httpx.MockTransport(old_server)
    )
    try:
        assert store.write_batch(_batch("r" * 32)) is True
        assert seen == [BATCH_MEDIA_TYPE, "application/json"]
        assert store.write_batch(_batch("r" * 32)) is True
        assert seen[2:] == ["application/json"]  # remembered: JSON only from then on
        assert not list(tmp_path.rglob("*.json"))  # nothing kept aside by the store
    finally:
        store.close()


def test_a_batch_the_server_cannot_take_now_raises_and_its_outbox_form_is_json(
    tmp_path: Path,
) -> None:
    """The store raises (the writer owns the outbox); what the writer keeps is JSON."""
    from labledger.remote._outbox import batch_record

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"code": "unavailable", "message": "", "details": {}})

    store = HttpStore(
        "http://down.invalid", spool_dir=tmp_path, transport=httpx.MockTransport(down)
    )
    try:
        batch = _batch("r" * 32)
        with pytest.raises(StoreUnavailableError):
            store.write_batch(batch)
        assert not list(tmp_path.rglob("*.json"))
        record = json.loads(json.dumps(batch_record(store.uri, batch)))
        assert record["kind"] == "batch" and record["body"]["id"] == batch.id
        again = batch_from_wire(batch.run_id, record["body"])
        assert again.metrics["loss"][1].tobytes() == batch.metrics["loss"][1].tobytes()
    finally:
        store.close()
