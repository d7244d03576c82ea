"""LiteStore (stdlib sqlite3 write path) writes exactly what SqlStore writes."""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labledger.store import Batch
from labledger.store import _schema as schema
from labledger.store._gen_ddl import render
from labledger.store._lite import CHUNK_POINTS, LiteStore
from labledger.store._locate import code_revisions
from labledger.store._sqlite_ddl import REVISIONS, STATEMENTS
from labledger.store.sql import SqlStore


def test_schema_snapshot_is_generated_from_the_declared_schema() -> None:
    """Fails after a change to _schema.py: regenerate with `python -m labledger.store._gen_ddl`."""
    generated: dict[str, Any] = {}
    exec(render(), generated)
    assert (generated["REVISIONS"], generated["STATEMENTS"]) == (REVISIONS, STATEMENTS)
    assert set(REVISIONS) == code_revisions()
    assert CHUNK_POINTS == schema.CHUNK_POINTS


def _schema_diff(uri: str) -> list[Any]:
    """What Alembic's autogenerate finds between the store at ``uri`` and _schema.py."""
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = sa.create_engine(uri)

    def declared_here(obj: Any, name: Any, kind: str, reflected: bool, other: Any) -> bool:
        # an index declared for another back end only (Index(...).ddl_if(dialect=...))
        cond = getattr(obj, "_ddl_if", None)
        return reflected or cond is None or cond.dialect in (None, engine.dialect.name)

    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"include_object": declared_here})
            return list(compare_metadata(ctx, schema.metadata))
    finally:
        engine.dispose()


def test_the_migrations_create_the_declared_schema(any_store_uri: str) -> None:
    SqlStore(any_store_uri).close()
    assert _schema_diff(any_store_uri) == []


def _layout(path: Path) -> dict[str, Any]:
    """Tables (columns by name), indexes (columns, uniqueness, partial clause) and the
    bookkeeping rows of an SQLite store: what must agree however the store was made."""
    con = sqlite3.connect(path)
    try:
        out: dict[str, Any] = {}
        for name, kind, sql in con.execute(
            "SELECT name, type, sql FROM sqlite_master WHERE sql IS NOT NULL"
        ):
            if kind == "table":
                cols = con.execute(f'PRAGMA table_info("{name}")').fetchall()
                out[name] = sorted(c[1:] for c in cols)
            else:
                info = con.execute(f'PRAGMA index_info("{name}")').fetchall()
                where = sql.split(" WHERE ", 1)[1] if " WHERE " in sql else None
                out[name] = ([c[2] for c in info], sql.startswith("CREATE UNIQUE"), where)
        out["labledger_meta rows"] = con.execute(
            "SELECT key, value FROM labledger_meta WHERE key <> 'audit_since' ORDER BY key"
        ).fetchall()
        out["alembic_version rows"] = sorted(
            con.execute("SELECT * FROM alembic_version").fetchall()
        )
        return out
    finally:
        con.close()


def test_a_snapshot_store_and_a_migrated_store_agree(tmp_path: Path) -> None:
    LiteStore(f"sqlite:///{tmp_path / 'lite.db'}").close()
    SqlStore(f"sqlite:///{tmp_path / 'migrated.db'}").close()
    assert _layout(tmp_path / "lite.db") == _layout(tmp_path / "migrated.db")
    assert _schema_diff(f"sqlite:///{tmp_path / 'lite.db'}") == []


def test_a_store_created_by_litestore_is_a_full_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'b.db'}"
    LiteStore(uri).close()
    sql = SqlStore(uri)  # no migration needed, nothing refused
    assert sql.applied_revisions() == code_revisions()
    sql.close()


def _batches(run_id: str) -> list[Batch]:
    t = time.time()
    n = CHUNK_POINTS + 500
    out = [
        Batch(run_id, {"loss": ([0, 1, 2], [0.5, math.nan, 0.25], [t, t, t])}),
        Batch(
            run_id,
            {
                "loss": (list(range(3, 3 + n)), [float(i) for i in range(n)], [t + 1] * n),
                "acc": ([0, 1], [math.nan, math.inf], [t, t]),
                "nan": ([0], [math.nan], [t]),
            },
            run_update={"config": {"lr": 0.1}, "env": {"git": {"commit": "abc"}}},
            heartbeat=t,
        ),
        Batch(
            run_id,
            {"loss": ([7], [-1.0], [t + 2])},
            run_update={"env": {"os": {"system": "Linux"}}, "summary": {"best": 1}},
        ),
        Batch(run_id, {}, run_update={"status": "finished", "ended_at": t + 3, "exit_code": 0}),
    ]
    out.append(out[1])  # a replay: applied at most once
    return out


def _rows(path: Path) -> dict[str, Any]:
    con = sqlite3.connect(path)
    try:
        return {
            "chunks": con.execute(
                "select run_id, key, n, step_min, step_max, steps, vals, ts from metric_chunks "
                "order by key, id"
            ).fetchall(),
            "summary": con.execute("select * from metric_summary order by key").fetchall(),
            "runs": con.execute(
                "select id, project, name, status, config, summary, tags, env, datasets, "
                "exit_code, seed, notes from runs"
            ).fetchall(),
            "audit": con.execute(
                "select project, seq, run_id, kind, edit_id, record_sha256, fields, prev_sha256 "
                "from audit_log order by project, seq"
            ).fetchall(),
        }
    finally:
        con.close()


@pytest.mark.parametrize("arrays", [False, True], ids=["lists", "numpy"])
def test_litestore_and_sqlstore_write_the_same_rows(tmp_path: Path, arrays: bool) -> None:
    run = {"id": "a" * 32, "project": "p", "name": "n", "config": {"x": 1}, "seed": 3}
    written = {}
    batches = _batches(run["id"])
    for label, cls in (("lite", LiteStore), ("sql", SqlStore)):
        path = tmp_path / f"{label}.db"
        store: Any = cls(f"sqlite:///{path}")
        store.create_run({**run, "created_at": 1.0, "heartbeat_at": 1.0})
        for i, b in enumerate(batches):
            if i == 3:  # before the end: an artifact version, whose manifest the seal covers
                _add_version(store, path, run["id"])
            if arrays:
                b = Batch(
                    b.run_id,
                    {k: tuple(np.asarray(a) for a in v) for k, v in b.metrics.items()},  # type: ignore[misc]
                    b.run_update,
                    b.heartbeat,
                    id=b.id,
                )
            store.write_batch(b)
        store.close()
        written[label] = _rows(path)
    assert written["lite"]["chunks"] == written["sql"]["chunks"]
    assert written["lite"]["summary"] == written["sql"]["summary"]
    lite_runs = [tuple(_decode(v) for v in r) for r in written["lite"]["runs"]]
    sql_runs = [tuple(_decode(v) for v in r) for r in written["sql"]["runs"]]
    assert lite_runs == sql_runs
    # the batch that ends the run seals it on both: the same record, the same chain entry
    # (entry hashes differ only by the time of sealing)
    lite_audit = [tuple(_decode(v) for v in r) for r in written["lite"]["audit"]]
    sql_audit = [tuple(_decode(v) for v in r) for r in written["sql"]["audit"]]
    assert len(lite_audit) == 1 and lite_audit[0][3] == "seal"
    assert lite_audit == sql_audit
    assert set(lite_audit[0][6]) >= {"config", "env", "series.loss", "metric.acc", "edits"}
    assert {"format", "artifact.model:v0", "points.loss"} <= set(lite_audit[0][6])
    # and SqlStore reads LiteStore's rows back
    sql = SqlStore(f"sqlite:///{tmp_path / 'lite.db'}")
    got = sql.get_run(run["id"])
    assert got["status"] == "finished"
    assert got["env"] == {"git": {"commit": "abc"}, "os": {"system": "Linux"}}
    assert got["metrics"]["loss"]["count"] == 3 + CHUNK_POINTS + 500 + 1
    assert got["metrics"]["nan"]["min"] is None
    assert len(sql.history(run["id"], "loss")) == 3 + CHUNK_POINTS + 500 + 1
    assert sql.audit_verify()["ok"] is True
    v = sql.verify_run(run["id"])
    assert v["sealed"] is True and v["problems"] == []
    sql.close()


def _add_version(store: Any, path: Path, run_id: str) -> None:
    """A 3-file artifact version of ``run_id``, under the same version id on every store."""
    files = [{"path": f"w/{i}.bin", "sha256": f"{i:064x}", "size": i} for i in range(3)]
    v = store.create_artifact_version("p", "model", "model", run_id, files)
    con = sqlite3.connect(path)
    with con:
        for table, col in (
            ("artifact_versions", "id"),
            ("artifact_files", "version_id"),
            ("artifact_aliases", "version_id"),
        ):
            con.execute(f"UPDATE {table} SET {col} = ? WHERE {col} = ?", ("v" * 32, v["id"]))
    con.close()


def _decode(v: Any) -> Any:
    import json

    if isinstance(v, str) and v[:1] in "{[":
        return json.loads(v)
    return v


def test_litestore_serves_reads_through_a_full_store(tmp_path: Path) -> None:
    lite = LiteStore(f"sqlite:///{tmp_path / 'c.db'}")
    lite.create_run({"id": "b" * 32, "project": "p", "name": "n"})
    assert lite.get_run("b" * 8)["name"] == "n"  # delegated to SqlStore
    digest = lite.put_blob(b"patch")
    assert lite.get_blob(digest) == b"patch"
    lite.close()


def test_multi_key_calls_round_trip_on_every_back_end(any_store_uri: str, ledger_of: Any) -> None:
    import labledger

    run = labledger.init("multi", store=any_store_uri, capture=False)
    for i in range(1_000):
        run.log({f"k{j}": float(i * j) for j in range(10)})  # one buffer entry per call
        if i % 100 == 0:
            run.log({"k3": -1.0, "other": 1})  # mixed entries: points and int values
    assert run.summary["k9"] == 999.0 * 9
    run.finish()
    led = ledger_of(any_store_uri)
    got = led.get(run.id)
    assert got["metrics"]["k9"]["count"] == 1_000
    assert got["metrics"]["k3"]["count"] == 1_010
    assert got["metrics"]["other"]["count"] == 10
    h = led.history(run.id, "k7")
    assert h.values.tolist() == [float(i * 7) for i in range(1_000)]


def test_lite_store_and_sql_store_share_the_sealing_rules() -> None:
    from labledger.store import _audit_core, _audit_sql, _lite

    assert _lite.SEALED_STATUSES is _audit_sql.SEALED_STATUSES  # one definition (_fields)
    assert _audit_sql.canonical is _audit_core.canonical  # one hashing rule (_audit_core)


def test_litestore_records_edits_seals_and_hands_ended_runs_to_sqlstore(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'e.db'}"
    lite = LiteStore(uri)
    rid = "e" * 32
    lite.create_run({"id": rid, "project": "p", "name": "n", "author": "ada", "notes": "a"})
    t = time.time()
    lite.write_batch(Batch(rid, {"x": ([0], [1.0], [t])}, run_update={"notes": "b"}))
    lite.write_batch(Batch(rid, {}, run_update={"status": "finished", "ended_at": t}))
    assert lite._full is None  # sealed without SQLAlchemy
    # the ended run is frozen: a later point is refused (by SqlStore's rules), and a
    # notes edit becomes an edit event and a second chain entry
    from labledger import RunFinishedError

    with pytest.raises(RunFinishedError):
        lite.write_batch(Batch(rid, {"x": ([1], [2.0], [t])}))
    lite.write_batch(Batch(rid, {}, run_update={"notes": "c"}), actor="bob")
    lite.close()
    sql = SqlStore(uri)
    run = sql.get_run(rid)
    assert [(e["field"], e["old"], e["new"], e["author"]) for e in run["edits"]] == [
        ("notes", "a", "b", "ada"),
        ("notes", "b", "c", "bob"),
    ]
    assert sql.audit_head("p")[0]["seq"] == 2  # seal, then the edit
    assert sql.audit_verify()["ok"] is True
    v = sql.verify_run(rid)
    assert v["sealed"] is True and v["problems"] == [] and len(v["history"]) == 2
    assert run["metrics"]["x"]["count"] == 1
    sql.close()


def test_threads_sharing_a_litestore_never_interleave_transactions(tmp_path: Path) -> None:
    """The writer thread writes batches while the capture thread stores blobs through the
    same LiteStore (one sqlite3 connection): both must succeed, nothing may be lost."""
    import threading

    from labledger.store import Batch
    from labledger.store._lite import LiteStore

    uri = f"sqlite:///{tmp_path / 'ledger.db'}"
    lite = LiteStore(uri)
    lite.create_run({"id": "c" * 32, "project": "p", "name": "n"})
    errors: list[BaseException] = []

    def blobs() -> None:
        try:
            for i in range(300):
                lite.put_blob(f"blob {i}".encode() * 50)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=blobs)
    t.start()
    for i in range(300):
        lite.write_batch(Batch("c" * 32, {"x": ([i], [float(i)], [0.0])}))
    t.join()
    assert errors == []
    lite.close()
    from labledger import Ledger

    assert Ledger(uri).get("c" * 32)["metrics"]["x"]["count"] == 300
