"""Artifact blobs through the tracking server: upload and download throughput, memory.

Starts ``labledger server`` (SQLite backend, local artifacts directory) on loopback,
then uploads and downloads a fresh random file ``--repeat`` times through
``HttpBlobStore`` and prints the medians, the client's peak RSS and the server's
sampled peak RSS.

    python benchmarks/bench_artifacts_server.py [--size-mb 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from labledger.artifacts import hash_file
    from labledger.remote.http import HttpBlobStore

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
        env["PYTHONPATH"] = str(ROOT / "src")
        server = subprocess.Popen(
            [sys.executable, "-m", "labledger.cli", "server", "--backend-uri",
             f"sqlite:///{tmp}/db.sqlite", "--artifacts-uri", f"{tmp}/blobs",
             "--port", str(port), "--log-level", "warning"],
            env=env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            proc = psutil.Process(server.pid)
            while not stop.wait(0.05):
                try:
                    rss = proc.memory_info().rss + sum(
                        c.memory_info().rss for c in proc.children(recursive=True)
                    )
                except psutil.Error:
                    return
                peak[0] = max(peak[0], rss)

        try:
            for _ in range(300):
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            threading.Thread(target=sample, daemon=True).start()
            blobs = HttpBlobStore(url)
            up, down = [], []
            size = args.size_mb * 1024 * 1024
            for i in range(args.repeat):
                src = Path(tmp) / f"f{i}.bin"
                with open(src, "wb") as fh:
                    for _ in range(args.size_mb):
                        fh.write(os.urandom(1024 * 1024))
                sha, n = hash_file(src)
                t = time.perf_counter()
                blobs.put_file(src, sha, n)
                up.append(time.perf_counter() - t)
                dest = Path(tmp) / f"back{i}.bin"
                t = time.perf_counter()
                blobs.download(sha, dest)
                down.append(time.perf_counter() - t)
                src.unlink()
                dest.unlink()
            mb = size / 1e6
            print(
                f"blob size: {args.size_mb} MiB, {args.repeat} runs, server: 1 worker, local directory"
            )
            print(
                f"upload   median {mb / statistics.median(up):8.1f} MB/s ({statistics.median(up):.2f} s)"
            )
            print(
                f"download median {mb / statistics.median(down):8.1f} MB/s ({statistics.median(down):.2f} s)"
            )
            print(
                f"client peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:8.1f} MB"
            )
            print(f"server peak RSS {peak[0] / 1e6:8.1f} MB (sampled every 50 ms)")
            blobs.close()
        finally:
            stop.set()
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
