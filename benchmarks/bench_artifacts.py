"""Artifact store benchmark: a large file into the local store, then the same file again.

    .venv/bin/python benchmarks/bench_artifacts.py           # 1 GB file, 3 repeats
    .venv/bin/python benchmarks/bench_artifacts.py --quick   # 200 MB file

Each measurement runs in a fresh child process that logs the file with
``run.log_model()`` and waits for the version to be registered (hash, copy with
verification, fsync, rename, register); the child reports its own peak RSS
(``ru_maxrss``) and, for comparison, the peak RSS of the same script without the
artifact. The page cache is synced before each repeat (outside the timing), so
one repeat's writeback does not slow the next. Then the same file is logged a second time (dedup: it should cost about as
much as hashing it), and the plain hashing time is measured in the parent.
Targets (issue 4): >= 300 MB/s, peak client memory <= 100 MB, second log ~ hash time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
import labledger
path, store, arts, mode = sys.argv[1:5]
run = labledger.init("bench", store=store, artifacts=arts, capture=False)
run.store()  # the store is open before timing starts
out = {}
if mode != "baseline":
    t0 = time.perf_counter()
    ref = run.log_model(path, name="big")
    assert ref.wait(), ref.error
    out["first_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref2 = run.log_model(path, name="big")
    assert ref2.wait(), ref2.error
    out["second_s"] = time.perf_counter() - t0
    out["versions"] = [ref.version, ref2.version]
run.finish()
out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def make_file(path: Path, size: int) -> None:
    block = os.urandom(8 * 1024 * 1024)
    with open(path, "wb") as fh:
        left = size
        i = 0
        while left > 0:
            chunk = block[: min(len(block), left)]
            # vary each block a little so the file is not one repeated pattern
            fh.write(i.to_bytes(8, "little") + chunk[8:])
            left -= len(chunk)
            i += 1


def child(path: Path, work: Path, mode: str, n: int) -> dict[str, float]:
    store = f"sqlite:///{work / f's{n}' / 'ledger.db'}"
    arts = str(work / f"a{n}")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "LABLEDGER_CONSOLE": "off"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), store, arts, mode],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="200 MB instead of 1 GB")
    ap.add_argument("--size-mb", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    args = ap.parse_args()
    size_mb = args.size_mb or (200 if args.quick else 1000)
    size = size_mb * 1_000_000
    sys.path.insert(0, str(ROOT / "src"))
    from labledger.artifacts import hash_file

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        path = work / "big.bin"
        make_file(path, size)
        os.sync()  # start from a clean page cache state: no writeback of the test file in the timing
        hash_file(path)  # warm the page cache like a recently written checkpoint
        base = child(path, work, "baseline", 0)
        firsts, seconds, rss, hashes = [], [], [], []
        for n in range(1, args.repeat + 1):
            os.sync()  # the previous repeat's copy is flushed outside the timing
            r = child(path, work, "log", n)
            firsts.append(r["first_s"])
            seconds.append(r["second_s"])
            rss.append(r["maxrss_mb"])
            t0 = time.perf_counter()
            hash_file(path)
            hashes.append(time.perf_counter() - t0)
            assert r["versions"] == [0, 1]
    first = statistics.median(firsts)
    print(f"file size                : {size_mb} MB, {args.repeat} repeats, medians")
    print(
        f"first log (store)        : {first:.2f} s  -> {size / first / 1e6:.0f} MB/s   (target >= 300 MB/s)"
    )
    print(f"second log (dedup)       : {statistics.median(seconds):.2f} s")
    print(f"sha256 of the file alone : {statistics.median(hashes):.2f} s")
    print(
        f"peak client RSS          : {statistics.median(rss):.0f} MB   (target <= 100 MB; "
        f"{base['maxrss_mb']:.0f} MB for the same script without the artifact)"
    )


if __name__ == "__main__":
    main()
