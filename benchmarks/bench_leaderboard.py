"""Benchmark the honest leaderboard and importance at 10,000 runs.

    .venv/bin/python benchmarks/bench_leaderboard.py [--quick] [--runs N] [--repeat R]

Populates a fresh store with N runs (default 10,000; ``--quick`` 2,000) in replicate
sets of 5 seeds (2,000 configurations of 6 config keys, two commits, a patch on some,
one dataset, 30 packages of which one changes), by bulk inserts, then prints medians:

- ``best_by_config``: ``labledger best -m val_acc --by config --json`` through the CLI
  (``Ledger.leaderboard``: every run read, grouped into replicate sets, Welch's test
  against the top);
- ``leaderboard``: ``Ledger.leaderboard("val_acc")`` alone;
- ``importance``: ``Ledger.importance("val_acc")`` with the code/data factors and the
  noise floor.

SQLite always; PostgreSQL too when LABLEDGER_TEST_POSTGRES_URL is set (a scratch
database is created under that server and dropped).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

from labledger import Ledger
from labledger.cli import cli
from labledger.store import _schema as s
from labledger.store import open_store

SEEDS = 5
PACKAGES = {f"pkg{i}": f"1.{i}.0" for i in range(30)}


def populate(store: Any, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    now = time.time() - n
    runs: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for c in range(max(1, n // SEEDS)):
        lr = 10 ** rng.uniform(-4, -1)
        cfg = {
            "lr": lr,
            "optimizer": rng.choice(["adam", "sgd", "adamw"]),
            "batch_size": rng.choice([32, 64, 128]),
            "dropout": round(rng.uniform(0, 0.5), 2),
            "layers": rng.randint(1, 8),
        }
        commit = rng.choice(["a" * 40, "b" * 40])
        patch = rng.choice([None, None, "p" * 64])
        pkgs = dict(PACKAGES, torch=rng.choice(["2.3.0", "2.4.0"]))
        true = 0.9 - abs(-2.5 - math.log10(lr)) * 0.05 + (0.01 if patch else 0.0)
        for sd in range(SEEDS):
            i = c * SEEDS + sd
            rid = uuid.UUID(int=rng.getrandbits(128)).hex
            created = now + i
            runs.append(
                {
                    "id": rid,
                    "project": "bench",
                    "name": f"run-{i}",
                    "status": "finished",
                    "created_at": created,
                    "ended_at": created + 60,
                    "heartbeat_at": created + 60,
                    "host": "bench",
                    "pid": 1,
                    "pid_start": "x",
                    "config": {**cfg, "seed": sd},
                    "summary": {},
                    "tags": [],
                    "notes": None,
                    "seed": sd,
                    "env": {
                        "git": {"commit": commit, "dirty": bool(patch), "diff_sha256": patch},
                        "packages": pkgs,
                    },
                    "datasets": [{"name": "train", "sha256": "d" * 64, "size": 1}],
                    "exit_code": 0,
                    "error": None,
                    "parent_run_id": None,
                    "updated_at": created + 60,
                }
            )
            v = true + rng.gauss(0, 0.005)
            summaries.append(
                {
                    "run_id": rid,
                    "key": "val_acc",
                    "count": 10,
                    "last": v,
                    "last_nan": False,
                    "last_step": 9,
                    "last_ts": created + 60,
                    "min": v,
                    "max": v,
                }
            )
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(s.projects), [{"name": "bench", "created_at": now, "settings": None}]
        )
        for i in range(0, len(runs), 2000):
            conn.execute(sa.insert(s.runs), runs[i : i + 2000])
        for i in range(0, len(summaries), 20000):
            conn.execute(sa.insert(s.metric_summary), summaries[i : i + 20000])


def timeit(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench(uri: str, n: int, repeat: int) -> dict[str, Any]:
    store = open_store(uri)
    out: dict[str, Any] = {"backend": store.dialect, "runs": n}  # type: ignore[attr-defined]
    try:
        t0 = time.perf_counter()
        populate(store, n)
        out["populate_s"] = round(time.perf_counter() - t0, 2)
        ledger = Ledger(store, reap=False)

        def cli_board() -> Any:
            res = CliRunner().invoke(
                cli, ["best", "-m", "val_acc", "--by", "config", "--json", "--store", uri]
            )
            assert res.exit_code == 0, res.output
            return json.loads(res.output)

        med, rows = timeit(cli_board, repeat)
        out["best_by_config_cli_p50_s"] = round(med, 3)
        out["configurations"] = len(ledger.leaderboard("val_acc"))
        out["top_n"] = rows[0]["n"]
        out["tied_with_top"] = sum(1 for r in rows if r["tied_with_best"])
        med, _ = timeit(lambda: ledger.leaderboard("val_acc"), repeat)
        out["leaderboard_api_p50_s"] = round(med, 3)
        med, imp = timeit(lambda: ledger.importance("val_acc"), max(1, repeat // 2))
        out["importance_p50_s"] = round(med, 3)
        out["noise_floor"] = imp[0]["noise_floor"]
        out["importance_top"] = [i["key"] for i in imp[:3]]
    finally:
        store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="2,000 runs instead of 10,000")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    n = args.runs or (2_000 if args.quick else 10_000)
    repeat = 3 if args.quick else args.repeat
    tmp = Path(tempfile.mkdtemp(prefix="bench_leaderboard_"))
    results = [bench(f"sqlite:///{tmp / 'ledger.db'}", n, repeat)]
    pg = os.environ.get("LABLEDGER_TEST_POSTGRES_URL")
    if pg:
        dbname = "bench_" + uuid.uuid4().hex[:8]
        admin_url = pg.rsplit("/", 1)[0] + "/postgres"
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{dbname}"')
        try:
            results.append(bench(pg.rsplit("/", 1)[0] + "/" + dbname, n, repeat))
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            admin.dispose()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
