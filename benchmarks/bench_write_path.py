"""The store write path alone: what init() and the writer thread run, per store class.

    python benchmarks/bench_write_path.py

For each of LiteStore (the embedded stdlib path) and SqlStore on SQLite: the median
time of ``create_run`` and of ``write_batch`` for a writer-sized batch (10 keys x 50
points, summaries upserted), and of the batch that ends a run (sealed into the audit
chain). No capture, no writer thread, no subprocess: only the statements and their
connection. Prints medians over several repeats in fresh temporary stores.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from labledger.store import Batch
from labledger.store._lite import LiteStore
from labledger.store.sql import SqlStore

BATCHES = 200
KEYS = 10
POINTS = 50
REPEATS = 5


def _run(pid: str) -> dict[str, Any]:
    return {"id": pid, "project": "bench", "name": "r", "config": {"lr": 0.1}, "author": "a"}


def _batch(run_id: str, i: int) -> Batch:
    t = time.time()
    steps = list(range(i * POINTS, (i + 1) * POINTS))
    metrics = {f"k{k}": (steps, [float(s) * 0.5 for s in steps], [t] * POINTS) for k in range(KEYS)}
    return Batch(run_id, metrics, heartbeat=t)


def measure(cls: Any) -> dict[str, float]:
    create, write, seal = [], [], []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory() as tmp:
            store = cls(f"sqlite:///{tmp}/ledger.db")
            try:
                rid = uuid.uuid4().hex
                t0 = time.perf_counter()
                store.create_run(_run(rid))
                create.append(time.perf_counter() - t0)
                batches = [_batch(rid, i) for i in range(BATCHES)]
                t0 = time.perf_counter()
                for b in batches:
                    store.write_batch(b)
                write.append((time.perf_counter() - t0) / BATCHES)
                end = Batch(rid, run_update={"status": "finished", "ended_at": time.time()})
                t0 = time.perf_counter()
                store.write_batch(end)
                seal.append(time.perf_counter() - t0)
            finally:
                store.close()
    return {
        "create_run_ms": statistics.median(create) * 1e3,
        "write_batch_ms": statistics.median(write) * 1e3,
        "seal_ms": statistics.median(seal) * 1e3,
    }


def main() -> None:
    print(
        f"store write path, medians of {REPEATS} fresh stores; batch = {KEYS} keys x {POINTS} "
        f"points, {BATCHES} batches per store"
    )
    for cls in (LiteStore, SqlStore):
        m = measure(cls)
        print(
            f"  {cls.__name__:10s} create_run {m['create_run_ms']:7.2f} ms   "
            f"write_batch {m['write_batch_ms']:6.3f} ms   seal (ending batch) {m['seal_ms']:6.2f} ms"
        )


if __name__ == "__main__":
    main()
