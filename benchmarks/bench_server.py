"""Tracking-server benchmark: aggregate ingest through one server on PostgreSQL, batch latency,
and the same work against ``mlflow server`` when mlflow is installed.

    python benchmarks/bench_server.py [--quick] [--clients 10] [--workers 2] [--pg URL]

Prints median figures. Targets (issue 5): >= 200,000 points/s aggregate with 10 client
processes, p50 latency of a 1,000-point batch <= 20 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode}) for {url}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def create_db(base: str, prefix: str) -> tuple[str, str]:
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    eng = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return base.rsplit("/", 1)[0] + "/" + name, name


def drop_db(base: str, name: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    eng.dispose()


# -- labledger ---------------------------------------------------------------------------


def _ll_client(url: str, batches: int, keys: int, steps: int, spool: str, q: mp.Queue) -> None:  # type: ignore[type-arg]
    import numpy as np

    from labledger.store import Batch
    from labledger.store.http import HttpStore

    store = HttpStore(url, spool_dir=spool)
    rid = uuid.uuid4().hex
    store.create_run({"id": rid, "project": "bench", "name": rid[:8], "created_at": time.time()})
    rng = np.random.default_rng()
    payloads = []
    for b in range(batches):
        st = np.arange(b * steps, (b + 1) * steps, dtype=np.int64)
        ts = np.full(steps, time.time())
        payloads.append({f"k{k}": (st, rng.standard_normal(steps), ts) for k in range(keys)})
    t0 = time.perf_counter()
    for m in payloads:
        store.write_batch(Batch(run_id=rid, metrics=m, heartbeat=time.time()))
    elapsed = time.perf_counter() - t0
    q.put((batches * keys * steps, elapsed, store.pending()))
    store.close()


def ll_ingest(url: str, clients: int, batches: int, keys: int, steps: int, spool: str) -> float:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [
        ctx.Process(target=_ll_client, args=(url, batches, keys, steps, spool, q))
        for _ in range(clients)
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    # wall time from the first client's first batch to the last one's end: use the slowest client
    total = sum(r[0] for r in results)
    slowest = max(r[1] for r in results)
    spooled = sum(r[2] for r in results)
    if spooled:
        print(f"  warning: {spooled} batches went to the spool (server overloaded or down)")
    _ = t0
    return total / slowest


def ll_latency(url: str, n: int, spool: str) -> list[float]:
    import numpy as np

    from labledger.store import Batch
    from labledger.store.http import HttpStore

    store = HttpStore(url, spool_dir=spool)
    rid = uuid.uuid4().hex
    store.create_run({"id": rid, "project": "bench", "name": "latency", "created_at": time.time()})
    lat = []
    for b in range(n + 5):
        st = np.arange(b * 1000, (b + 1) * 1000, dtype=np.int64)
        batch = Batch(
            run_id=rid,
            metrics={"loss": (st, np.random.standard_normal(1000), np.full(1000, time.time()))},
        )
        t0 = time.perf_counter()
        store.write_batch(batch)
        if b >= 5:  # warm-up: connection, first chunk rows
            lat.append(time.perf_counter() - t0)
    store.close()
    return lat


# -- mlflow ---------------------------------------------------------------------------------


def _mlflow_client(url: str, batches: int, keys: int, steps: int, q: mp.Queue) -> None:  # type: ignore[type-arg]
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    exp = client.get_experiment_by_name("bench")
    exp_id = exp.experiment_id if exp else client.create_experiment(f"bench-{uuid.uuid4().hex[:6]}")
    run = client.create_run(exp_id)
    rid = run.info.run_id
    t0 = time.perf_counter()
    sent = 0
    for b in range(batches):
        ts = int(time.time() * 1000)
        metrics = [
            Metric(f"k{k}", float(i), ts, b * steps + i) for k in range(keys) for i in range(steps)
        ]
        for i in range(0, len(metrics), 1000):  # MLflow accepts at most 1,000 metrics per log_batch
            client.log_batch(rid, metrics=metrics[i : i + 1000])
        sent += len(metrics)
    q.put((sent, time.perf_counter() - t0))


def mlflow_half(
    pg_base: str, clients: int, batches: int, keys: int, steps: int, ll_rate: float
) -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        print(
            "mlflow: not installed, skipping the MLflow half (install mlflow to compare; it is not in our pins)"
        )
        return
    url_db, name = create_db(pg_base, "bench_mlflow")
    port = free_port()
    art = tempfile.mkdtemp(prefix="mlflow-art-")
    backend = url_db.replace("postgresql+psycopg://", "postgresql://")
    proc = subprocess.Popen(
        [
            shutil.which("mlflow") or "mlflow",
            "server",
            "--backend-store-uri",
            backend,
            "--default-artifact-root",
            art,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=120)
        ctx = mp.get_context("spawn")
        q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        procs = [
            ctx.Process(
                target=_mlflow_client, args=(f"http://127.0.0.1:{port}", batches, keys, steps, q)
            )
            for _ in range(clients)
        ]
        for p in procs:
            p.start()
        results = [q.get(timeout=1800) for _ in procs]
        for p in procs:
            p.join()
        rate = sum(r[0] for r in results) / max(r[1] for r in results)
        print(f"mlflow server: {rate:,.0f} points/s aggregate ({clients} clients)")
        print(f"ratio labledger / mlflow: {ll_rate / rate:.1f}x")
    finally:
        proc.terminate()
        proc.wait(30)
        drop_db(pg_base, name)
        shutil.rmtree(art, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers of the labledger server"
    )
    ap.add_argument(
        "--pg",
        default=os.environ.get(
            "LABLEDGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = ap.parse_args()
    reps = 1 if args.quick else 3
    batches, keys, steps = (10, 5, 1000) if args.quick else (40, 5, 1000)
    lat_n = 50 if args.quick else 300

    url_db, name = create_db(args.pg, "bench_ll")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spool = tempfile.mkdtemp(prefix="ll-spool-")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labledger.cli",
            "server",
            "--backend-uri",
            url_db,
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--no-ui",
        ],
        env=env,
    )
    try:
        wait_http(url + "/healthz", proc)
        print(
            f"labledger server: {args.workers} worker(s) on PostgreSQL; {args.clients} clients x {batches} "
            f"batches x {keys * steps} points ({keys} keys x {steps} steps)"
        )
        rates = [ll_ingest(url, args.clients, batches, keys, steps, spool) for _ in range(reps)]
        rate = statistics.median(rates)
        print(
            f"ingest: median {rate:,.0f} points/s aggregate (runs: {', '.join(f'{r:,.0f}' for r in rates)}) "
            f"[target >= 200,000]"
        )
        lat = sorted(ll_latency(url, lat_n, spool))
        p50, p95 = statistics.median(lat), lat[int(len(lat) * 0.95) - 1]
        print(
            f"1,000-point batch latency: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms over {len(lat)} "
            f"batches [target p50 <= 20 ms]"
        )
    finally:
        proc.terminate()
        proc.wait(30)
        drop_db(args.pg, name)
        shutil.rmtree(spool, ignore_errors=True)
    mlflow_half(args.pg, args.clients, batches, keys, steps, rate)


if __name__ == "__main__":
    main()
