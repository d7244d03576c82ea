"""Benchmark the query layer: filter + sort + top-N, importance, export.

    .venv/bin/python benchmarks/bench_query.py [--quick] [--pg URL] [--runs N]

Populates a fresh store with N runs (default 100,000; ``--quick`` 10,000) x 10 config
keys x 5 metrics using bulk inserts (not run.log), then prints median timings:

- ``filter``: ``config.lr < 0.01 and config.optimizer = "adam"`` sorted by
  ``-summary.val_acc``, top 100, through ``Ledger.runs`` (target p50 <= 100 ms);
- ``importance``: ``Ledger.importance(metric="val_acc")`` over 10,000 runs (<= 5 s);
- ``export``: ``Ledger.export(format="parquet")`` of every run (<= 5 s at 100,000);
- ``in_list``: ``config.seed in (<10,000 even numbers>)`` sorted by ``-summary.val_acc``,
  top 100 (one bound parameter: ``json_each`` on SQLite, ``= ANY`` on PostgreSQL).

``--pg URL`` runs against a fresh database created under that server
(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres) instead of SQLite.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from labledger import Ledger
from labledger.store import _schema as s
from labledger.store import open_store

FILTER = 'config.lr < 0.01 and config.optimizer = "adam"'
SORT = "-summary.val_acc"
METRICS = ("val_acc", "val_loss", "train_loss", "train_acc", "lr_final")


def populate(store: Any, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    now = time.time() - n
    runs: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for i in range(n):
        rid = uuid.UUID(int=rng.getrandbits(128)).hex
        lr = 10 ** rng.uniform(-5, -1)
        cfg = {
            "lr": lr,
            "optimizer": rng.choice(["adam", "sgd", "adamw", "rmsprop"]),
            "batch_size": rng.choice([16, 32, 64, 128, 256]),
            "dropout": round(rng.uniform(0, 0.5), 3),
            "layers": rng.randint(1, 12),
            "hidden": rng.choice([128, 256, 512, 1024]),
            "weight_decay": 10 ** rng.uniform(-6, -2),
            "warmup": rng.randint(0, 1000),
            "activation": rng.choice(["relu", "gelu", "silu"]),
            "seed": rng.randint(0, 10_000),
        }
        created = now + i
        runs.append(
            {
                "id": rid,
                "project": f"proj{i % 5}",
                "name": f"run-{i}",
                "status": "finished",
                "created_at": created,
                "ended_at": created + 60,
                "heartbeat_at": created + 60,
                "host": "bench",
                "pid": 1,
                "pid_start": "x",
                "config": cfg,
                "summary": {},
                "tags": ["bench"],
                "notes": None,
                "seed": cfg["seed"],
                "env": {"git": {"commit": "0" * 40, "dirty": False}},
                "datasets": [],
                "exit_code": 0,
                "error": None,
                "parent_run_id": None,
                "updated_at": created + 60,
            }
        )
        acc = 0.9 - abs(-3 - __import__("math").log10(lr)) * 0.1 + rng.gauss(0, 0.02)
        for k in METRICS:
            v = acc if k == "val_acc" else rng.random()
            summaries.append(
                {
                    "run_id": rid,
                    "key": k,
                    "count": 100,
                    "last": v,
                    "last_nan": False,
                    "last_step": 99,
                    "last_ts": created + 60,
                    "min": v,
                    "max": v,
                }
            )
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(s.projects),
            [{"name": f"proj{i}", "created_at": now, "settings": None} for i in range(5)],
        )
        for i in range(0, len(runs), 5000):
            conn.execute(sa.insert(s.runs), runs[i : i + 5000])
        for i in range(0, len(summaries), 20000):
            conn.execute(sa.insert(s.metric_summary), summaries[i : i + 20000])
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    else:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")


def timeit(fn: Any, repeat: int) -> tuple[float, Any]:
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="10,000 runs instead of 100,000")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument(
        "--pg", default=None, help="PostgreSQL admin URL; a scratch database is created"
    )
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument(
        "--skip",
        default="",
        help="comma-separated parts to skip: filter,importance,export,in_list",
    )
    args = ap.parse_args(argv)
    n = args.runs or (10_000 if args.quick else 100_000)
    skip = set(filter(None, args.skip.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="bench_query_"))
    dbname = None
    if args.pg:
        dbname = "bench_" + uuid.uuid4().hex[:8]
        admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{dbname}"')
        uri = args.pg.rsplit("/", 1)[0] + "/" + dbname
    else:
        uri = f"sqlite:///{tmp / 'ledger.db'}"
    store = open_store(uri)
    results: dict[str, Any] = {"runs": n, "backend": store.dialect}  # type: ignore[attr-defined]
    try:
        t0 = time.perf_counter()
        populate(store, n)
        results["populate_s"] = round(time.perf_counter() - t0, 2)
        ledger = Ledger(store, reap=False)
        if "filter" not in skip:
            ledger.runs(filter=FILTER, order_by=SORT, limit=100)  # warm caches
            med, top = timeit(
                lambda: ledger.runs(filter=FILTER, order_by=SORT, limit=100), args.repeat
            )
            results["filter_top100_p50_ms"] = round(med * 1000, 1)
            results["filter_matched_top"] = len(top)
        if "in_list" not in skip:
            in_filter = "config.seed in (" + ", ".join(str(i) for i in range(0, 20_000, 2)) + ")"
            ledger.runs(filter=in_filter, order_by=SORT, limit=100)
            med, top = timeit(
                lambda: ledger.runs(filter=in_filter, order_by=SORT, limit=100), args.repeat
            )
            results["in_list_10k_top100_p50_ms"] = round(med * 1000, 1)
            results["in_list_matched_top"] = len(top)
        if "importance" not in skip:
            imp_filter = f"created_at >= {time.time() - n - 1 + max(0, n - 10_000)}"
            med, imp = timeit(lambda: ledger.importance("val_acc", filter=imp_filter), 3)
            results["importance_10k_p50_s"] = round(med, 2)
            results["importance_top"] = imp[0]["key"] if imp else None
        if "export" not in skip:
            out = tmp / "runs.parquet"
            med, _ = timeit(lambda: ledger.export(out, format="parquet"), 3)
            results["export_parquet_p50_s"] = round(med, 2)
            results["export_bytes"] = out.stat().st_size
    finally:
        store.close()
        if dbname and args.pg:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
