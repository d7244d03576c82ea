"""Trust benchmarks: hashing a run's record when it ends, and ``labledger audit verify``.

    python benchmarks/bench_trust.py            # 1,000,000 points; 10,000 runs
    python benchmarks/bench_trust.py --quick    # 100,000 points; 1,000 runs

- seal: a 1,000,000-point run (1 key) is logged with ``labledger.init()`` in the default
  configuration (capture and system metrics on) and finished; then the sealing work of
  ``finish()`` (read every chunk, hash the record, append to the chain) is timed again
  on that run inside a write transaction that is rolled back, median of 5: on the
  embedded store's stdlib path (what ``finish()`` runs) and through SqlStore (the
  PostgreSQL and server path) on the same file. ``finish()`` itself is printed for scale.
- manifest: a run that produced one artifact version of 1,000 files (and 1,000 points);
  hashing its record as ``finish()`` does, in record format 1 (before: the versions'
  manifest digests only) and format 2 (after: every file's path, sha256 and size), on
  both paths, median of 20.
- verify: 10,000 ended runs (2 series of 100 points each, a config, a summary) in one
  SQLite store; ``labledger audit verify`` as a whole process, median of 3.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def bench_seal(folder: Path, points: int, repeats: int) -> None:
    import labledger
    from labledger.store import open_store

    uri = f"sqlite:///{folder / 'seal.db'}"
    run = labledger.init("bench", store=uri, console=False)
    for i in range(points):
        run.log({"loss": 1.0 / (i + 1)})
    t = time.perf_counter()
    run.finish()
    finish_s = time.perf_counter() - t
    # what finish() of an embedded run does: the stdlib path (store/_lite.py)
    import sqlite3

    from labledger.store._statements import LiteDb, append_entry

    con = sqlite3.connect(str(folder / "seal.db"), isolation_level=None)
    db = LiteDb(con)
    lite = []
    for _ in range(repeats):
        con.execute("BEGIN IMMEDIATE")
        t = time.perf_counter()
        append_entry(db, "bench", run.id, "seal")
        lite.append(time.perf_counter() - t)
        con.execute("ROLLBACK")
    con.close()
    # the same work through SqlStore (the PostgreSQL and server path), on the same file
    store = open_store(uri)
    times = []
    for _ in range(repeats):
        with store._tx() as conn:  # type: ignore[attr-defined]
            t = time.perf_counter()
            store._append_entry(conn, "bench", run.id, "seal")  # type: ignore[attr-defined]
            times.append(time.perf_counter() - t)
            conn.rollback()
    store.close()
    print(
        f"seal   {points:,}-point run: hashing its record at finish  median {statistics.median(lite) * 1000:.1f} ms "
        f"embedded/stdlib (min {min(lite) * 1000:.1f}), {statistics.median(times) * 1000:.1f} ms "
        f"through SqlStore (min {min(times) * 1000:.1f}), n={repeats}; finish() as a whole {finish_s:.2f} s"
    )


def bench_manifest(folder: Path, files: int, repeats: int) -> None:
    import hashlib
    import sqlite3

    import labledger
    from labledger.store import open_store
    from labledger.store._statements import LiteDb, record_fields

    uri = f"sqlite:///{folder / 'manifest.db'}"
    run = labledger.init("bench", store=uri, console=False, capture=False)
    for i in range(1000):
        run.log({"loss": 1.0 / (i + 1)})
    run.flush()
    store = open_store(uri)
    manifest = [
        {"path": f"shard-{i:05d}.bin", "sha256": hashlib.sha256(b"%d" % i).hexdigest(), "size": i}
        for i in range(files)
    ]
    store.create_artifact_version("bench", "shards", "dataset", run.id, manifest)
    run.finish()
    con = sqlite3.connect(str(folder / "manifest.db"), isolation_level=None)
    out = {}
    for fmt in (1, 2):
        lite, sql = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            record_fields(LiteDb(con), [run.id], {run.id: fmt})
            lite.append(time.perf_counter() - t)
            with store._read() as conn:  # type: ignore[attr-defined]
                t = time.perf_counter()
                store._record_fields(conn, [run.id], {run.id: fmt})  # type: ignore[attr-defined]
                sql.append(time.perf_counter() - t)
        out[fmt] = (statistics.median(lite) * 1000, statistics.median(sql) * 1000)
    con.close()
    store.close()
    print(
        f"manifest run with 1 version of {files:,} files: hashing its record  "
        f"format 1 (before) {out[1][0]:.2f} ms embedded/stdlib, {out[1][1]:.2f} ms SqlStore; "
        f"format 2 (after, manifest sealed) {out[2][0]:.2f} ms / {out[2][1]:.2f} ms "
        f"(median of {repeats})"
    )


def _fill(uri: str, runs: int) -> None:
    """``runs`` ended runs, written like the writer would but 500 runs per transaction."""
    import numpy as np
    import sqlalchemy as sa

    from labledger.store import _schema as s
    from labledger.store import open_store
    from labledger.store._series_sql import _series_summary

    store = open_store(uri)
    now = time.time()
    steps = np.arange(100, dtype="<i8")
    ts = now + steps.astype("<f8")
    series = {"loss": 1.0 / (steps + 1.0), "acc": steps / 100.0}
    for start in range(0, runs, 500):
        with store._tx() as conn:  # type: ignore[attr-defined]
            for i in range(start, min(runs, start + 500)):
                rid = uuid.uuid4().hex
                project = f"p{i % 4}"
                if i < 4:
                    conn.execute(sa.insert(s.projects).values(name=project, created_at=now))
                conn.execute(
                    sa.insert(s.runs).values(
                        id=rid,
                        project=project,
                        name=f"r{i}",
                        status="finished",
                        created_at=now,
                        ended_at=now + 100,
                        heartbeat_at=now + 100,
                        config={"lr": i / runs},
                        summary={"best": i},
                        tags=[],
                        env={},
                        datasets=[],
                        updated_at=now,
                        author="bench@example.org",
                    )
                )
                tails: dict[tuple[str, str], int] = {}
                rows = []
                for key, vals in series.items():
                    store._write_series(conn, rid, key, steps, vals, ts, tails)  # type: ignore[attr-defined]
                    rows.append(_series_summary(rid, key, steps, vals, ts))
                store._upsert_summaries(conn, rows)  # type: ignore[attr-defined]
                store._append_entry(conn, project, rid, "seal")  # type: ignore[attr-defined]
    store.close()


def bench_verify(folder: Path, runs: int, repeats: int) -> None:
    uri = f"sqlite:///{folder / 'verify.db'}"
    t = time.perf_counter()
    _fill(uri, runs)
    fill_s = time.perf_counter() - t
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "LABLEDGER_URI": uri}
    cmd = [sys.executable, "-m", "labledger.cli", "audit", "verify"]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        assert out.returncode == 0, out.stdout + out.stderr
    print(
        f"verify {runs:,} ended runs: `labledger audit verify`  median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, n={repeats}); filling the store took {fill_s:.0f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = ap.parse_args()
    points, runs = (100_000, 1_000) if args.quick else (1_000_000, 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        bench_seal(Path(tmp), points, 5)
        bench_manifest(Path(tmp), 1_000, 20)
        bench_verify(Path(tmp), runs, 3)


if __name__ == "__main__":
    main()
