"""The server refuses (422) exactly what ``init()``/``log()`` refuse: one set of limits."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

import labledger
from labledger._limits import MAX_JSON_DEPTH, MAX_NAME_LENGTH, MAX_TAG_LENGTH

from .conftest import Server


def _run(**kw: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "id": uuid.uuid4().hex,
        "project": "limits",
        "name": "ok",
        "created_at": now,
        "heartbeat_at": now,
        **kw,
    }


def _nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth - 1):
        node["a"] = {}
        node = node["a"]
    return root


def test_server_applies_the_same_limits_as_the_client(shared_server: Server) -> None:
    url = shared_server.url + "/api/v1/runs"
    with httpx.Client(timeout=60) as http:
        assert http.post(url, json=_run(name="n" * MAX_NAME_LENGTH)).status_code == 201
        assert http.post(url, json=_run(name="n" * (MAX_NAME_LENGTH + 1))).status_code == 422
        assert http.post(url, json=_run(tags=["t" * (MAX_TAG_LENGTH + 1)])).status_code == 422
        assert (
            http.post(url, json=_run(config={"d": _nested(MAX_JSON_DEPTH + 1)})).status_code == 422
        )
        assert (
            http.post(url, json=_run(config={"d": _nested(MAX_JSON_DEPTH - 1)})).status_code == 201
        )
        run = _run()
        assert http.post(url, json=run).status_code == 201
        batch = {"id": uuid.uuid4().hex, "run_update": {"summary": _nested(MAX_JSON_DEPTH + 2)}}
        resp = http.post(f"{url}/{run['id']}/batches", json=batch)
        assert resp.status_code == 422


def test_client_refuses_before_sending(shared_server: Server, tmp_path: Any) -> None:
    with pytest.raises(labledger.LimitExceededError):
        labledger.init("limits", name="n" * (MAX_NAME_LENGTH + 1), store=shared_server.url)
