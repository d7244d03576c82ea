"""Benchmarks for ``labledger repro`` (issue 8).

    .venv/bin/python benchmarks/bench_repro.py             # 5 repeats
    .venv/bin/python benchmarks/bench_repro.py --repeat 3

Builds a throwaway git repository with a seeded numpy script (committed + an
uncommitted edit), records one run, then prints medians of:
- the plan (``--dry-run`` in-process: store read, git probe, data fingerprint, drift
  against the current environment);
- a full in-process ``reproduce()`` (worktree checkout + patch, re-run in a
  subprocess, comparison, stored verdict, checkout removed), minus nothing: wall time;
- ``compare_summaries`` over 10,000 metrics.
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

SCRIPT = """\
import numpy as np
import labledger
run = labledger.init()
seed = labledger.seed_everything(7)
rng = np.random.default_rng(seed)
w = rng.normal(size=8)
for i in range(100):
    run.log({"loss": float(np.sum(w ** 2) / (i + 1))})
"""


def _median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from labledger.repro import compare_summaries, plan_repro, reproduce
    from labledger.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        repo = t / "repo"
        repo.mkdir()
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "b",
            "GIT_AUTHOR_EMAIL": "b@b",
            "GIT_COMMITTER_NAME": "b",
            "GIT_COMMITTER_EMAIL": "b@b",
            "LABLEDGER_CONSOLE": "off",
        }
        uri = f"sqlite:///{t / 'store' / 'l.db'}"
        env["LABLEDGER_URI"] = uri
        (repo / "train.py").write_text(SCRIPT)
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        subprocess.run(["git", "add", "train.py"], cwd=repo, check=True)
        subprocess.run(["git", "commit", "-qm", "x"], cwd=repo, env=env, check=True)
        (repo / "train.py").write_text(SCRIPT.replace("range(100)", "range(120)"))
        subprocess.run([sys.executable, "train.py"], cwd=repo, env=env, check=True)
        os.environ["LABLEDGER_CONSOLE"] = "off"
        store = open_store(uri)
        run_id = store.list_runs(limit=1)[0]["id"]

        plans = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            plan_repro(store, run_id)
            plans.append(time.perf_counter() - t0)
        full = []
        verdicts = set()
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = reproduce(store, run_id, stdout=subprocess.DEVNULL)
            full.append(time.perf_counter() - t0)
            verdicts.add(res.verdict)
        a = {f"m{i}": float(i) for i in range(10_000)}
        b = {f"m{i}": float(i) * (1 + 1e-9) for i in range(10_000)}
        cmp_ = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            compare_summaries(a, b, tolerance=1e-6)
            cmp_.append(time.perf_counter() - t0)
        store.close()
    print(f"plan (dry run, drift vs current env): median {_median_ms(plans)} over {args.repeat}")
    print(
        f"full reproduce (checkout+patch, re-run, verdict): median {_median_ms(full)} over {args.repeat}; "
        f"verdicts {sorted(verdicts)}"
    )
    print(f"compare_summaries, 10,000 metrics: median {_median_ms(cmp_)}")


if __name__ == "__main__":
    main()
