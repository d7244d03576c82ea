"""MLflow compatibility: the unchanged mlflow client against labledger server vs mlflow server,
and the speed of ``labledger import mlflow``.

    .venv/bin/python benchmarks/bench_mlflow.py [--pg URL] [--reps 3] [--points 100000]
                                                [--runs 1000] [--skip-ingest] [--skip-import]

1. Ingest: ``MlflowClient.log_batch`` with ``--points`` metric values (10 keys; the client
   splits them into requests of 1,000) into one run, once against ``labledger server`` and
   once against ``mlflow server`` (the mlflow of this venv), each on its own fresh database
   of the same PostgreSQL (``--pg``, default LABLEDGER_TEST_POSTGRES_URL), one worker each.
   Prints the median seconds of each and the ratio.
2. Import: an MLflow SQLite store of ``--runs`` runs (params, 100 points each, tags) made
   with mlflow's own store, then ``import_mlflow`` into a fresh labledger SQLite store;
   prints the median runs/s and points/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import create_db, drop_db, free_port, load, stop, wait_http  # noqa: E402

KEYS = 10


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABLEDGER_", "MLFLOW_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["LABLEDGER_CONSOLE"] = "off"
    return env


def start_labledger(db: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (tmp / "labledger.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "labledger.cli", "server", "--backend-uri", db,
         "--artifacts-uri", str(tmp / "blobs"), "--port", str(port), "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT, env=_env(),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc)
    return proc, url


def start_mlflow(db: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    backend = "postgresql+psycopg://" + db.split("://", 1)[1]
    log = (tmp / "mlflow.log").open("wb")
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    cmd = [str(mlflow_bin)] if mlflow_bin.exists() else [sys.executable, "-m", "mlflow"]
    proc = subprocess.Popen(
        [*cmd, "server", "--backend-store-uri", backend, "--default-artifact-root",
         str(tmp / "mlflow-artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=tmp,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", proc, timeout=180)
    return proc, url


def ingest_once(url: str, points: int) -> float:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    exp = client.create_experiment(f"bench-{time.time_ns()}")
    run = client.create_run(exp)
    t0 = int(time.time() * 1000)
    steps = points // KEYS
    metrics = [
        Metric(f"m{k}", float(s) * 0.5 + k, t0 + s, s) for s in range(steps) for k in range(KEYS)
    ]
    start = time.perf_counter()
    client.log_batch(run.info.run_id, metrics=metrics)  # split by the client: 1,000 per request
    client.set_terminated(run.info.run_id)
    took = time.perf_counter() - start
    got = client.get_metric_history(run.info.run_id, "m0")
    assert len(got) == steps, (len(got), steps)
    return took


def bench_ingest(pg: str, reps: int, points: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    ll_db, ll_name = create_db(pg, "bench_ll_mlflow")
    ml_db, ml_name = create_db(pg, "bench_mlflow_srv")
    ll_proc, ll_url = start_labledger(ll_db, tmp)
    ml_proc, ml_url = start_mlflow(ml_db, tmp)
    try:
        print(f"ingest: {points} metric values through MlflowClient.log_batch; {load()}")
        ll, ml = [], []
        for rep in range(reps):  # alternate, so load drifts hit both sides alike
            ll.append(ingest_once(ll_url, points))
            ml.append(ingest_once(ml_url, points))
            print(f"  rep {rep + 1}: labledger {ll[-1]:.2f} s, mlflow {ml[-1]:.2f} s", flush=True)
        a, b = statistics.median(ll), statistics.median(ml)
        print(
            f"  labledger server: median {a:.2f} s ({points / a:,.0f} values/s)  {[round(x, 2) for x in ll]}"
        )
        print(
            f"  mlflow server:    median {b:.2f} s ({points / b:,.0f} values/s)  {[round(x, 2) for x in ml]}"
        )
        print(f"  ratio: labledger is {b / a:.1f}x the speed of mlflow server on this workload")
    finally:
        stop(ll_proc)
        stop(ml_proc)
        drop_db(pg, ll_name)
        drop_db(pg, ml_name)


def make_mlflow_store(path: Path, runs: int) -> int:
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{path}")
    exp = client.create_experiment("imported")
    t0 = 1_700_000_000_000
    points = 0
    for i in range(runs):
        run = client.create_run(exp, start_time=t0 + i, tags={"mlflow.user": "bench"})
        metrics = [
            Metric(k, float(s) / (i + 1), t0 + s, s) for s in range(50) for k in ("loss", "acc")
        ]
        client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[
                Param("lr", str(10 ** -(i % 5))),
                Param("layers", str(i % 7)),
                Param("opt", "adam"),
            ],
            tags=[RunTag("seed", str(i))],
        )
        client.set_terminated(run.info.run_id, end_time=t0 + i + 1000)
        points += len(metrics)
    return points


def bench_import(runs: int, reps: int) -> None:
    from labledger.importers import import_mlflow

    tmp = Path(tempfile.mkdtemp(prefix="bench-mlflow-import-"))
    src = tmp / "mlflow.db"
    t = time.perf_counter()
    points = make_mlflow_store(src, runs)
    print(
        f"import: MLflow SQLite store of {runs} runs, {points} points (made in {time.perf_counter() - t:.0f} s); {load()}"
    )
    rates, prates = [], []
    for r in range(reps):
        target = f"sqlite:///{tmp / f'target{r}.db'}"
        summary = import_mlflow(src, target, artifacts=False)
        assert summary.runs == runs and not summary.errors, summary
        rates.append(runs / summary.seconds)
        prates.append(summary.points / summary.seconds)
        print(f"  rep {r + 1}: {summary.seconds:.1f} s", flush=True)
    print(f"  runs/s: median {statistics.median(rates):.1f}  {[round(x, 1) for x in rates]}")
    print(f"  points/s: median {statistics.median(prates):,.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pg", default=os.environ.get("LABLEDGER_TEST_POSTGRES_URL"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-import", action="store_true")
    args = ap.parse_args()
    try:
        import mlflow  # noqa: F401
    except ImportError:
        print("mlflow: skipped (install the extra: pip install 'labledger[mlflow]')")
        return
    if not args.skip_ingest:
        if not args.pg:
            print("ingest: skipped (no --pg and LABLEDGER_TEST_POSTGRES_URL is unset)")
        else:
            bench_ingest(args.pg, args.reps, args.points)
    if not args.skip_import:
        bench_import(args.runs, args.reps)


if __name__ == "__main__":
    main()
