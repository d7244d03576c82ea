"""PostgreSQL's CPU for metric chunks, by how their arrays are stored (migration 0017).

    python benchmarks/bench_chunk_storage.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

For each way of storing ``metric_chunks.steps/vals/ts`` (PostgreSQL's default pglz, LZ4,
uncompressed), a fresh database, then four threads calling ``SqlStore.write_batch`` with
the tracking server's batches (5 keys x 1,000 points, 60 batches each: 1.2M points), with
background compaction as on the server. Prints the writes' wall time, the CPU PostgreSQL's
processes used meanwhile (read from /proc, so run it on the database's machine), and
the table's size. Each database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from labledger.store import Batch
from labledger.store.sql import SqlStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import create_db, drop_db

THREADS, BATCHES, KEYS, STEPS = 4, 60, 5, 1000
COLUMNS = ("steps", "vals", "ts")
WAYS = {
    "pglz (default before 0017)": "ALTER TABLE metric_chunks ALTER COLUMN {c} SET COMPRESSION pglz",
    "lz4 (0017)": "ALTER TABLE metric_chunks ALTER COLUMN {c} SET COMPRESSION lz4",
    "uncompressed": "ALTER TABLE metric_chunks ALTER COLUMN {c} SET STORAGE EXTERNAL",
}


def _postgres_cpu() -> float:
    """CPU seconds used so far by the processes whose command line starts 'postgres'."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if not f.read().startswith(b"postgres"):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _wait_for_compaction(store: SqlStore) -> None:
    """Until the background compaction the batches made due is done: nothing left due
    and no other session of the database busy or inside a transaction, twice in a row."""
    quiet = 0
    while quiet < 2:
        with store.engine.connect() as conn:
            busy = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state <> 'idle'"
                )
            ).scalar_one()
        quiet = quiet + 1 if not store._due and not busy else 0
        time.sleep(0.05)


def measure(admin_url: str, way: str, ddl: str) -> str:
    url, name = create_db(admin_url, "bench_chunks")
    store = SqlStore(url)
    try:
        store.compact_in_background = True
        with store.engine.begin() as conn:
            for col in COLUMNS:
                conn.execute(sa.text(ddl.format(c=col)))
        rng = np.random.default_rng(0)
        payloads = []
        for b in range(BATCHES):
            st = np.arange(b * STEPS, (b + 1) * STEPS, dtype=np.int64)
            ts = np.full(STEPS, time.time())
            payloads.append({f"k{k}": (st, rng.standard_normal(STEPS), ts) for k in range(KEYS)})
        runs = []
        for _ in range(THREADS):
            rid = uuid.uuid4().hex
            store.create_run(
                {"id": rid, "project": "p", "name": rid[:8], "created_at": time.time()}
            )
            runs.append(rid)

        def work(rid: str) -> None:
            for m in payloads:
                store.write_batch(Batch(run_id=rid, metrics=m, heartbeat=time.time()))

        cpu0, t0 = _postgres_cpu(), time.perf_counter()
        threads = [threading.Thread(target=work, args=(r,)) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        _wait_for_compaction(store)
        cpu = _postgres_cpu() - cpu0
        with store.engine.connect() as conn:
            size = conn.execute(
                sa.text("SELECT pg_size_pretty(pg_total_relation_size('metric_chunks'))")
            ).scalar()
        points = THREADS * BATCHES * KEYS * STEPS
        return (
            f"{way:28s} {points / wall:>12,.0f} points/s of writes  "
            f"PostgreSQL CPU {cpu:5.2f} s  metric_chunks {size}"
        )
    finally:
        store.close()
        drop_db(admin_url, name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    print(
        f"{THREADS} threads x {BATCHES} batches x {KEYS} keys x {STEPS} points; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for _ in range(a.repeat):
        for way, ddl in WAYS.items():
            print(measure(a.pg, way, ddl), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
