"""Scale benchmark: filter + sort top 100, the UI's runs page, best, importance, export, audit.

    .venv/bin/python benchmarks/bench_scale.py --runs N [--points P] --store URI [--json]
        [--repeat K] [--explain DIR] [--skip importance,export,audit,history] [--quick]

Builds its data through the public bulk path into ``URI``, keeping what is there: it
tops the project ``scale`` up to N runs with ``SqlStore.create_runs`` (2,000 runs per
call), each run finished with its series ``val_acc`` and ``loss`` (so chained into the
audit trail as an import). ``--points P`` also writes one run with a P-point series
and times reading it back, full and downsampled to 1,000 points. Then prints p50/p95
(``--repeat`` timings each) of:

- filter + sort by ``-summary.val_acc``, top 100, for six filter shapes: a numeric range
  on config, config equality, a tag, a name ``like``, an author, and a summary threshold
  matching under 0.1% of runs;
- the UI's runs page: the newest 50 runs of the project and the (capped) total;
- ``Ledger.best``, ``Ledger.importance`` (under ``--importance-runs`` runs, default
  all), ``Ledger.export`` to parquet, and ``audit verify`` with its peak memory (a child
  process's maximum resident set, so what the drivers hold counts too).

On PostgreSQL the statements each filter shape runs are saved with EXPLAIN ANALYZE under
``--explain`` (default ``benchmarks/results/``). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event

from labledger import Ledger
from labledger.store import Batch, open_store

PROJECT = "scale"
AUTHORS = [f"user{i}" for i in range(50)]
SHAPES = {
    "config_range": "config.lr < 0.0001",
    "config_eq": 'config.optimizer = "adam"',
    "tag": 'tags = "baseline"',
    "name_like": 'name like "sweep-17*"',
    "author": 'author = "user7"',
    "summary_rare": "summary.val_acc > 0.9995",
}
SORT = "-summary.val_acc"


def _existing(store: Any) -> int:
    return int(store.count_runs(project=PROJECT))


def populate(store: Any, n: int, seed: int = 0) -> tuple[int, float]:
    """Top the project up to ``n`` runs; (runs created, seconds spent creating them)."""
    have = _existing(store)
    rng = random.Random(seed + have)
    now = time.time() - n
    todo = n - have
    t0 = time.perf_counter()
    created = 0
    while created < todo:
        part = min(2000, todo - created)
        records = []
        for i in range(have + created, have + created + part):
            rid = uuid.UUID(int=rng.getrandbits(128)).hex
            records.append(
                {
                    "id": rid,
                    "project": PROJECT,
                    "name": f"sweep-{i}",
                    "created_at": now + i,
                    "author": rng.choice(AUTHORS),
                    "config": {
                        "lr": 10 ** rng.uniform(-5, -1),
                        "optimizer": rng.choice(["adam", "sgd", "adamw", "rmsprop"]),
                        "batch_size": rng.choice([16, 32, 64, 128, 256]),
                        "layers": rng.randint(1, 12),
                        "dropout": round(rng.uniform(0, 0.5), 3),
                    },
                    "tags": ["baseline"] if rng.random() < 0.05 else ["sweep"],
                    "status": "finished",
                    "ended_at": now + i + 60,
                    "exit_code": 0,
                    "metrics": {
                        "val_acc": ([10], [rng.random()], [now + i]),
                        "loss": ([10], [rng.uniform(0.01, 3)], [now + i]),
                    },
                }
            )
        store.create_runs(records)
        created += part
        print(f"  created {have + created:,} runs", file=sys.stderr, flush=True)
    return created, time.perf_counter() - t0


def _timed(fn: Any, repeat: int) -> dict[str, float]:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1)}


def _explain(store: Any, fn: Any, out: Path, name: str) -> None:
    """EXPLAIN ANALYZE every SELECT ``fn`` runs, written to ``out/name.txt``."""
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        fn()
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
    lines = []
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:  # the settings list and count reads run with (SqlStore._flat)
            cur.execute("SET LOCAL jit = off")
            cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        for stmt, params in seen:
            with raw.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + stmt, params)
                plan = "\n".join(r[0] for r in cur.fetchall())
            lines.append(f"-- {stmt}\n-- params: {params!r}\n{plan}\n")
        raw.rollback()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.txt").write_text("\n".join(lines))


# the child's own peak (VmHWM): on Linux ru_maxrss survives exec, so a child started by a
# big parent reported the parent's peak (the "742 MB" of an earlier run was this bench's)
_VERIFY = """
import json, resource, sys, time
from labledger.store import open_store
s = open_store(sys.argv[1]); t0 = time.perf_counter(); r = s.audit_verify()
try:
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
    rss = int(hwm.split()[1]) / 1024
except (OSError, IndexError):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
# its worker processes (PostgreSQL, past 20,000 runs a project): the largest one's peak
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"s": time.perf_counter() - t0, "ok": r["ok"], "rss_mb": rss,
                  "worker_mb": workers}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=0)
    ap.add_argument("--store", help="default: a temporary SQLite store, removed afterwards")
    ap.add_argument("--quick", action="store_true", help="2,000 runs, 3 repeats (make bench)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--importance-runs", type=int, default=0)
    ap.add_argument("--explain", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--skip", default="", help="comma list: importance,export,audit,history")
    a = ap.parse_args(argv)
    if a.quick:
        a.runs, a.repeat = min(a.runs, 2000), 3
    if a.store is None:
        with tempfile.TemporaryDirectory() as tmp:
            a.store = f"sqlite:///{tmp}/ledger.db"
            return _main(a)
    return _main(a)


def _main(a: argparse.Namespace) -> int:
    skip = set(filter(None, a.skip.split(",")))
    store: Any = open_store(a.store)  # a SQL store: dialect, engine
    out: dict[str, Any] = {"runs": a.runs, "store": store.dialect}
    made, secs = populate(store, a.runs)
    if made:
        out["create_runs_per_s"] = round(made / secs)
        if store.dialect == "postgresql":  # statistics for the new rows, as autovacuum would
            # (every table the populate filled: audit verify's per-page reads of audit_log
            # were planned as whole-chain scans without them, 0.6 s a page at 1M runs, on
            # this machine's server, which runs with autovacuum off)
            with store.engine.begin() as conn:
                for table in ("runs", "metric_summary", "metric_chunks", "audit_log"):
                    conn.execute(sa.text(f"ANALYZE {table}"))
    led = Ledger(a.store)
    pg = store.dialect == "postgresql"
    explain_dir = Path(a.explain) / f"{store.dialect}-{a.runs}"
    for name, flt in SHAPES.items():

        def q(flt: str = flt) -> Any:
            return store.list_runs(project=PROJECT, filter=flt, order_by=SORT, limit=100)

        out[f"filter_{name}"] = _timed(q, a.repeat) | {"matched": len(q())}
        if pg:
            _explain(store, q, explain_dir, f"filter_{name}")

    def page() -> Any:
        rows = store.list_runs(project=PROJECT, limit=50)
        return rows, store.count_runs(project=PROJECT, cap=10_001)

    out["ui_runs_page"] = _timed(page, a.repeat)
    if pg:
        _explain(store, page, explain_dir, "ui_runs_page")
    out["best"] = _timed(lambda: led.best("val_acc", project=PROJECT, top=10), a.repeat)
    if "importance" not in skip:
        only: str | None = None
        if a.importance_runs and a.importance_runs < a.runs:
            only = f"summary.loss < {0.01 + 2.99 * a.importance_runs / a.runs}"
        out["importance"] = _timed(
            lambda: led.importance("val_acc", project=PROJECT, filter=only), max(1, a.repeat // 3)
        )
    if "export" not in skip:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "runs.parquet"
            out["export_parquet"] = _timed(
                lambda: led.export(path, "parquet", project=PROJECT), max(1, a.repeat // 3)
            )
    if a.points and "history" not in skip:
        out["history"] = _history(store, led, a.points, a.repeat)
    if "audit" not in skip:
        r = subprocess.run(
            [sys.executable, "-c", _VERIFY, a.store], capture_output=True, text=True, check=True
        )
        v = json.loads(r.stdout)
        out["audit_verify"] = {
            "s": round(v["s"], 2),
            "ok": v["ok"],
            "peak_mb": round(v["rss_mb"]),
            "worker_peak_mb": round(v["worker_mb"]),
        }
    out["bench_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    led.close()
    store.close()
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:24} {v}")
    return 0


def _history(store: Any, led: Ledger, points: int, repeat: int) -> dict[str, Any]:
    rid = f"{points:032x}"
    with store.engine.connect() as conn:
        have = conn.execute(sa.text("SELECT 1 FROM runs WHERE id = :i"), {"i": rid}).first()
    if have is None:
        store.create_runs([{"id": rid, "project": PROJECT + "-series", "name": f"p{points}"}])
        step = 1_000_000
        for i in range(0, points, step):
            n = min(step, points - i)
            st = np.arange(i, i + n, dtype=np.int64)
            store.write_batch(Batch(rid, {"x": (st, np.sin(st / 1e4), np.full(n, 1.7e9))}))
    return {
        "points": points,
        "full": _timed(lambda: led.history(rid, "x"), max(1, repeat // 3)),
        "full_arrow": _timed(lambda: led.history(rid, "x", format="arrow"), max(1, repeat // 3)),
        "downsampled_1000": _timed(lambda: led.history(rid, "x", max_points=1000), repeat),
    }


if __name__ == "__main__":
    sys.exit(main())
