"""Errors keep their type over HTTP: the server sends the class and its fields, the client raises it again."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from labledger._exceptions import (
    AmbiguousRunError,
    ArtifactNotFoundError,
    InvalidFilterError,
    InvalidSortKeyError,
    RunNotFoundError,
    StrictModeError,
    error_from_wire,
    error_to_wire,
)
from labledger.query import parse
from labledger.remote.http import HttpStore

from .conftest import Server


def _run(run_id: str) -> dict[str, object]:
    now = time.time()
    return {
        "id": run_id,
        "project": "typed",
        "name": run_id[:6],
        "created_at": now,
        "heartbeat_at": now,
        "host": "elsewhere",
        "pid": 1,
    }


@pytest.fixture
def client(make_server: Callable[..., Server], tmp_path: Path) -> HttpStore:
    server = make_server(f"sqlite:///{tmp_path / 'server.db'}")
    store = HttpStore(server.url, spool_dir=tmp_path / "spool", sync_timeout=5)
    store.create_run(_run("abc1" + "0" * 28))
    store.create_run(_run("abc2" + "0" * 28))
    yield store  # type: ignore[misc]
    store.close()


def test_an_ambiguous_prefix_is_an_ambiguous_run_error_with_its_matches(client: HttpStore) -> None:
    with pytest.raises(AmbiguousRunError) as info:
        client.get_run("abc")
    assert info.value.ref == "abc"
    assert sorted(info.value.matches) == ["abc1" + "0" * 28, "abc2" + "0" * 28]


def test_an_unknown_run_is_a_run_not_found_error(client: HttpStore) -> None:
    with pytest.raises(RunNotFoundError) as info:
        client.get_run("fedcba")
    assert info.value.ref == "fedcba"


def test_a_filter_error_keeps_its_expression_and_position(client: HttpStore) -> None:
    text = "config.lr < 0.1 and summary.acc >"
    with pytest.raises(InvalidFilterError) as local:
        parse(text)
    with pytest.raises(InvalidFilterError) as remote:
        client.list_runs(filter=text)
    assert type(remote.value) is InvalidFilterError
    assert remote.value.position == local.value.position is not None
    assert remote.value.expression == text
    assert str(remote.value) == str(local.value)


def test_a_bad_sort_key_stays_an_invalid_sort_key_error(client: HttpStore) -> None:
    with pytest.raises(InvalidSortKeyError) as info:
        client.list_runs(order_by="nonsense.field")
    assert info.value.key


def test_a_missing_artifact_is_an_artifact_not_found_error(client: HttpStore) -> None:
    with pytest.raises(ArtifactNotFoundError) as info:
        client.get_artifact_version("typed", "nothing:v3")
    assert "nothing" in info.value.ref


def test_the_error_body_names_the_type_and_fields(client: HttpStore) -> None:
    r = httpx.get(f"{client.uri}/api/v1/runs/abc")
    body = r.json()
    assert r.status_code == 404 and set(body) == {"code", "message", "details"}
    assert body["details"]["error"]["type"] == "AmbiguousRunError"
    assert body["details"]["error"]["fields"]["ref"] == "abc"


def test_wire_round_trip_rebuilds_the_same_class_and_message() -> None:
    for exc in (
        AmbiguousRunError("ab", ["ab1", "ab2"]),
        InvalidFilterError("expected a value", "a <", 3),
        InvalidSortKeyError("x.y", "not sortable"),
        ArtifactNotFoundError("p/m:v9", "no version 9"),
        StrictModeError(["dirty tree"]),
    ):
        back = error_from_wire(error_to_wire(exc))
        assert type(back) is type(exc) and str(back) == str(exc)
    assert error_from_wire({"type": "NoSuchError", "fields": {}}) is None
    assert error_from_wire({"type": "ValueError", "fields": {}}) is None
