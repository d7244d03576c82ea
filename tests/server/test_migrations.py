"""Schema migrations: `labledger server db upgrade` by hand, and several replicas starting at
once on one empty PostgreSQL database (the same deployment docs/server.md describes)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from labledger.remote.http import HttpStore
from labledger.store import Batch
from labledger.store.sql import code_revisions

from .conftest import Server, _create_db, labledger


@pytest.fixture
def empty_pg() -> Iterator[str]:
    url, drop = _create_db()
    try:
        yield url
    finally:
        drop()


def _alembic_heads(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))}
    finally:
        engine.dispose()


def test_db_upgrade_by_hand_applies_every_revision_once(empty_pg: str) -> None:
    first = labledger("server", "db", "upgrade", "--backend-uri", empty_pg)
    assert first.returncode == 0, first.stderr
    revisions = sorted(code_revisions())
    assert first.stdout.strip() == f"applied {', '.join(revisions)}"
    assert max(revisions) in _alembic_heads(empty_pg)
    again = labledger("server", "db", "upgrade", "--backend-uri", empty_pg)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"up to date ({', '.join(revisions)})"


def test_replicas_starting_at_once_share_one_database(empty_pg: str, tmp_path: Path) -> None:
    replicas = [Server(empty_pg, tmp_path) for _ in range(3)]
    try:
        for srv in replicas:  # all three race to migrate the empty database
            srv.start(wait=False)
        for srv in replicas:
            srv.wait_ready()
        assert max(code_revisions()) in _alembic_heads(empty_pg)
        # stateless: a run written through one replica is read, whole, through the others
        writer = HttpStore(replicas[0].url, spool_dir=tmp_path / "spool", sync_timeout=5)
        rid = uuid.uuid4().hex
        now = time.time()
        writer.create_run(
            {
                "id": rid,
                "project": "replicas",
                "name": "r",
                "status": "running",
                "created_at": now,
                "heartbeat_at": now,
                "config": {"lr": 0.1},
            }
        )
        writer.write_batch(
            Batch(run_id=rid, metrics={"loss": ([0, 1, 2], [3.0, 2.0, 1.0], [now] * 3)})
        )
        writer.close()
        for srv in replicas[1:]:
            run = httpx.get(f"{srv.url}/api/v1/runs/{rid}", timeout=10).json()
            assert run["config"] == {"lr": 0.1}
            assert run["metrics"]["loss"]["count"] == 3 and run["metrics"]["loss"]["last"] == 1.0
        logs = "\n".join(srv.log() for srv in replicas)
        assert "Traceback" not in logs, logs
    finally:
        for srv in replicas:
            srv.stop()
