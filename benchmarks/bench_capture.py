"""Benchmarks for reproducibility capture (issue 3).

    .venv/bin/python benchmarks/bench_capture.py            # 1 GB / 1,000 files data tree
    .venv/bin/python benchmarks/bench_capture.py --quick    # 16 MB / 1,000 files

Prints medians of:
- full environment capture (``capture_env``: git state + patch of the current
  directory's repository, ~all installed distributions, OS, hardware), cold in a fresh
  interpreter and warm in-process; run it from the project root for the dev environment;
- ``init()`` wall time with capture on (capture itself runs in a background thread);
- re-fingerprinting an unchanged directory of 1,000 files (cache hit path), and the
  first (hashing) fingerprint for reference;
- system sampler: CPU time per sample, and as a share of one core at the default 10 s.

Targets: capture <= 500 ms, re-fingerprint <= 100 ms, sampler < 1% of one core.
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


def _median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms"


def bench_capture(repeat: int) -> None:
    from labledger.capture import capture_env

    cold_code = (
        "import time; t=time.perf_counter(); from labledger.capture import capture_env; "
        "e=capture_env(); print(time.perf_counter()-t, len(e.get('packages', {})), bool(e.get('git')))"
    )
    cold = []
    info = ""
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", cold_code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        ).stdout.split()
        cold.append(float(out[0]))
        info = f"{out[1]} distributions, git={out[2]}"
    warm = []
    for _ in range(repeat):
        t = time.perf_counter()
        env = capture_env()
        warm.append(time.perf_counter() - t)
    patch = (env.get("git") or {}).get("diff_size", 0)
    print(
        f"capture_env cold (fresh interpreter, incl. imports): {_median_ms(cold)}  [{info}, patch {patch} B]"
    )
    print(f"capture_env warm (in-process):                      {_median_ms(warm)}")


def bench_init(repeat: int) -> None:
    code = (
        "import time, labledger; t=time.perf_counter(); "
        "r=labledger.init('bench', store=%r, system_metrics=False); d=time.perf_counter()-t; "
        "r.finish(); print(d)"
    )
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            out = subprocess.run(
                [sys.executable, "-c", code % f"sqlite:///{tmp}/s.db"],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "LABLEDGER_QUIET": "1"},
            )
            times.append(float(out.stdout.split()[-1]))
    print(f"init() with capture on (returns before capture ends): {_median_ms(times)}")


def bench_fingerprint(quick: bool, repeat: int) -> None:
    n_files = 1000
    size = (16 << 10) if quick else (1 << 20)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LABLEDGER_CACHE_DIR"] = str(Path(tmp) / "cache")
        from labledger.capture.data import fingerprint

        data = Path(tmp) / "data"
        block = os.urandom(size)
        old = time.time() - 3600
        for i in range(n_files):
            d = data / f"shard{i // 100:02d}"
            d.mkdir(parents=True, exist_ok=True)
            f = d / f"part{i:04d}.bin"
            f.write_bytes(block[:-8] + i.to_bytes(8, "little"))
            os.utime(f, (old, old))
        t = time.perf_counter()
        first = fingerprint(data)
        t_first = time.perf_counter() - t
        again = []
        for _ in range(repeat):
            t = time.perf_counter()
            fp = fingerprint(data)
            again.append(time.perf_counter() - t)
            assert fp["sha256"] == first["sha256"]
        total_mb = first["size"] / (1 << 20)
        print(
            f"fingerprint first (hashing {total_mb:.0f} MiB, {n_files} files): {t_first * 1000:.0f} ms"
        )
        print(
            f"re-fingerprint unchanged ({total_mb:.0f} MiB, {n_files} files, cached): {_median_ms(again)}"
        )


def bench_sampler(n: int) -> None:
    from labledger.capture.system import DEFAULT_INTERVAL, SystemSampler

    class _Sink:
        id = "bench000"
        _finished = False

        def _log_internal(self, data: object, step: int) -> None:
            pass

    s = SystemSampler(_Sink(), 1.0)  # type: ignore[arg-type]
    s._prime()
    cpu = []
    for _ in range(n):
        t = time.thread_time()
        s._emit()
        cpu.append(time.thread_time() - t)
        time.sleep(0.01)
    per = statistics.median(cpu)
    print(
        f"sampler CPU per sample: {per * 1000:.2f} ms -> {per / DEFAULT_INTERVAL * 100:.4f}% of one core at "
        f"{DEFAULT_INTERVAL:.0f} s interval"
    )
    # end to end: the thread at a 0.1 s interval, measured with the process CPU clock
    t0c, t0 = time.process_time(), time.perf_counter()
    time.sleep(2.0)
    idle = time.process_time() - t0c
    s2 = SystemSampler(_Sink(), 0.1)  # type: ignore[arg-type]
    t1c, t1 = time.process_time(), time.perf_counter()
    s2.start()
    time.sleep(2.0)
    s2.stop(final_sample=False)
    busy = time.process_time() - t1c
    wall = time.perf_counter() - t1
    share = max(0.0, busy - idle * wall / (t1 - t0)) / wall
    print(
        f"sampler thread at 0.1 s interval: {share * 100:.2f}% of one core "
        f"({s2.samples} samples) -> {share * 100 * 0.1 / DEFAULT_INTERVAL:.4f}% at 10 s"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--quick", action="store_true", help="16 MB data tree instead of 1 GB; fewer repeats"
    )
    args = ap.parse_args()
    repeat = 3 if args.quick else 7
    bench_capture(repeat)
    bench_init(repeat)
    bench_fingerprint(args.quick, repeat)
    bench_sampler(20 if args.quick else 100)


if __name__ == "__main__":
    main()
