"""Catching up after an outage: the spool replay rate, and batch latency as a series grows.

    python benchmarks/bench_catch_up.py [--pg URL] [--spools 10] [--batches 300]
                                        [--points 1000] [--repeat 3]

Part 1 (issue 12, item 7): ``--spools`` client spools of ``--batches`` batches each
(``--points`` points per batch, two keys) are written while the server is down, then
replayed in parallel, as clients do when the server comes back (the same code as
``labledger sync``: ``POST /api/v1/replay`` with many spooled requests per round trip).
Prints the median aggregate replay rate in points/s. Target: >= 100,000 points/s.

Part 2 (item 8): latency of 300-point batches to one series through the server, batch #1
vs #100 (appends must cost the same at the end of a chunk as at its start).

Runs a real ``labledger server`` on PostgreSQL (a fresh database, dropped afterwards;
default ``LABLEDGER_TEST_POSTGRES_URL``), in the default configuration.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_server import create_db, drop_db, free_port, load, stop, wait_http  # noqa: E402


def start_server(pg: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "labledger.cli", "server", "--backend-uri", pg),
            *("--port", str(port), "--log-level", "warning"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def fill_spool(url: str, root: Path, batches: int, points: int) -> int:
    """One client's outbox session, as a client whose server ``url`` was down leaves it
    (the records init() and the tracking writer write); returns the points in it."""
    import numpy as np

    from labledger.remote import batch_record, run_record
    from labledger.remote.spool import Spool
    from labledger.store import Batch

    box = Spool(root)
    rid = uuid.uuid4().hex
    box.put(run_record(url, {"id": rid, "project": "catchup", "name": "r" + rid[:8]}))
    half = points // 2
    for b in range(batches):
        steps = np.arange(b * half, (b + 1) * half, dtype=np.int64)
        vals = steps * 0.5
        ts = np.full(half, time.time())
        batch = Batch(run_id=rid, metrics={"loss": (steps, vals, ts), "acc": (steps, vals, ts)})
        box.put(batch_record(url, batch))
    box.close()  # released, as a killed client leaves it
    return batches * half * 2


def replay_round(url: str, pg: str, args: argparse.Namespace) -> float:
    from labledger.remote.http import replay_folder_counts
    from labledger.remote.spool import session_dirs

    tmp = Path(tempfile.mkdtemp(prefix="ll-catchup-"))
    try:
        dead = f"http://127.0.0.1:{free_port()}"
        total = sum(fill_spool(dead, tmp, args.batches, args.points) for _ in range(args.spools))
        folders = session_dirs(tmp)
        errors: list[str] = []

        def one(folder: Path) -> None:
            c = replay_folder_counts(folder, uri=url)
            if c.left or c.rejected:
                errors.append(f"{folder.name}: left {c.left}, rejected {c.rejected} {c.reason}")

        threads = [threading.Thread(target=one, args=(f,)) for f in folders]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        if errors:
            raise SystemExit("replay failed: " + "; ".join(errors[:3]))
        return total / wall
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def latency(url: str, n: int) -> list[float]:
    import numpy as np

    from labledger.remote.http import HttpStore
    from labledger.store import Batch

    store = HttpStore(url, spool_dir=tempfile.mkdtemp(prefix="ll-lat-"))
    rid = uuid.uuid4().hex
    store.create_run({"id": rid, "project": "latency", "name": "r" + rid[:8]})
    out = []
    for b in range(n):
        steps = np.arange(b * 300, (b + 1) * 300, dtype=np.int64)
        batch = Batch(run_id=rid, metrics={"loss": (steps, steps * 0.5, np.zeros(300))})
        t0 = time.perf_counter()
        store.write_batch(batch)
        out.append(time.perf_counter() - t0)
    store.close()
    return out


def print_latency(lats: list[list[float]]) -> None:
    """Batch #1 vs #100, and batches at the start vs the end of a (former) open chunk."""
    from labledger.store._schema import CHUNK_POINTS

    n = len(lats[0])
    for i in (0, 99):
        if i < n:
            med = statistics.median(lat[i] for lat in lats) * 1000
            print(f"latency of 300-point batch #{i + 1}: median {med:.1f} ms")
    # where each batch would land in an open chunk of CHUNK_POINTS points (rewritten before)
    start = [
        lat[i]
        for lat in lats
        for i in range(1, n)
        if (i * 300) % CHUNK_POINTS < 0.25 * CHUNK_POINTS
    ]
    end = [
        lat[i]
        for lat in lats
        for i in range(1, n)
        if (i * 300) % CHUNK_POINTS > 0.75 * CHUNK_POINTS
    ]
    print(
        f"300-point batches in the first quarter of a {CHUNK_POINTS}-point chunk: median "
        f"{statistics.median(start) * 1000:.1f} ms; in the last quarter: "
        f"{statistics.median(end) * 1000:.1f} ms"
    )
    allm = [x for lat in lats for x in lat[1:]]
    print(f"all 300-point batches but the first: median {statistics.median(allm) * 1000:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default=os.environ.get("LABLEDGER_TEST_POSTGRES_URL"))
    ap.add_argument("--spools", type=int, default=10)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--latency-batches", type=int, default=200)
    ap.add_argument("--only", choices=["replay", "latency"], default=None)
    args = ap.parse_args()
    if not args.pg:
        raise SystemExit("give --pg postgresql+psycopg://… or set LABLEDGER_TEST_POSTGRES_URL")
    print(load())
    pg, name = create_db(args.pg, "bench_catchup")
    port = free_port()
    proc = start_server(pg, port)
    url = f"http://127.0.0.1:{port}"
    try:
        if args.only != "latency":
            rates = [replay_round(url, pg, args) for _ in range(args.repeat)]
            print(
                f"replay: {args.spools} spools x {args.batches} batches x {args.points} points, "
                f"in parallel: median {statistics.median(rates):,.0f} points/s "
                f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})"
            )
        if args.only != "replay":
            print_latency([latency(url, args.latency_batches) for _ in range(args.repeat)])
    finally:
        stop(proc)
        drop_db(args.pg, name)


if __name__ == "__main__":
    main()
