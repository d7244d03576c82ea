"""Core tracking benchmarks, printed as medians, in the configuration users get.

    python benchmarks/bench_core.py                 # full size (1,000,000 points)
    python benchmarks/bench_core.py --quick         # 100,000 points, fewer repeats
    python benchmarks/bench_core.py --capture-off   # the same with LABLEDGER_CAPTURE=off

By default capture and system metrics are ON (what `labledger.init()` does when
nothing is configured): the capture thread and the system sampler run while the
figures are taken. Each measurement that needs a clean process (import, memory, the
1M-point write, the tiny tracked script) runs in its own interpreter. Stores live in
a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")},
    "PYTHONPATH": str(ROOT / "src"),
    "LABLEDGER_CONSOLE": "off",  # no terminal panel: output is captured
}

TARGETS = {
    "import": 0.080,
    "tiny_script_over_bare_s": 0.250,
    "init_first": 0.020,
    "init_new": 0.050,
    "init_existing": 0.050,
    "log_1key_us": 1.0,
    "log_10keys_us": 3.0,
    "write_1m_s": 1.5,
    "kill_visible_s": 0.100,
    "kill_lost_s": 0.200,
    "peak_rss_mb": 200.0,
    "read_full_s": 0.5,
    "read_1000_s": 0.050,
}


def _python_startup(code: str, repeats: int) -> float:
    """Median wall time of ``python -c code`` in a fresh interpreter."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=ENV, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


TINY = """
import labledger
run = labledger.init("tiny", config={"lr": 0.001, "batch": 32})
for i in range(100):
    run.log({"loss": 1.0 / (i + 1)})
run.finish()
"""


def bench_tiny_script(tmp: str, repeats: int) -> float:
    """Median wall time of ``python train.py`` (import, init, 100 logs, finish) in a git repo."""
    repo = Path(tmp) / "tiny"
    repo.mkdir()
    (repo / "train.py").write_text(textwrap.dedent(TINY))
    git = ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "train.py"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "tiny"], cwd=repo, check=True)
    times = []
    for _ in range(repeats + 1):  # the first run creates the store: not counted
        t = time.perf_counter()
        subprocess.run([sys.executable, "train.py"], env=ENV, cwd=repo, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


KILLED = """
import sys, time, labledger
run = labledger.init("killed", store=sys.argv[1])
print("ready", run.id, flush=True)
log = run.log
while True:
    log({"t": time.time()})
"""


def bench_kill_loss(tmp: str, repeats: int) -> tuple[float, float]:
    """SIGKILL a logging process 1 s after init(); (median s of points lost, init->visible s).

    Lost = kill time minus the newest stored point's value (each point logs time.time()).
    """
    import signal
    import sqlite3

    lost, visible = [], []
    for i in range(repeats):
        db = Path(tmp) / f"killed{i}" / "ledger.db"
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(KILLED), f"sqlite:///{db}"],
            env=ENV,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        t_ready = time.time()
        run_id = line.split()[1]
        while True:  # the file (and the run) may come later: the writer thread's job
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
                if con.execute("select 1 from runs where id = ?", (run_id,)).fetchone():
                    break
                con.close()
            except sqlite3.OperationalError:
                pass
            time.sleep(0.001)
        visible.append(time.time() - t_ready)
        time.sleep(1.0)
        t_kill = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        from array import array

        newest = 0.0
        for (vals,) in con.execute(
            "select vals from metric_chunks where run_id = ? and key = 't'", (run_id,)
        ):
            a = array("d")
            a.frombytes(vals)
            newest = max(newest, max(a))
        con.close()
        lost.append(t_kill - newest)
    return statistics.median(lost), statistics.median(visible)


def bench_import(repeats: int) -> float:
    return _python_startup("import labledger", repeats)


def bench_bare_python(repeats: int) -> float:
    return _python_startup("pass", repeats)


INIT = """
import json, os, statistics, sys, threading, time
main = threading.get_ident()
heavy_on_main = []
def audit(event, args):
    if event == "import" and threading.get_ident() == main and args[0].split(".")[0] in ("sqlalchemy", "alembic", "numpy"):
        heavy_on_main.append(args[0])
import labledger
sys.addaudithook(audit)
tmp = sys.argv[1]
repeats = int(sys.argv[2])
new, existing = [], []
for i in range(repeats):
    t = time.perf_counter()
    run = labledger.init("bench", store=f"sqlite:///{tmp}/new{i}/ledger.db")
    new.append(time.perf_counter() - t)
    run.finish()
for i in range(repeats):
    t = time.perf_counter()
    run = labledger.init("bench", store=f"sqlite:///{tmp}/new0/ledger.db")
    existing.append(time.perf_counter() - t)
    run.finish()
print(json.dumps({"init_new": statistics.median(new), "init_existing": statistics.median(existing),
                  "heavy_imports_on_calling_thread": len(heavy_on_main)}))
"""

FIRST = """
import sys, time, labledger
t = time.perf_counter()
run = labledger.init("bench", store=f"sqlite:///{sys.argv[1]}/ledger.db")
print(time.perf_counter() - t)
run.finish()
"""


def bench_first_init(tmp: str, repeats: int) -> float:
    """Median over fresh processes of the first ``init()`` (new store, default config)."""
    times = []
    for i in range(repeats):
        where = Path(tmp) / f"first{i}"
        where.mkdir()
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(FIRST), str(where)],
            env=ENV,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        times.append(float(proc.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


LOG = """
import json, statistics, sys, time, labledger
tmp, n = sys.argv[1], int(sys.argv[2])
run = labledger.init("bench", store=f"sqlite:///{tmp}/log/ledger.db")
run.flush()
block = 10_000
out = {}
for label, make in (("log_1key_us", lambda v: {"loss": v}),
                    ("log_10keys_us", lambda v: {f"k{j}": v for j in range(10)})):
    payloads = [make(float(i)) for i in range(block)]  # built outside the timed loop
    per_call = []
    log = run.log
    for _ in range(n // block):
        t = time.perf_counter()
        for d in payloads:
            log(d)
        per_call.append((time.perf_counter() - t) / block * 1e6)
    out[label] = statistics.median(per_call)
    run.flush()
run.finish()
print(json.dumps(out))
"""

WRITE = """
import json, resource, sys, time, labledger
tmp, n = sys.argv[1], int(sys.argv[2])
run = labledger.init("bench", store=f"sqlite:///{tmp}/write/ledger.db")
run.flush()  # the store is open: time logging and writing, not SQLAlchemy's import
t = time.perf_counter()
log = run.log
for i in range(n):
    log({"loss": i * 1e-6})
logged = time.perf_counter() - t
run.finish()
total = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
led = labledger.Ledger(f"sqlite:///{tmp}/write/ledger.db")
assert len(led.history(run.id, "loss")) == n
print(json.dumps({"write_1m_s": total, "log_part_s": logged, "peak_rss_mb": rss}))
"""

READ = """
import json, statistics, sys, time
import numpy as np
import labledger
from labledger.store import Batch, open_store
tmp, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
uri = f"sqlite:///{tmp}/read/ledger.db"
store = open_store(uri)
store.create_run({"id": "f" * 32, "project": "bench", "name": "read"})
vals = np.random.default_rng(0).normal(size=n)
store.write_batch(Batch("f" * 32, {"loss": (np.arange(n), vals, np.zeros(n))}))
store.close()
led = labledger.Ledger(uri)
full, small = [], []
for _ in range(repeats):
    t = time.perf_counter(); h = led.history("f" * 32, "loss"); full.append(time.perf_counter() - t)
    assert len(h) == n
    t = time.perf_counter(); h = led.history("f" * 32, "loss", max_points=1000); small.append(time.perf_counter() - t)
    assert len(h) <= 1000
print(json.dumps({"read_full_s": statistics.median(full), "read_1000_s": statistics.median(small)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="100k points and fewer repeats")
    ap.add_argument(
        "--capture-off", action="store_true", help="LABLEDGER_CAPTURE=off (not the default)"
    )
    args = ap.parse_args()
    if args.capture_off:
        ENV["LABLEDGER_CAPTURE"] = "off"
    n = 100_000 if args.quick else 1_000_000
    repeats = 5 if args.quick else 20
    results: dict[str, float] = {}
    # byte-compile src/ as `pip install` does (PYTHONDONTWRITEBYTECODE would otherwise
    # make every child interpreter compile changed modules from source)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True, env=ENV
    )
    with tempfile.TemporaryDirectory(prefix="labledger-bench-") as tmp:
        bare = bench_bare_python(repeats)
        results["import"] = bench_import(repeats)
        results["tiny_script_over_bare_s"] = bench_tiny_script(tmp, max(5, repeats // 2)) - bare
        results["kill_lost_s"], results["kill_visible_s"] = bench_kill_loss(tmp, 5)
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(INIT), tmp, str(repeats)],
            env=ENV,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        init = json.loads(proc.stdout.strip().splitlines()[-1])
        results.update({k: init[k] for k in ("init_new", "init_existing")})
        results["init_first"] = bench_first_init(tmp, max(5, repeats // 2))
        for code, argv in (
            (LOG, [tmp, str(n)]),
            (WRITE, [tmp, str(n)]),
            (READ, [tmp, str(n), str(max(3, repeats // 4))]),
        ):
            proc = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(code), *argv],
                env=ENV,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            results.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    scale = f"{n:,} points" + (" (--quick)" if args.quick else "")
    mode = (
        "capture OFF" if args.capture_off else "default configuration (capture + system metrics on)"
    )
    print(
        f"labledger core benchmarks, {mode}, {scale}, medians; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    rows = [
        (
            "tiny_script_over_bare_s",
            "python train.py (init, 100 logs) - python -c pass",
            results["tiny_script_over_bare_s"] * 1e3,
            "ms",
            TARGETS["tiny_script_over_bare_s"] * 1e3,
        ),
        (
            "init_first",
            "first init() of a fresh process (new store)",
            results["init_first"] * 1e3,
            "ms",
            TARGETS["init_first"] * 1e3,
        ),
        (
            "import",
            "python -c 'import labledger' (whole process)",
            results["import"] * 1e3,
            "ms",
            TARGETS["import"] * 1e3,
        ),
        (
            "init_new",
            "init() on a new store",
            results["init_new"] * 1e3,
            "ms",
            TARGETS["init_new"] * 1e3,
        ),
        (
            "init_existing",
            "init() on an existing store",
            results["init_existing"] * 1e3,
            "ms",
            TARGETS["init_existing"] * 1e3,
        ),
        (
            "log_1key_us",
            "run.log({'loss': v}) per call",
            results["log_1key_us"],
            "us",
            TARGETS["log_1key_us"],
        ),
        (
            "log_10keys_us",
            "run.log(10 keys) per call",
            results["log_10keys_us"],
            "us",
            TARGETS["log_10keys_us"],
        ),
        (
            "write_1m_s",
            f"log {n:,} points + finish() (durable)",
            results["write_1m_s"],
            "s",
            TARGETS["write_1m_s"],
        ),
        (
            "peak_rss_mb",
            "peak client RSS during the above",
            results["peak_rss_mb"],
            "MB",
            TARGETS["peak_rss_mb"],
        ),
        (
            "kill_visible_s",
            "run visible in the store after init() returned",
            results["kill_visible_s"] * 1e3,
            "ms",
            TARGETS["kill_visible_s"] * 1e3,
        ),
        (
            "kill_lost_s",
            "SIGKILL 1 s in: newest point lost by",
            results["kill_lost_s"] * 1e3,
            "ms",
            TARGETS["kill_lost_s"] * 1e3,
        ),
        (
            "read_full_s",
            f"read a {n:,}-point series",
            results["read_full_s"] * 1e3,
            "ms",
            TARGETS["read_full_s"] * 1e3,
        ),
        (
            "read_1000_s",
            "... downsampled to 1,000 points",
            results["read_1000_s"] * 1e3,
            "ms",
            TARGETS["read_1000_s"] * 1e3,
        ),
    ]
    for _key, label, value, unit, target in rows:
        ok = "ok" if value <= target else "OVER"
        print(f"  {label:<46} {value:9.2f} {unit:<3} (target <= {target:g} {unit}) {ok}")
    print(f"  {'(bare python -c pass, for reference)':<46} {bare * 1e3:9.2f} ms")
    print(
        f"  heavy imports on init()'s thread: {init['heavy_imports_on_calling_thread']} (sqlalchemy/alembic/numpy)"
    )


if __name__ == "__main__":
    main()
