"""``labledger import wandb DIR``: W&B run directories, online and offline, as runs.

A W&B run directory (``wandb/run-<time>-<id>`` or ``wandb/offline-run-<time>-<id>``) holds
the run's transaction log ``run-<id>.wandb`` and a ``files/`` folder. The log is read
directly (no W&B account, server or network): it is a sequence of length-prefixed,
checksummed records in 32 KiB blocks (the LevelDB log layout, behind a 7-byte ``:W&B``
header), each record a protobuf ``Record`` from ``wandb.proto.wandb_internal_pb2`` — the
one piece of the ``wandb`` package this module needs, so ``wandb`` must be installed to
read a log (``pip install labledger[wandb]``).

What becomes what:

- the run record: id, project, display name, notes, tags, group and job type, start
  time, host, and the git remote and commit; its config (nested dicts stay nested;
  W&B's own ``_wandb`` key is left out);
- every history row: each numeric key becomes a series point at the row's ``_step`` with
  its ``_timestamp``; nested keys join with ``/``; media and other non-numeric values are
  counted in the summary's ``skipped_values``;
- the final summary: numeric values that differ from a series' last point (a
  ``run.summary["best_acc"] = …``) become the run's summary;
- system metrics (``stats`` records) become ``system/wandb/<key>`` series over time;
- the environment record: OS, Python, program, arguments, executable, host, CPU and GPU
  counts, memory, and ``files/requirements.txt`` as the run's package list;
- the exit record: exit code 0 is ``finished``, another code ``failed``; a log with no
  exit record (the process died) is ``crashed``;
- the files in ``files/`` (other than W&B's own bookkeeping) become artifacts of the run,
  content-addressed.

Runs keep a labledger id derived from the W&B project and run id, so importing the same
directory twice imports nothing twice. An online run directory without a transaction
log falls back to ``files/config.yaml`` and ``files/wandb-summary.json``.
"""

from __future__ import annotations

import json
import math
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import MissingDependencyError, RunNotFoundError, UsageError
from ..store import Batch
from ._common import ImportSummary, Progress, blob_store_for, store_artifact_dir

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["import_wandb", "read_records", "run_dirs"]

_MAGIC = b":W&B"
_HEADER = 7  # ":W&B", magic 0xBEE1 (little-endian), version byte
_BLOCK = 32 * 1024
_REC_HEADER = 7  # crc32 (uint32 LE), length (uint16 LE), type (uint8)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
# files W&B writes for itself in files/: read for metadata, not kept as artifacts
_BOOKKEEPING = frozenset(
    {"config.yaml", "wandb-summary.json", "wandb-metadata.json", "requirements.txt"}
)
BATCH_POINTS = 200_000


class WandbLogError(UsageError):
    """A ``.wandb`` transaction log that cannot be read (not a log, or damaged)."""


def read_records(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The serialized records of a ``.wandb`` transaction log, in order.

    A record split across blocks (FIRST, MIDDLE…, LAST) is joined; a record whose
    checksum does not match ends the read there (a log cut short by a killed process
    keeps everything before the damage)."""
    data = Path(path).read_bytes()
    if data[:4] != _MAGIC or len(data) < _HEADER:
        raise WandbLogError(f"{os.fspath(path)!r} is not a W&B transaction log")
    pos = _HEADER
    pending: list[bytes] | None = None
    while pos + _REC_HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _REC_HEADER:  # the rest of a block too short for a header is padding
            pos += left
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        if kind == 0 and length == 0:
            pos += left
            continue
        body = data[pos + _REC_HEADER : pos + _REC_HEADER + length]
        if len(body) < length or zlib.crc32(bytes([kind]) + body) & 0xFFFFFFFF != crc:
            return  # cut short or damaged: what came before stands
        pos += _REC_HEADER + length
        if kind == _FULL:
            yield body
        elif kind == _FIRST:
            pending = [body]
        elif kind == _MIDDLE and pending is not None:
            pending.append(body)
        elif kind == _LAST and pending is not None:
            pending.append(body)
            yield b"".join(pending)
            pending = None


def run_dirs(source: Path) -> list[Path]:
    """W&B run directories at or under ``source`` (``run-*`` and ``offline-run-*``), sorted."""
    if _is_run_dir(source):
        return [source]
    found = []
    for root, dirs, _files in os.walk(source):
        dirs.sort()
        for d in dirs:
            p = Path(root) / d
            if (d.startswith("run-") or d.startswith("offline-run-")) and _is_run_dir(p):
                found.append(p)
    return sorted(set(found))


def _is_run_dir(p: Path) -> bool:
    if not p.is_dir() or p.is_symlink():
        return False
    if any(p.glob("run-*.wandb")):
        return True
    return (p / "files" / "wandb-summary.json").is_file() or (p / "files" / "config.yaml").is_file()


def import_wandb(
    source: str | os.PathLike[str],
    store: Store | str | None = None,
    *,
    project: str | None = None,
    artifacts: bool = True,
    artifacts_uri: str | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import every W&B run directory at or under ``source`` into ``store`` (a Store, a
    store URI, or None for the default store). ``project`` overrides the W&B project."""
    if store is not None and not isinstance(store, str):
        return _import(source, store, project, artifacts, artifacts_uri, on_progress)
    from ..store import open_store

    target = open_store(store)
    try:
        return _import(source, target, project, artifacts, artifacts_uri, on_progress)
    finally:
        target.close()


def _import(
    source: str | os.PathLike[str],
    store: Store,
    project: str | None,
    artifacts: bool,
    artifacts_uri: str | None,
    on_progress: Progress | None,
) -> ImportSummary:
    started = time.perf_counter()
    root = Path(source).expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"{os.fspath(source)!r} is not a folder")
    dirs = run_dirs(root)
    if not dirs:
        raise UsageError(
            f"no W&B run directories (run-*/ or offline-run-*/ with a .wandb file) under {root}"
        )
    summary = ImportSummary(source=str(root))
    blobs = blob_store_for(store, artifacts_uri) if artifacts else None
    report = on_progress or (lambda done, total, desc: None)
    projects: set[str] = set()
    for i, d in enumerate(dirs):
        rel = d.relative_to(root).as_posix() if d != root else d.name
        report(i, len(dirs), rel)
        try:
            run = _read_run(d)
            run.project = project or run.project or "wandb"
            projects.add(run.project)
            _write_run(store, blobs, run, summary)
        except Exception as exc:  # one unreadable run must not stop the rest
            summary.errors.append(f"{rel}: {type(exc).__name__}: {exc}")
    report(len(dirs), len(dirs), "done")
    summary.experiments = len(projects)
    summary.seconds = time.perf_counter() - started
    return summary


class _WandbRun:
    """What one run directory says, gathered from its log and files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_id = ""
        self.project = ""
        self.name = ""
        self.notes: str | None = None
        self.tags: list[str] = []
        self.group: str | None = None
        self.job_type: str | None = None
        self.created_at: float | None = None
        self.ended_at: float | None = None
        self.exit_code: int | None = None
        self.config: dict[str, Any] = {}
        self.summary: dict[str, float] = {}
        self.git: dict[str, Any] = {}
        self.env: dict[str, Any] = {}
        self.history: dict[str, tuple[list[int], list[float], list[float]]] = {}
        self.skipped_values = 0
        self.log = ""
        self.author: str | None = None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    return None


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else str(item.key)


def _set_config(config: dict[str, Any], item: Any) -> None:
    path = list(item.nested_key) or [item.key]
    if path[0] == "_wandb":
        return
    value = _json(item.value_json)
    # W&B's config.yaml shape ({"value": v, "desc": ...}) when a log carries it
    if isinstance(value, dict) and set(value) <= {"value", "desc"} and "value" in value:
        value = value["value"]
    node = config
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _read_run(d: Path) -> _WandbRun:
    run = _WandbRun(d)
    logs = sorted(d.glob("run-*.wandb"))
    if logs:
        _read_log(run, logs[0])
    else:
        _read_files(run, d)
    if not run.run_id:
        run.run_id = d.name.rsplit("-", 1)[-1]
    req = d / "files" / "requirements.txt"
    if req.is_file():
        pkgs = {}
        for line in req.read_text(errors="replace").splitlines():
            name, sep, ver = line.strip().partition("==")
            if sep and name and not name.startswith("#"):
                pkgs[name.lower()] = ver
        if pkgs:
            run.env["packages"] = pkgs
    return run


def _read_log(run: _WandbRun, path: Path) -> None:
    try:
        from wandb.proto import wandb_internal_pb2 as pb
    except ImportError as exc:
        raise MissingDependencyError("wandb", "wandb") from exc
    run.log = path.name
    summary: dict[str, Any] = {}
    last_time: float | None = None
    for raw in read_records(path):
        rec = pb.Record()  # type: ignore[attr-defined]
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.run_id = r.run_id or run.run_id
            run.project = r.project or run.project
            run.name = r.display_name or run.name
            run.notes = r.notes or run.notes
            run.tags = list(r.tags) or run.tags
            run.group = r.run_group or run.group
            run.job_type = r.job_type or run.job_type
            if r.HasField("start_time"):
                run.created_at = r.start_time.seconds + r.start_time.nanos / 1e9
            if r.host:
                run.env["host"] = r.host
            if r.HasField("git") and (r.git.commit or r.git.remote_url):
                run.git = {"commit": r.git.commit or None, "remote": r.git.remote_url or None}
            if r.entity:
                run.env.setdefault("wandb", {})["entity"] = r.entity
            for item in r.config.update:
                _set_config(run.config, item)
        elif kind == "config":
            for item in rec.config.update:
                _set_config(run.config, item)
            for item in rec.config.remove:
                run.config.pop(_key(item), None)
        elif kind == "history":
            row = {_key(i): _json(i.value_json) for i in rec.history.item}
            step = row.get("_step")
            stamp = _number(row.get("_timestamp"))
            step_i = int(step) if isinstance(step, (int, float)) else rec.history.step.num
            stamp_f = stamp if stamp is not None else (last_time or time.time())
            last_time = stamp_f
            for key, value in row.items():
                if key.startswith("_"):
                    continue
                num = _number(value)
                if num is None:
                    run.skipped_values += 1
                    continue
                steps, values, stamps = run.history.setdefault(key, ([], [], []))
                steps.append(step_i)
                values.append(num)
                stamps.append(stamp_f)
        elif kind == "summary":
            for item in rec.summary.update:
                summary[_key(item)] = _json(item.value_json)
            for item in rec.summary.remove:
                summary.pop(_key(item), None)
        elif kind == "stats":
            s = rec.stats
            at = s.timestamp.seconds + s.timestamp.nanos / 1e9
            last_time = max(last_time or at, at)
            for item in s.item:
                num = _number(_json(item.value_json))
                if num is None:
                    continue
                key = _system_key(item.key)
                steps, values, stamps = run.history.setdefault(key, ([], [], []))
                steps.append(len(steps))
                values.append(num)
                stamps.append(at)
        elif kind == "environment":
            _environment(run, rec.environment)
        elif kind == "exit":
            run.exit_code = int(rec.exit.exit_code)
            run.ended_at = last_time
    _final_summary(run, summary)


def _system_key(key: str) -> str:
    """``disk./.usageGB`` -> ``system/wandb/disk/root/usageGB``."""
    parts = [p.strip("/").replace("/", "_") or "root" for p in key.split(".") if p]
    return "system/wandb/" + "/".join(parts)


def _environment(run: _WandbRun, e: Any) -> None:
    env = run.env
    if e.os:  # "Linux-6.1.0-x86_64-with-glibc2.36", as platform.platform() gives it
        system, _, release = e.os.partition("-")
        env["os"] = {"system": system, "release": release or None, "platform": e.os}
        if e.host:
            env["os"]["hostname"] = e.host
    if e.python:  # "CPython 3.11.7"
        impl, _, ver = e.python.rpartition(" ")
        env["python"] = {"version": ver, "implementation": impl or None}
        if e.executable:
            env["python"]["executable"] = e.executable
    if e.program or e.code_path:
        script = e.code_path or e.program
        env["command"] = {
            "argv": [script, *e.args],
            "cwd": e.root or None,
            "entry_point": e.program or script,
            "executable": e.executable or None,
        }
    hardware: dict[str, Any] = env.setdefault("hardware", {})
    if e.cpu_count_logical:
        hardware["cpu_count"] = int(e.cpu_count_logical)
    if e.cpu_count:
        hardware["cpu_physical_count"] = int(e.cpu_count)
    if e.HasField("memory") and e.memory.total:
        hardware["memory_bytes"] = int(e.memory.total)
    if e.HasField("cpu") and e.cpu.model:
        hardware["cpu_model"] = e.cpu.model
    if e.gpu_type:
        hardware["gpu_name"] = e.gpu_type
    if e.gpu_count:
        hardware["gpu_count"] = int(e.gpu_count)
    if not hardware:
        env.pop("hardware")
    if e.HasField("git") and (e.git.commit or e.git.remote_url):
        run.git = {"commit": e.git.commit or None, "remote": e.git.remote_url or None}
    if e.host:
        env["host"] = e.host
    if e.username:
        env.setdefault("wandb", {})["username"] = e.username
    if e.email or e.username:
        run.author = e.email or e.username


def _final_summary(run: _WandbRun, summary: dict[str, Any]) -> None:
    """Keep the summary values a history's last point does not already give."""
    for key, value in summary.items():
        if key.startswith("_"):
            continue
        num = _number(value)
        if num is None:
            continue
        series = run.history.get(key)
        if (
            series is not None
            and series[1]
            and (series[1][-1] == num or (math.isnan(num) and math.isnan(series[1][-1])))
        ):
            continue
        run.summary[key] = num


def _read_files(run: _WandbRun, d: Path) -> None:
    """An online run directory without its log: config.yaml and wandb-summary.json."""
    files = d / "files"
    cfg = files / "config.yaml"
    if cfg.is_file():
        import yaml

        loaded = yaml.safe_load(cfg.read_text()) or {}
        for key, value in loaded.items():
            if key == "_wandb" or key == "wandb_version":
                continue
            run.config[key] = value.get("value") if isinstance(value, dict) else value
    summ = files / "wandb-summary.json"
    if summ.is_file():
        data = json.loads(summ.read_text())
        for key, value in data.items():
            num = _number(value)
            if not key.startswith("_") and num is not None:
                run.summary[key] = num
        rt = data.get("_timestamp")
        if isinstance(rt, (int, float)):
            run.ended_at = float(rt)
    meta = files / "wandb-metadata.json"
    if meta.is_file():
        m = json.loads(meta.read_text())
        if m.get("git"):
            run.git = {"commit": m["git"].get("commit"), "remote": m["git"].get("remote")}
        if m.get("startedAt"):
            from datetime import datetime

            try:
                run.created_at = datetime.fromisoformat(
                    str(m["startedAt"]).replace("Z", "+00:00")
                ).timestamp()
            except ValueError:
                pass
        if m.get("program"):
            run.env.setdefault("command", {})["script"] = m["program"]
        if m.get("host"):
            run.env["host"] = m["host"]
    run.exit_code = 0 if run.ended_at is not None else None


def _labledger_id(project: str, run_id: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"wandb:{project}/{run_id}").hex


def _write_run(store: Store, blobs: Any, run: _WandbRun, summary: ImportSummary) -> None:
    rid = _labledger_id(run.project, run.run_id)
    try:
        existing = store.get_run(rid)
    except RunNotFoundError:
        existing = None
    if existing is not None and ((existing.get("env") or {}).get("wandb") or {}).get(
        "import_complete"
    ):
        summary.skipped += 1
        return
    times = [t for _, _, ts in run.history.values() for t in ts]
    start = run.created_at or (min(times) if times else time.time())
    end = run.ended_at or (max(times) if times else start)
    status = "crashed" if run.exit_code is None else "finished" if run.exit_code == 0 else "failed"
    wb_env = dict(run.env.get("wandb") or {})
    wb_env.update(
        {
            "run_id": run.run_id,
            "project": run.project,
            "dir": str(run.path),
            "log": run.log or None,
            "skipped_values": run.skipped_values,
            "import_complete": False,
        }
    )
    env = dict(run.env, wandb=wb_env)
    if run.git:
        env["git"] = run.git
    record: dict[str, Any] = {
        "id": rid,
        "project": run.project,
        "name": (run.name or run.run_id)[:250],
        "status": status,
        "created_at": start,
        "ended_at": None if status == "crashed" else end,
        "heartbeat_at": end,
        "config": run.config,
        "tags": run.tags,
        "notes": run.notes,
        "env": env,
        "exit_code": run.exit_code,
    }
    if run.author:
        record["author"] = run.author
    if run.group:
        record["group"] = run.group
    if run.job_type:
        record["job_type"] = run.job_type
    if existing is None:
        store.create_run(record)
    summary.params += len(run.config)
    batches: list[dict[str, tuple[list[int], list[float], list[float]]]] = [{}]
    size = 0
    for key in sorted(run.history):
        series = run.history[key]
        if size >= BATCH_POINTS:
            batches.append({})
            size = 0
        batches[-1][key] = series
        size += len(series[0])
        summary.points += len(series[0])
    files_dir = run.path / "files"
    keep = (
        [p for p in sorted(files_dir.iterdir()) if p.name not in _BOOKKEEPING]
        if blobs is not None and files_dir.is_dir()
        else []
    )
    done: dict[str, Any] = {"env": {"wandb": dict(wb_env, import_complete=True)}}
    if run.exit_code is not None:
        done["exit_code"] = run.exit_code
    for n, metrics in enumerate(batches):
        first, last = n == 0, n == len(batches) - 1 and not keep
        update: dict[str, Any] = {}
        if first and run.summary:
            update["summary"] = dict(run.summary)
        if last:
            update.update(done)
        if metrics or update:
            store.write_batch(
                Batch(run_id=rid, metrics=metrics, run_update=update, id=f"wandb-{rid}-m{n}")
            )
    if keep:
        files, size_b = store_artifact_dir(
            store,
            blobs,
            run.project,
            rid,
            files_dir,
            {"source": "wandb"},
            skip=_BOOKKEEPING,
            follow_links=True,
        )
        summary.artifacts += files
        summary.artifact_bytes += size_b
        store.write_batch(Batch(run_id=rid, run_update=done, id=f"wandb-{rid}-done"))
    if run.skipped_values:
        summary.not_imported["non-numeric values"] = (
            summary.not_imported.get("non-numeric values", 0) + run.skipped_values
        )
    summary.runs += 1
