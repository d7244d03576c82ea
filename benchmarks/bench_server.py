"""Tracking-server benchmark: aggregate ingest through one server on PostgreSQL, batch latency,
and the same work against ``mlflow server`` (the peer comparison).

    python benchmarks/bench_server.py [--quick] [--clients 10] [--workers 1] [--pg URL]
                                      [--batches N] [--mlflow-python PATH] [--mlflow-max-s S]
                                      [--replicas 1,2,4]

``--replicas`` starts that many server processes (each with ``--workers``) on one
PostgreSQL database and spreads the clients over them round-robin; with a list
(``1,2,4``) the labledger half runs once per count. Each figure is printed with points/s
per server process and per core of this machine (``os.cpu_count()``): clients, servers
and PostgreSQL all share those cores, so on a small machine more replicas mostly measure
the contention.

Prints median figures. Targets (issue 5): >= 200,000 points/s aggregate with 10 client
processes, p50 latency of a 1,000-point batch <= 20 ms.

The MLflow half runs MLflow's own client against ``mlflow server`` with the same number of
workers (default 1) on the same PostgreSQL (a fresh database per side, dropped afterwards).
mlflow is NOT a labledger dependency: it lives in a separate venv, ``.venv-peers``, created
by ``make bench-peers`` (pins in benchmarks/peers-constraints.txt). Without it (or
``--mlflow-python PATH``, an interpreter that can import mlflow and psycopg2) the MLflow half
is skipped, saying so.
MLflow runs are capped by time (``--mlflow-max-s`` per repetition); when the cap is hit,
points/s is computed from the points actually sent in that time, and the script says so.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
MLFLOW_BATCH_LIMIT = 1000  # MLflow rejects more than 1,000 metrics in one log_batch call
WORKER_FLAG = "--mlflow-worker"  # internal: this script run by the peers interpreter


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


def count_rows(url: str, table: str) -> int:
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.connect() as c:
        n = int(c.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one())
    eng.dispose()
    return n


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def aggregate(results: list[tuple[int, float, float]]) -> float:
    """points/s from (points, start, end) per client: all points over the wall time from the
    first client's start to the last client's end (clients start together at a barrier)."""
    total = sum(r[0] for r in results)
    wall = max(r[2] for r in results) - min(r[1] for r in results)
    return total / wall


# -- labledger ---------------------------------------------------------------------------


def _ll_client(
    url: str,
    batches: int,
    keys: int,
    steps: int,
    spool: str,
    barrier: Any,
    q: mp.Queue,  # type: ignore[type-arg]
) -> None:
    import numpy as np

    from labledger.remote.http import HttpStore
    from labledger.store import Batch

    store = HttpStore(url, spool_dir=spool)
    rid = uuid.uuid4().hex
    store.create_run({"id": rid, "project": "bench", "name": rid[:8], "created_at": time.time()})
    rng = np.random.default_rng()
    payloads = []
    for b in range(batches):
        st = np.arange(b * steps, (b + 1) * steps, dtype=np.int64)
        ts = np.full(steps, time.time())
        payloads.append({f"k{k}": (st, rng.standard_normal(steps), ts) for k in range(keys)})
    barrier.wait()
    t0 = time.time()
    failed = 0
    for m in payloads:
        try:
            store.write_batch(Batch(run_id=rid, metrics=m, heartbeat=time.time()))
        except Exception:  # the store raises; a benchmark keeps no outbox
            failed += 1
    q.put((batches * keys * steps, t0, time.time(), failed))
    store.close()


def ll_ingest(
    urls: list[str], clients: int, batches: int, keys: int, steps: int, spool: str
) -> float:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    barrier = ctx.Barrier(clients)
    procs = [
        ctx.Process(
            target=_ll_client,
            args=(urls[i % len(urls)], batches, keys, steps, spool, barrier, q),
        )
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    results = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    spooled = sum(r[3] for r in results)
    if spooled:
        print(f"  warning: {spooled} batches failed (server overloaded or down)")
    return aggregate([(r[0], r[1], r[2]) for r in results])


def ll_latency(url: str, n: int, spool: str) -> list[float]:
    import numpy as np

    from labledger.remote.http import HttpStore
    from labledger.store import Batch

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


def _start_server(url_db: str, workers: int) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
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
            str(workers),
            "--log-level",
            "warning",
            "--no-ui",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", proc)
    except BaseException:
        stop(proc)
        raise
    return url, proc


def labledger_half(
    args: argparse.Namespace, batches: int, keys: int, steps: int, replicas: int = 1
) -> dict[str, Any]:
    if args.database:  # an existing database, kept (its runs accumulate)
        url_db, name = args.database, ""
    else:
        url_db, name = create_db(args.pg, "bench_ll")
    spool = tempfile.mkdtemp(prefix="ll-spool-")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        urls = []
        for _ in range(replicas):  # one after the other: the first one migrates the database
            url, proc = _start_server(url_db, args.workers)
            urls.append(url)
            procs.append(proc)
        print(
            f"labledger server: {replicas} replica(s) x {args.workers} worker(s) on one "
            f"PostgreSQL; {args.clients} clients x {batches} batches x {keys * steps} points "
            f"({keys} keys x {steps} steps); {load()}"
        )
        rates = [
            ll_ingest(urls, args.clients, batches, keys, steps, spool) for _ in range(args.reps)
        ]
        rate = statistics.median(rates)
        cores = os.cpu_count() or 1
        print(
            f"  ingest: median {rate:,.0f} points/s aggregate "
            f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}) [target >= 200,000]; "
            f"{rate / (replicas * args.workers):,.0f} per server process, "
            f"{rate / cores:,.0f} per core ({cores} cores); {load()}"
        )
        lat = sorted(ll_latency(urls[0], args.latency_n, spool))
        p50, p95 = statistics.median(lat), lat[max(int(len(lat) * 0.95) - 1, 0)]
        print(
            f"  1,000-point batch latency: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms over "
            f"{len(lat)} batches [target p50 <= 20 ms]"
        )
    finally:
        for proc in procs:
            stop(proc)
        if name:
            drop_db(args.pg, name)
        shutil.rmtree(spool, ignore_errors=True)
    return {"rate": rate, "p50": p50, "p95": p95, "replicas": replicas, "per_core": rate / cores}


# -- mlflow (this part runs under the peers interpreter, which has mlflow) ------------------


def _mlflow_client(
    url: str,
    exp_id: str,
    batches: int,
    keys: int,
    steps: int,
    max_s: float,
    barrier: Any,
    q: mp.Queue,  # type: ignore[type-arg]
) -> None:
    from mlflow.entities import Metric  # type: ignore[import-not-found,unused-ignore]
    from mlflow.tracking import MlflowClient  # type: ignore[import-not-found,unused-ignore]

    client = MlflowClient(tracking_uri=url)
    rid = client.create_run(exp_id).info.run_id
    # the same payload as a labledger batch (keys x steps points), pre-built like it, then
    # sent in log_batch calls of at most 1,000 metrics (MLflow's limit)
    payloads = []
    for b in range(batches):
        ts = int(time.time() * 1000)
        metrics = [
            Metric(f"k{k}", random.gauss(0.0, 1.0), ts, b * steps + i)
            for k in range(keys)
            for i in range(steps)
        ]
        payloads.append(
            [
                metrics[i : i + MLFLOW_BATCH_LIMIT]
                for i in range(0, len(metrics), MLFLOW_BATCH_LIMIT)
            ]
        )
    barrier.wait()
    t0 = time.time()
    deadline = t0 + max_s
    sent = 0
    for chunks in payloads:
        if time.time() >= deadline:
            break
        for chunk in chunks:
            client.log_batch(rid, metrics=chunk)
            sent += len(chunk)
    q.put((sent, t0, time.time()))


def _mlflow_ingest(
    url: str, exp_id: str, clients: int, batches: int, keys: int, steps: int, max_s: float
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    barrier = ctx.Barrier(clients)
    procs = [
        ctx.Process(
            target=_mlflow_client, args=(url, exp_id, batches, keys, steps, max_s, barrier, q)
        )
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    # a client stops starting batches after max_s; allow for a slow last batch and start-up
    results = [q.get(timeout=max_s + 600) for _ in procs]
    for p in procs:
        p.join()
    sent = sum(r[0] for r in results)
    return {
        "rate": aggregate(results),
        "sent": sent,
        "planned": clients * batches * keys * steps,
        "wall": max(r[2] for r in results) - min(r[1] for r in results),
    }


def _mlflow_latency(url: str, exp_id: str, n: int, max_s: float) -> list[float]:
    from mlflow.entities import Metric  # type: ignore[import-not-found,unused-ignore]
    from mlflow.tracking import MlflowClient  # type: ignore[import-not-found,unused-ignore]

    client = MlflowClient(tracking_uri=url)
    rid = client.create_run(exp_id, run_name="latency").info.run_id
    lat = []
    deadline = time.monotonic() + max_s
    for b in range(n + 5):
        if b > 5 and time.monotonic() >= deadline:
            break
        ts = int(time.time() * 1000)
        metrics = [Metric("loss", random.gauss(0.0, 1.0), ts, b * 1000 + i) for i in range(1000)]
        t0 = time.perf_counter()
        client.log_batch(rid, metrics=metrics)
        if b >= 5:  # warm-up, as on the labledger side
            lat.append(time.perf_counter() - t0)
    return lat


def mlflow_worker(cfg: dict[str, Any]) -> None:
    """Entry point under the peers interpreter: run every MLflow measurement, write JSON."""
    from mlflow.tracking import MlflowClient  # type: ignore[import-not-found,unused-ignore]

    exp_id = MlflowClient(tracking_uri=cfg["url"]).create_experiment("bench")
    ingest = [
        _mlflow_ingest(
            cfg["url"],
            exp_id,
            cfg["clients"],
            cfg["batches"],
            cfg["keys"],
            cfg["steps"],
            cfg["max_s"],
        )
        for _ in range(cfg["reps"])
    ]
    lat = _mlflow_latency(cfg["url"], exp_id, cfg["latency_n"], cfg["max_s"])
    Path(cfg["out"]).write_text(json.dumps({"ingest": ingest, "latency": lat}))


# -- mlflow (orchestration, under our own interpreter) --------------------------------------


def find_mlflow_python(explicit: str | None) -> tuple[Path | None, str]:
    """The interpreter to run MLflow with, or None and why not."""
    if explicit:
        candidates = [Path(explicit)]
    elif PEERS_PYTHON.exists():
        candidates = [PEERS_PYTHON]
    else:
        candidates = [Path(sys.executable)]  # only if someone installed mlflow right here
    py = candidates[0]
    if not py.exists():
        return None, f"{py} does not exist"
    probe = subprocess.run(
        [str(py), "-c", "import mlflow, psycopg2; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        env=peer_env(),
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        if explicit is None and py == Path(sys.executable):
            return None, "mlflow is not installed (it is not a labledger dependency)"
        return None, f"{py} cannot import mlflow and psycopg2 ({last})"
    return py, probe.stdout.strip()


def peer_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # no network here, and none wanted: no telemetry, no tracking-URI surprises
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def mlflow_half(
    args: argparse.Namespace, batches: int, keys: int, steps: int, ll: dict[str, Any] | None
) -> None:
    py, info = find_mlflow_python(args.mlflow_python)
    if py is None:
        print(
            f"mlflow: skipping the MLflow half: {info}. To enable it run `make bench-peers` "
            "(creates .venv-peers with the pinned mlflow of benchmarks/peers-constraints.txt), "
            "or pass --mlflow-python PATH."
        )
        return
    version = info
    mlflow_script = py.parent / "mlflow"
    cmd = [str(mlflow_script)] if mlflow_script.exists() else [str(py), "-m", "mlflow"]
    url_db, name = create_db(args.pg, "bench_mlflow")
    # explicit driver: SQLAlchemy 2.1 (which this mlflow pulls in) maps a bare postgresql://
    # to psycopg 3, but the peers venv has psycopg2, MLflow's documented PostgreSQL driver
    backend = "postgresql+psycopg2://" + url_db.split("://", 1)[1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tmp = tempfile.mkdtemp(prefix="mlflow-bench-")
    log_path = Path(tmp) / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                *cmd,
                "server",
                "--backend-store-uri",
                backend,
                "--default-artifact-root",
                str(Path(tmp) / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),  # the same number as the labledger server (default 1)
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=peer_env(),
            cwd=tmp,
        )
    try:
        try:
            wait_http(url + "/health", proc, timeout=180)  # it runs its migrations first
        except SystemExit:
            print(log_path.read_text(errors="replace")[-3000:])
            raise
        print(
            f"mlflow {version} server: {args.workers} worker(s) on PostgreSQL (psycopg2); "
            f"same workload through "
            f"MlflowClient.log_batch ({MLFLOW_BATCH_LIMIT} metrics per call), capped at "
            f"{args.mlflow_max_s:g} s per repetition; {load()}"
        )
        out = Path(tmp) / "result.json"
        cfg = {
            "url": url,
            "clients": args.clients,
            "batches": batches,
            "keys": keys,
            "steps": steps,
            "reps": args.reps,
            "latency_n": args.latency_n,
            "max_s": args.mlflow_max_s,
            "out": str(out),
        }
        subprocess.run(
            [str(py), str(Path(__file__).resolve()), WORKER_FLAG, json.dumps(cfg)],
            check=True,
            env=peer_env(),
        )
        res = json.loads(out.read_text())
        # sanity check that MLflow stored what its client sent (log_batch is synchronous)
        sent = sum(r["sent"] for r in res["ingest"]) + 1000 * (len(res["latency"]) + 5)
        stored = count_rows(url_db, "metrics")
    finally:
        stop(proc)
        drop_db(args.pg, name)
        shutil.rmtree(tmp, ignore_errors=True)

    runs = res["ingest"]
    rate = statistics.median(r["rate"] for r in runs)
    each = ", ".join(f"{r['rate']:,.0f}" for r in runs)
    print(f"  ingest: median {rate:,.0f} points/s aggregate (runs: {each})")
    capped = [r for r in runs if r["sent"] < r["planned"]]
    if capped:
        r = capped[0]
        print(
            f"  capped: {len(capped)} of {len(runs)} repetitions hit the "
            f"{args.mlflow_max_s:g} s cap (e.g. {r['sent']:,} of {r['planned']:,} points sent "
            f"in {r['wall']:.1f} s); points/s is from the points actually sent, so the whole "
            f"workload would take about {r['planned'] / rate:,.0f} s"
        )
    lat = sorted(res["latency"])
    p50, p95 = statistics.median(lat), lat[max(int(len(lat) * 0.95) - 1, 0)]
    short = ""
    if len(lat) < args.latency_n:
        short = f" (time cap hit: {len(lat)} of {args.latency_n})"
    print(
        f"  1,000-point batch latency: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms over "
        f"{len(lat)} batches{short}"
    )
    if stored != sent:
        print(f"  warning: mlflow's metrics table holds {stored:,} rows, {sent:,} were sent")
    else:
        print(f"  checked: mlflow's metrics table holds all {stored:,} points sent")
    if ll is not None:
        print(
            f"ratio labledger / mlflow: ingest points/s {ll['rate'] / rate:.1f}x; "
            f"1,000-point batch p50 latency {ll['p50'] / p50:.3f}x "
            f"(mlflow takes {p50 / ll['p50']:.1f}x as long)"
        )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == WORKER_FLAG:
        mlflow_worker(json.loads(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server worker processes, the same for labledger and mlflow (default 1)",
    )
    ap.add_argument(
        "--batches",
        type=int,
        default=None,
        help="batches per client (of 5 keys x 1,000 steps); default 40, 10 with --quick",
    )
    ap.add_argument(
        "--pg",
        default=os.environ.get(
            "LABLEDGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    ap.add_argument(
        "--mlflow-python",
        default=None,
        metavar="PATH",
        help=f"interpreter with mlflow and psycopg2 (default: {PEERS_PYTHON.relative_to(ROOT)})",
    )
    ap.add_argument(
        "--mlflow-max-s",
        type=float,
        default=None,
        help="cap on each MLflow repetition and on its latency run, seconds (default 60, 20 quick)",
    )
    ap.add_argument(
        "--replicas",
        default="1",
        help="server processes on one database, or a list to run in turn (1,2,4); default 1",
    )
    ap.add_argument(
        "--database",
        default=None,
        metavar="URL",
        help="labledger half: use this existing database (kept) instead of a fresh one",
    )
    ap.add_argument("--skip-labledger", action="store_true", help="run only the MLflow half")
    ap.add_argument("--skip-mlflow", action="store_true", help="run only the labledger half")
    args = ap.parse_args()
    args.reps = 1 if args.quick else 3
    args.latency_n = 50 if args.quick else 300
    if args.mlflow_max_s is None:
        args.mlflow_max_s = 20.0 if args.quick else 60.0
    keys, steps = 5, 1000
    batches = args.batches if args.batches is not None else (10 if args.quick else 40)

    ll = None
    if not args.skip_labledger:
        for replicas in [int(r) for r in str(args.replicas).split(",")]:
            ll = labledger_half(args, batches, keys, steps, replicas)
    if args.skip_mlflow:
        print("mlflow: skipped (--skip-mlflow)")
    else:
        mlflow_half(args, batches, keys, steps, ll)


if __name__ == "__main__":
    main()
