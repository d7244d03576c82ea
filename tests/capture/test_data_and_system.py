"""Dataset fingerprints (with their cache) and the system metrics sampler."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import labledger
from labledger.capture.data import cache_dir, fingerprint
from labledger.capture.system import resolve_interval


def _tree(root: Path) -> Path:
    (root / "a" / "b").mkdir(parents=True)
    (root / "x.csv").write_bytes(b"1,2,3\n" * 100)
    (root / "a" / "y.bin").write_bytes(bytes(range(256)) * 10)
    (root / "a" / "b" / "z.txt").write_text("zzz")
    old = time.time() - 60  # older than the racy window, so the cache keeps them
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    return root


def test_fingerprint_is_stable_and_changes_with_one_byte(tmp_path: Path) -> None:
    d = _tree(tmp_path / "ds")
    first = fingerprint(d)
    assert first["files"] == 3 and first["size"] == 600 + 2560 + 3
    assert fingerprint(d)["sha256"] == first["sha256"]
    # same content elsewhere: same fingerprint (paths are relative)
    copy = _tree(tmp_path / "copy")
    assert fingerprint(copy)["sha256"] == first["sha256"]
    data = bytearray((d / "a" / "y.bin").read_bytes())
    data[100] ^= 1
    (d / "a" / "y.bin").write_bytes(bytes(data))
    assert fingerprint(d)["sha256"] != first["sha256"]


def test_same_size_change_with_preserved_mtime_in_racy_window_is_seen(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    d.mkdir()
    f = d / "f.txt"
    f.write_text("aaaa")
    first = fingerprint(d)["sha256"]
    st = f.stat()
    f.write_text("bbbb")  # same size; force the same mtime: only the racy rule saves us
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fingerprint(d)["sha256"] != first


def test_cache_is_persisted_and_used_for_unchanged_files(tmp_path: Path) -> None:
    d = _tree(tmp_path / "ds")
    real = fingerprint(d)
    files = list(cache_dir().glob("*.json"))
    assert len(files) == 1
    cached = json.loads(files[0].read_text())
    assert set(cached["files"]) == {"x.csv", "a/y.bin", "a/b/z.txt"}
    # the cache answers for unchanged files: prove it by planting a different hash
    cached["files"]["x.csv"][3] = "0" * 64
    files[0].write_text(json.dumps(cached))
    assert fingerprint(d)["sha256"] != real["sha256"]
    # touching the file (new mtime) invalidates the planted entry
    os.utime(d / "x.csv", (time.time() - 30, time.time() - 30))
    assert fingerprint(d)["sha256"] == real["sha256"]


def test_removed_file_changes_fingerprint_and_cache(tmp_path: Path) -> None:
    d = _tree(tmp_path / "ds")
    before = fingerprint(d)
    (d / "a" / "b" / "z.txt").unlink()
    after = fingerprint(d)
    assert after["files"] == 2 and after["sha256"] != before["sha256"]
    cached = json.loads(next(cache_dir().glob("*.json")).read_text())
    assert "a/b/z.txt" not in cached["files"]


def test_single_file_fingerprint_is_its_sha256(tmp_path: Path) -> None:
    import hashlib

    f = tmp_path / "one.bin"
    f.write_bytes(b"hello")
    fp = fingerprint(f, name="greeting")
    assert fp == {
        "name": "greeting",
        "path": str(f),
        "sha256": hashlib.sha256(b"hello").hexdigest(),
        "size": 5,
        "files": 1,
    }


def test_log_dataset_records_fingerprint_on_the_run(tmp_path: Path, store_uri: str) -> None:
    d = _tree(tmp_path / "ds")
    run = labledger.init("cap", store=store_uri, capture=False)
    info = run.log_dataset(d, name="train")
    run.finish()
    with labledger.Ledger(store_uri) as ledger:
        rec = ledger.get(run.id)
    assert rec["datasets"] == [info] and info["sha256"] == fingerprint(d)["sha256"]


def test_sampler_logs_system_series_without_touching_user_steps(store_uri: str) -> None:
    run = labledger.init("cap", store=store_uri, capture=False, system_metrics=0.05)
    deadline = time.monotonic() + 120  # the sampler primes (psutil import) first: slow under load
    while run._sampler.samples < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.step == 0
    run.log({"loss": 1.0})
    run.finish()
    with labledger.Ledger(store_uri) as ledger:
        keys = ledger.metric_keys(run.id)
        cpu = ledger.history(run.id, "system/cpu_percent")
        rss = ledger.history(run.id, "system/proc_rss_bytes")
        loss = ledger.history(run.id, "loss")
    assert {
        "system/cpu_percent",
        "system/proc_rss_bytes",
        "system/mem_used_percent",
        "system/disk_read_bytes_per_s",
        "system/net_sent_bytes_per_s",
    } <= set(keys)
    assert not [k for k in keys if k.startswith("system/gpu")]  # no GPU on this machine
    assert len(cpu.steps) >= 3 and list(cpu.steps) == sorted(set(cpu.steps))
    assert min(rss.values) > 1_000_000
    assert list(loss.steps) == [0]
    assert run._sampler is not None and not run._sampler.is_alive()


def test_a_run_shorter_than_the_interval_still_gets_one_system_sample(store_uri: str) -> None:
    # the demo's runs last ~0.3 s: once the sampler is primed, finish() takes the one
    # sample such a run has, however soon after the start it comes
    run = labledger.init("cap", store=store_uri, capture=False, system_metrics=True)
    assert run._sampler is not None and run._sampler._primed.wait(120)
    run.finish()
    with labledger.Ledger(store_uri) as ledger:
        rss = ledger.history(run.id, "system/proc_rss_bytes")
        keys = ledger.metric_keys(run.id)
    assert list(rss.steps) == [0] and rss.values[0] > 1_000_000
    assert "system/cpu_percent" in keys


def test_a_run_that_ends_while_the_sampler_starts_still_gets_its_sample(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # finish() right after init(): the sampler is usually still importing psutil; finish()
    # waits for it (bounded: 0.5 s, raised here so a loaded machine cannot fail the test)
    # instead of leaving the run without system/* series
    from labledger.capture import system

    monkeypatch.setattr(system, "PRIME_WAIT_S", 120.0)
    run = labledger.init("cap", store=store_uri, capture=False, system_metrics=True)
    run.finish()
    with labledger.Ledger(store_uri) as ledger:
        keys = ledger.metric_keys(run.id)
    assert "system/proc_rss_bytes" in keys
    assert run._sampler is not None and not run._sampler.is_alive()


def test_sampler_is_off_when_asked(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABLEDGER_SYSTEM_METRICS", "off")
    run = labledger.init("cap", store=store_uri, capture=False)
    assert run._sampler is None
    run.finish()


def test_resolve_interval() -> None:
    assert resolve_interval(False) is None
    assert resolve_interval(True) == 10.0
    assert resolve_interval(2) == 2.0
    assert resolve_interval(None) == 10.0
    assert resolve_interval(None, capture=False) is None
    with pytest.raises(labledger.UsageError):
        resolve_interval(-1)


def test_resolve_interval_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABLEDGER_SYSTEM_METRICS", "0.5")
    assert resolve_interval(None) == 0.5
    monkeypatch.setenv("LABLEDGER_SYSTEM_METRICS", "off")
    assert resolve_interval(None) is None
    assert resolve_interval(3) == 3.0  # the argument wins
