"""A value the database refuses is a typed error of the store, never SQLAlchemy's.

PostgreSQL refuses a NUL byte in text (a "data exception"). The SQL store raises
``ValueRejectedError`` (a ``UsageError``) in place of the driver's error, chained to it, so
no module outside ``store/`` catches SQLAlchemy (``tests/test_layers.py`` pins that), and
both APIs answer 400 in their own shape."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from labledger import UsageError
from labledger._exceptions import ValueRejectedError
from labledger.server import create_app
from labledger.store import Store, open_store


@pytest.fixture
def pg_store(pg_uri: str) -> Iterator[Store]:
    store = open_store(pg_uri)
    try:
        yield store
    finally:
        store.close()


def _run(**fields: object) -> dict[str, object]:
    return {
        "id": uuid.uuid4().hex,
        "project": "values",
        "name": "v",
        "created_at": time.time(),
        **fields,
    }


def test_the_sql_store_raises_value_rejected_for_a_nul_byte(pg_store: Store) -> None:
    with pytest.raises(ValueRejectedError) as info:
        pg_store.create_run(_run(notes="a\x00b"))
    assert isinstance(info.value, UsageError)
    assert "NUL" in info.value.reason or "0x00" in info.value.reason, info.value.reason
    assert type(info.value.__cause__).__module__.startswith("psycopg")  # the driver's error
    pg_store.create_run(run := _run(notes="ab"))  # the store is still usable
    assert pg_store.get_run(str(run["id"]))["notes"] == "ab"


def test_both_apis_answer_400_for_a_value_the_database_refuses(pg_uri: str) -> None:
    with TestClient(create_app(pg_uri)) as client:
        native = client.post("/api/v1/runs", json=_run(host="a\x00b"))
        assert native.status_code == 400, native.text
        body = native.json()
        assert body["code"] == "bad_request"
        assert body["message"] == "the database rejected a value in the request"
        assert body["details"]["reason"]

        exp = client.post("/api/2.0/mlflow/experiments/create", json={"name": "values"}).json()[
            "experiment_id"
        ]
        run = client.post(
            "/api/2.0/mlflow/runs/create", json={"experiment_id": exp, "run_name": "r"}
        ).json()["run"]["info"]["run_id"]
        tag = client.post(
            "/api/2.0/mlflow/runs/set-tag",
            json={"run_id": run, "key": "note", "value": "a\x00b"},
        )
        assert tag.status_code == 400, tag.text
        assert tag.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "rejected a value" in tag.json()["message"]
