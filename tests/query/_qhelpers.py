"""Helpers for the query tests: put run records straight into a real store (imported by the tests)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from labledger.store import Batch


def make_run(
    *,
    config: dict[str, Any] | None = None,
    metrics: dict[str, list[float]] | None = None,
    summary: dict[str, Any] | None = None,
    project: str = "p",
    name: str | None = None,
    status: str = "finished",
    created_at: float | None = None,
    tags: list[str] | None = None,
    env: dict[str, Any] | None = None,
    seed: int | None = None,
    datasets: list[dict[str, Any]] | None = None,
    ended_at: float | None = None,
) -> dict[str, Any]:
    rid = uuid.uuid4().hex
    created = time.time() if created_at is None else created_at
    return {
        "id": rid,
        "project": project,
        "name": name or f"run-{rid[:6]}",
        "status": status,
        "created_at": created,
        "ended_at": ended_at
        if ended_at is not None
        else (None if status == "running" else created + 10),
        "heartbeat_at": created,
        "config": config or {},
        "summary": summary or {},
        "tags": tags or [],
        "env": env or {},
        "seed": seed,
        "datasets": datasets or [],
        "_metrics": metrics or {},
    }


def insert(store: Any, runs: list[dict[str, Any]]) -> None:
    """Create each run and write its metrics the way the writer does (a Batch per run)."""
    for r in runs:
        record = {k: v for k, v in r.items() if k != "_metrics"}
        store.create_run(record)
        metrics = {
            k: (list(range(len(vals))), list(vals), [r["created_at"] + i for i in range(len(vals))])
            for k, vals in r["_metrics"].items()
            if vals
        }
        if metrics:
            store.write_batch(Batch(run_id=r["id"], metrics=metrics))
