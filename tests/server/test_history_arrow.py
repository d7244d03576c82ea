"""Full series as Arrow IPC: ``GET /api/v1/runs/{ref}/history?format=arrow``, the HTTP
client reading it, ``History.to_arrow``/``from_arrow`` and ``Ledger.history(format="arrow")``:
the same steps, values (NaN and infinities included) and timestamps as the store holds."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from labledger import Ledger
from labledger.store import Batch, History, open_store

from .conftest import Server, make_token

pa = pytest.importorskip("pyarrow")


def _series(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps = np.arange(n, dtype=np.int64) * 3
    vals = np.sin(steps / 7.0)
    if n > 8:
        vals[5:8] = [math.nan, math.inf, -math.inf]
    return steps, vals, np.full(n, 1.7e9) + steps


def _same(a: History, b: History) -> None:
    assert (a.run_id, a.key, a.total) == (b.run_id, b.key, b.total)
    assert np.array_equal(a.steps, b.steps)
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert np.array_equal(a.timestamps, b.timestamps)
    assert a.steps.dtype == np.int64 and a.values.dtype == np.float64


def _write(uri: str, run_id: str, n: int) -> None:
    store = open_store(uri)
    store.create_runs([{"id": run_id, "project": "arrow", "name": "series"}])
    if n:
        store.write_batch(Batch(run_id, {"x": _series(n)}))
    store.close()


@pytest.mark.parametrize("n", [0, 9, 20_000])
def test_history_round_trips_through_arrow(tmp_path: Path, n: int) -> None:
    uri = f"sqlite:///{tmp_path / 'ledger.db'}"
    _write(uri, "a" * 32, n)
    led = Ledger(uri)
    h = led.history("a" * 32, "x")
    assert len(h) == n
    table = led.history("a" * 32, "x", format="arrow")
    assert table.column_names == ["step", "value", "timestamp"]
    assert table.schema.metadata[b"total"] == str(n).encode()
    _same(History.from_arrow(table), h)
    _same(History.from_arrow(h.to_arrow_ipc()), h)
    small = led.history("a" * 32, "x", max_points=100, format="arrow")
    _same(History.from_arrow(small), led.history("a" * 32, "x", max_points=100))
    led.close()


def test_the_server_sends_arrow_and_the_client_reads_it(
    shared_server: Server, module_pg: str
) -> None:
    rid = "b" * 32
    _write(module_pg, rid, 50_000)
    direct = open_store(module_pg)
    want = direct.history(rid, "x")
    direct.close()
    tok = make_token(shared_server, "root", "*", "admin")
    with httpx.Client(
        base_url=shared_server.url, headers={"Authorization": f"Bearer {tok}"}
    ) as http:
        got = http.get(f"/api/v1/runs/{rid}/history", params={"key": "x", "format": "arrow"})
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("application/vnd.apache.arrow.stream")
        _same(History.from_arrow(got.content, key="x"), want)
        as_json: Any = http.get(f"/api/v1/runs/{rid}/history", params={"key": "x"}).json()
        assert as_json["total"] == 50_000 and as_json["values"][5] == "NaN"
        bad = http.get(f"/api/v1/runs/{rid}/history", params={"key": "x", "format": "csv"})
        assert bad.status_code in (400, 422)
    remote: Any = open_store(shared_server.url, token=tok)
    _same(remote.history(rid, "x"), want)
    _same(
        remote.history(rid, "x", max_points=500),
        History(want.run_id, "x", *_downsampled(want, 500), want.total),
    )
    remote.close()


def _downsampled(h: History, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from labledger.store._series_sql import downsample

    return downsample(h.steps, h.values, h.timestamps, n)
