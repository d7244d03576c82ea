"""Benchmarks for the web dashboard (issue 7), in headless Debian chromium.

    .venv/bin/python benchmarks/bench_ui.py            # 10,000 runs; 20 runs x 4 metrics x 100,000 steps
    .venv/bin/python benchmarks/bench_ui.py --quick    # 2,000 runs; 20 runs x 4 metrics x 10,000 steps
    .venv/bin/python benchmarks/bench_ui.py --runs 100000   # the table with 100,000 runs

Prints medians (wall time measured from the browser's side: a fresh page load of the
route until the page has rendered its data, i.e. ``main[data-loaded]`` plus the
benchmark's own condition):

- runs table: first page (50 rows, the default) of a project with N runs, with the
  total count; the same with 1,000 rows on the page; re-sorting by a summary metric;
- compare: 20 runs x 4 metrics x S steps, until all four charts hold 20 series.

Targets: runs table with 10,000 runs <= 1 s; compare 20 x 4 x 100,000 <= 1.5 s.

The runs are written with the store's own ``create_run``/``write_batch`` except the
bulk of the table benchmark's runs, which are inserted in one transaction through the
store's tables (creating 10,000 runs one by one, each its own fsynced transaction,
would take minutes and measures the writer, not the dashboard).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from _uihelpers import CHROMIUM, CHROMIUM_ARGS, start_ui  # noqa: E402


def populate_table(uri: str, n: int) -> None:
    import sqlalchemy as sa

    from labledger._values import encode_json
    from labledger.store import _schema as s
    from labledger.store import open_store

    store = open_store(uri)
    now = time.time()
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": uuid.uuid4().hex,
                "project": "table",
                "name": f"trial-{i:05d}",
                "status": "running" if i % 997 == 0 else ("failed" if i % 53 == 0 else "finished"),
                "created_at": now - i * 60,
                "ended_at": now - i * 60 + 300,
                "heartbeat_at": now,
                "updated_at": now,
                "host": "bench",
                "pid": None,
                "pid_start": None,
                "notes": None,
                "seed": i,
                "parent_run_id": None,
                "config": encode_json(
                    {
                        "lr": 10 ** -(1 + i % 4),
                        "layers": 2 + i % 6,
                        "dropout": (i % 5) / 10,
                        "optimizer": ["adam", "sgd", "adamw"][i % 3],
                        "batch_size": 32 << (i % 3),
                    }
                ),
                "summary": encode_json(
                    {
                        "val_acc": 0.5 + (i * 7919 % 1000) / 2000,
                        "val_loss": 1 - (i * 7919 % 1000) / 1500,
                    }
                ),
                "tags": encode_json(["bench"]),
                "env": encode_json({}),
                "datasets": encode_json([]),
            }
        )
    with store._tx() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.insert(s.projects).values(name="table", created_at=now, settings=None))
        for i in range(0, n, 1000):
            conn.execute(sa.insert(s.runs), rows[i : i + 1000])
    store.close()


def populate_compare(uri: str, runs: int, keys: int, steps: int) -> list[str]:
    import numpy as np

    from labledger.store import Batch, open_store

    store = open_store(uri)
    rng = np.random.default_rng(0)
    ids = []
    t0 = time.time()
    for r in range(runs):
        rid = uuid.uuid4().hex
        ids.append(rid)
        store.create_run(
            {
                "id": rid,
                "project": "compare",
                "name": f"run-{r:02d}",
                "status": "finished",
                "config": {"lr": 10 ** -(1 + r % 4), "layers": 2 + r % 5, "wd": r / 100},
            }
        )
        st = np.arange(steps, dtype=np.int64)
        ts = t0 + st * 0.01
        metrics = {}
        for k in range(keys):
            noise = rng.normal(0, 0.02, steps)
            metrics[f"metric_{k}"] = (st, np.exp(-st / (steps / (2 + r % 7))) + noise + k, ts)
        # write in slices, as a training loop's writer would
        for a in range(0, steps, 50_000):
            store.write_batch(
                Batch(
                    run_id=rid,
                    metrics={
                        k: (v[0][a : a + 50_000], v[1][a : a + 50_000], v[2][a : a + 50_000])
                        for k, v in metrics.items()
                    },
                )
            )
    store.close()
    return ids


def median_s(samples: list[float]) -> str:
    return f"{statistics.median(samples):.3f} s (min {min(samples):.3f}, n={len(samples)})"


def timed_load(page: Any, url: str, condition: str, timeout: float = 60) -> float:
    page.goto("about:blank")
    t = time.perf_counter()
    page.goto(url)
    deadline = t + timeout
    while not page.evaluate(condition):
        if time.perf_counter() > deadline:
            raise AssertionError(f"timed out on {url}: {condition}")
        page.wait_for_timeout(5)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--runs", type=int, default=None, help="runs in the table benchmark (default 10,000)"
    )
    args = ap.parse_args()
    n_runs = args.runs or (2_000 if args.quick else 10_000)
    steps = 10_000 if args.quick else 100_000

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/ledger.db"
        t = time.perf_counter()
        populate_table(uri, n_runs)
        ids = populate_compare(uri, 20, 4, steps)
        print(
            f"setup: {n_runs:,} runs + 20 x 4 x {steps:,} points in {time.perf_counter() - t:.1f} s"
        )
        server = start_ui(uri)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                base = server.url
                rows = "document.querySelectorAll('table.runs tbody tr.run-row').length"
                loaded = "document.querySelector('main[data-loaded=\"1\"]') !== null"
                # warm-up (server imports, SQLite page cache)
                timed_load(page, f"{base}/#/p/table", f"{loaded} && {rows} === 50")
                table = [
                    timed_load(page, f"{base}/#/p/table", f"{loaded} && {rows} === 50")
                    for _ in range(args.repeat)
                ]
                print(f"runs table, {n_runs:,} runs, first 50 rows + total: {median_s(table)}")
                big = [
                    timed_load(page, f"{base}/#/p/table?size=1000", f"{loaded} && {rows} === 1000")
                    for _ in range(args.repeat)
                ]
                print(f"runs table, {n_runs:,} runs, 1,000 rows on the page: {median_s(big)}")
                try:
                    sort = [
                        timed_load(
                            page,
                            f"{base}/#/p/table?sort=-summary.val_acc",
                            f"{loaded} && {rows} === 50",
                        )
                        for _ in range(args.repeat)
                    ]
                    print(
                        f"runs table, {n_runs:,} runs, sorted by -summary.val_acc: {median_s(sort)}"
                    )
                except AssertionError as exc:
                    print(f"runs table sorted by summary: not measured ({exc})")
                url = f"{base}/#/compare?ids={','.join(ids)}"
                charts = "document.querySelectorAll('.chart-grid .chart[data-series=\"20\"]').length === 4"
                timed_load(page, url, f"{loaded} && {charts}")
                cmp = [timed_load(page, url, f"{loaded} && {charts}") for _ in range(args.repeat)]
                pts = page.evaluate("document.querySelector('.chart-grid .chart').dataset.points")
                print(
                    f"compare 20 runs x 4 metrics x {steps:,} steps ({int(pts):,} points per chart, downsampled): {median_s(cmp)}"
                )
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
