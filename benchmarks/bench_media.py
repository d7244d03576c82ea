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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_log = 2_000 if args.quick else 10_000
    reps = 3 if args.quick else 5
    n_open = 2_000 if args.quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
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
