"""Rich-result benchmarks, printed as medians.

    python benchmarks/bench_media.py            # full size
    python benchmarks/bench_media.py --quick    # fewer repeats, 2,000 images for the read

1. ``log_image_us``: ``run.log({"img": Image(x), "loss": l})`` with a 64x64 RGB uint8
   array, per call on the training thread (building the ``Image`` included: it copies the
   array; PNG encoding happens on the writer thread), beside ``log_scalar_us`` for
   ``run.log({"loss": l})`` in the same process.
2. ``images_1000_durable_s``: from before ``init()`` to ``finish()`` returning (everything
   durable in the SQLite store) for a run that logs 1,000 distinct 64x64 images.
3. ``open_10k_ms``: a run with 10,000 images: what the run page loads when it opens (the
   run, its rich-result keys, the first page of 100 items of a key), through the server's
   API in process (FastAPI TestClient over the same SQLite store).
4. ``open_10k_browser_ms``: a run with 10,000 images (``samples``: one 64x64 image at
   each of 9,000 steps; ``batch``: 1,000 images at one step, the per-step maximum)
   served by a real ``labledger server`` process, opened in headless Debian chromium
   (Playwright, ``/usr/bin/chromium --headless --no-sandbox``): the time from
   ``page.goto`` of the run page to the results section's first images rendered
   (``img.complete`` with a ``naturalWidth``), in a fresh browser context (cold cache),
   and ``open_10k_browser_warm_ms``: the same page opened again in that context
   (scripts cached); for scale, the projects page (the dashboard's shell, no rich
   results) in a fresh context is printed too. ``--no-browser`` skips it,
   ``--browser-only`` runs only it.
Stores live in a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("LABLEDGER_CONSOLE", "off")

import numpy as np

import labledger


def log_cost(tmp: str, n: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(64)]
    run = labledger.init("bench", store=f"sqlite:///{tmp}/log/ledger.db", capture=False)
    run.flush()
    block = 200
    img_us, scalar_us = [], []
    for b in range(n // block):
        t = time.perf_counter()
        for i in range(block):
            run.log({"img": labledger.Image(imgs[i % 64]), "loss": float(i)}, step=b * block + i)
        img_us.append((time.perf_counter() - t) / block * 1e6)
        run.flush()  # the writer's encoding is not what this figure measures
        t = time.perf_counter()
        for i in range(block * 10):
            run.log({"loss": float(i)})
        scalar_us.append((time.perf_counter() - t) / (block * 10) * 1e6)
    run.finish()
    return statistics.median(img_us), statistics.median(scalar_us)


def durable_1000(tmp: str, k: int) -> float:
    rng = np.random.default_rng(k)
    imgs = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(1000)]
    t = time.perf_counter()
    run = labledger.init("bench", store=f"sqlite:///{tmp}/d{k}/ledger.db", capture=False)
    for i, x in enumerate(imgs):
        run.log({"samples": labledger.Image(x), "loss": 1.0 / (i + 1)}, step=i)
    run.finish()
    return time.perf_counter() - t


def open_10k(tmp: str, n: int, repeats: int) -> float:
    from fastapi.testclient import TestClient

    from labledger.server.app import create_app

    uri = f"sqlite:///{tmp}/open/ledger.db"
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    run = labledger.init("bench", store=uri, capture=False)
    for i in range(n):
        x[i % 64, (i // 64) % 64] ^= 0xFF  # distinct bytes each step
        run.log({"samples": labledger.Image(x, caption=f"step {i}")}, step=i)
    run.finish()
    times = []
    with TestClient(create_app(uri)) as client:
        for _ in range(repeats):
            t = time.perf_counter()
            assert client.get(f"/api/v1/runs/{run.id}").status_code == 200
            keys = client.get(f"/api/v1/runs/{run.id}/media/keys").json()["keys"]
            assert keys[0]["count"] == n
            page = client.get(
                f"/api/v1/runs/{run.id}/media", params={"key": "samples", "limit": 100}
            ).json()["items"]
            first = page[0]
            r = client.get(
                f"/api/v1/runs/{run.id}/media/blob/{first['sha256']}", params={"format": "png"}
            )
            assert r.status_code == 200
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def populate_browser_run(uri: str, n: int) -> str:
    """``samples`` at n - 1,000 steps (one image each) and ``batch``: 1,000 at one step."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    run = labledger.init("bench", name="ten-thousand", store=uri, capture=False)
    per_step = min(1_000, n // 10)
    for i in range(n - per_step):
        x[i % 64, (i // 64) % 64] ^= 0xFF
        run.log({"samples": labledger.Image(x, caption=f"step {i}")}, step=i)
    last = n - per_step
    for j in range(per_step):
        x[j % 64, 63 - (j // 64) % 64] ^= 0x0F
        run.log({"batch": labledger.Image(x, caption=f"sample {j}")}, step=last)
    run.finish()
    return run.id


def open_10k_browser(tmp: str, n: int, repeats: int) -> tuple[float, float]:
    import socket
    import subprocess
    import urllib.request

    from playwright.sync_api import sync_playwright

    uri = f"sqlite:///{tmp}/browser/ledger.db"
    run_id = populate_browser_run(uri, n)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parent.parent / "src"))
    env["LABLEDGER_CONSOLE"] = "off"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "labledger.cli", "server", "--backend-uri", uri),
            *("--port", str(port), "--log-level", "warning"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v1/runs/{run_id}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("labledger server did not start") from None
                time.sleep(0.1)
        rendered = (
            "[...document.querySelectorAll('#sec-media img.media-image')]"
            ".filter((i) => i.complete && i.naturalWidth > 0).length >= 2"
        )
        cold: list[float] = []
        warm: list[float] = []
        shell: list[float] = []
        loaded = "document.querySelector(\"main[data-loaded='1']\") !== null"

        def load(page: Any, route: str = f"#/run/{run_id}", until: str = rendered) -> float:
            page.goto("about:blank")
            t = time.perf_counter()
            page.goto(f"{base}/{route}")
            end = t + 60
            while not page.evaluate(until):
                if time.perf_counter() > end:
                    raise AssertionError(f"timed out on {route}: {until}")
                page.wait_for_timeout(2)
            return time.perf_counter() - t

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu"],
            )
            for k in range(repeats + 1):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                first, again = load(page), load(page)
                shown = page.evaluate(
                    "document.querySelectorAll('#sec-media img.media-image').length"
                )
                context.close()
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                bare = load(context.new_page(), "#/", loaded)
                if k:  # the first round warms the server (imports, SQLite pages)
                    cold.append(first)
                    warm.append(again)
                    shell.append(bare)
                if k == repeats:
                    print(f"# images in the page after the load: {shown} of {n:,}")
                context.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(
        f"# the dashboard shell alone (projects page, fresh context): "
        f"{statistics.median(shell) * 1e3:.1f} ms"
    )
    return statistics.median(cold) * 1e3, statistics.median(warm) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-browser", action="store_true", help="skip open_10k_browser_ms")
    ap.add_argument("--browser-only", action="store_true", help="only open_10k_browser_ms")
    args = ap.parse_args()
    n_log = 2_000 if args.quick else 10_000
    reps = 3 if args.quick else 5
    n_open = 2_000 if args.quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_browser:
            cold_ms, warm_ms = open_10k_browser(tmp, 10_000, 3 if args.quick else 7)
            print(
                f"open_10k_browser_ms   {cold_ms:8.1f} ms   labledger server + chromium, fresh "
                "browser context: navigation to the first images rendered"
            )
            print(
                f"open_10k_browser_warm_ms {warm_ms:5.1f} ms   the same page again in that "
                "context (the dashboard's scripts cached)"
            )
        if args.browser_only:
            return
        img_us, scalar_us = log_cost(tmp, n_log)
        durable = statistics.median(durable_1000(tmp, k) for k in range(reps))
        opened = open_10k(tmp, n_open, reps)
    print(f"log_image_us          {img_us:8.1f} us   run.log(Image 64x64 + a scalar) per call")
    print(
        f"log_scalar_us         {scalar_us:8.2f} us   run.log({{'loss': v}}) per call, same process"
    )
    print(
        f"images_1000_durable_s {durable:8.3f} s    init() .. finish(): 1,000 distinct 64x64 images"
    )
    print(
        f"open_{n_open // 1000}k_ms           {opened:8.1f} ms   run + keys + first page + one image"
    )


if __name__ == "__main__":
    main()
