"""``labledger import tensorboard LOGDIR``: scalar event files (and hparams) as runs.

Every folder under LOGDIR holding ``events.out.tfevents.*`` files is one run (the
layout TensorBoard itself shows), except the folder ``SummaryWriter.add_hparams`` writes
below a run's folder (``<run>/<timestamp or run_name>/``, holding only the hparams session
and its metrics): that one belongs to the run above it, so one training run stays one
run, its hparams in ``config`` and the hparam metrics beside its curves. Scalars keep
their steps and wall times, whether written as ``simple_value`` (``torch.utils.tensorboard``,
TF1) or as scalar tensors (TF2). The hparams plugin's session start info becomes the
run's ``config`` (numbers stay numbers). Histograms, images, audio and text are not
imported yet (labledger has no rich results); the import counts them per kind in its
summary (``not_imported``) and in the run's ``env.tensorboard.not_imported``, so nothing
is dropped silently. A run's id is derived from its folder and first event file, so a
second import of the same logdir imports nothing.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import MissingDependencyError, RunNotFoundError, UsageError
from ..store import Batch
from ._common import ImportSummary, Progress, through_core

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["import_tensorboard", "run_dirs"]

_EVENTS = "events.out.tfevents."


def run_dirs(logdir: Path) -> list[Path]:
    """Folders under ``logdir`` (itself included) that hold event files, sorted."""
    out = []
    for root, dirs, files in os.walk(logdir):
        dirs.sort()
        if any(f.startswith(_EVENTS) for f in files):
            out.append(Path(root))
    return out


def import_tensorboard(
    logdir: str | os.PathLike[str],
    store: Store | str | None = None,
    *,
    project: str | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import every run under ``logdir`` into ``store`` (a Store, a store URI, or None for
    the default store); the project is ``project`` or the folder's name."""
    if store is not None and not isinstance(store, str):
        return _import_tensorboard(logdir, store, project=project, on_progress=on_progress)
    from ..store import open_store

    target = open_store(store)
    try:
        return _import_tensorboard(logdir, target, project=project, on_progress=on_progress)
    finally:
        target.close()


def _import_tensorboard(
    logdir: str | os.PathLike[str],
    store: Store,
    *,
    project: str | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import every run under ``logdir`` into ``store`` (project: ``project`` or the folder name)."""
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
    except ImportError as exc:
        raise MissingDependencyError("tensorboard", "tensorboard") from exc
    started = time.perf_counter()
    root = Path(logdir).expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"{os.fspath(logdir)!r} is not a folder")
    target = through_core(store)
    project = project or root.name
    summary = ImportSummary(source=str(root), experiments=1)
    report = on_progress or (lambda done, total, desc: None)
    found = run_dirs(root)
    sessions = {d: _files(d) for d in found if _is_hparams_session(d, _files(d))}
    # add_hparams' folder joins the nearest run folder above it
    attached: dict[Path, list[Path]] = {}
    for d in sessions:
        owner = next((p for p in d.parents if p in found and p not in sessions), None)
        if owner is not None and (owner == root or root in owner.parents):
            attached.setdefault(owner, []).append(d)
    joined = {d for ds in attached.values() for d in ds}
    dirs = [d for d in found if d not in joined]
    for i, d in enumerate(dirs):
        rel = d.relative_to(root).as_posix()
        report(i, len(dirs), rel)
        try:
            _import_dir(ea, target, project, root, d, rel, summary, attached.get(d, []))
        except Exception as exc:  # one unreadable folder must not stop the rest
            summary.errors.append(f"{rel}: {type(exc).__name__}: {exc}")
    report(len(dirs), len(dirs), "done")
    summary.seconds = time.perf_counter() - started
    return summary


def _files(d: Path) -> list[str]:
    return sorted(f.name for f in d.iterdir() if f.name.startswith(_EVENTS))


def _is_hparams_session(d: Path, files: list[str]) -> bool:
    """Whether the folder's events carry an hparams session (``add_hparams`` writes one
    into a folder of its own)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata as hp_meta

    for name in files:
        for event in EventFileLoader(str(d / name)).Load():
            if event.HasField("summary") and any(
                v.tag == hp_meta.SESSION_START_INFO_TAG for v in event.summary.value
            ):
                return True
    return False


def _scalar_tensor(event: Any) -> float | None:
    from tensorboard.util import tensor_util

    arr = tensor_util.make_ndarray(event.tensor_proto)
    if arr.size != 1 or arr.dtype.kind not in "fiub":
        return None
    return float(arr.reshape(()).item())


def _hparams(d: Path, files: list[str]) -> dict[str, Any]:
    """The hparams plugin's session start info in the folder's event files (raw read: the
    accumulator drops these value-less summaries)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata as hp_meta

    out: dict[str, Any] = {}
    for name in files:
        for event in EventFileLoader(str(d / name)).Load():
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                if value.tag != hp_meta.SESSION_START_INFO_TAG:
                    continue
                content = value.metadata.plugin_data.content
                info = hp_meta.parse_session_start_info_plugin_data(content)
                for key, hv in info.hparams.items():
                    kind = hv.WhichOneof("kind")
                    if kind == "number_value":
                        v = hv.number_value
                        out[key] = int(v) if float(v).is_integer() and abs(v) < 2**53 else v
                    elif kind == "bool_value":
                        out[key] = bool(hv.bool_value)
                    elif kind == "string_value":
                        out[key] = hv.string_value
    return out


_SeriesMap = dict[str, tuple[list[int], list[float], list[float]]]
# accumulator tag kinds labledger cannot store yet -> the name the summary gives them
_NOT_IMPORTED = {
    "histograms": "histograms",
    "distributions": "histograms",
    "images": "images",
    "audio": "audio",
}


def _read_folder(ea: Any, d: Path, not_imported: dict[str, int]) -> _SeriesMap:
    """Scalar series of one folder's events; other kinds counted into ``not_imported``."""
    acc = ea.EventAccumulator(
        str(d),
        size_guidance={ea.SCALARS: 0, ea.TENSORS: 0, ea.HISTOGRAMS: 1, ea.IMAGES: 1, ea.AUDIO: 1},
    )
    acc.Reload()
    tags = acc.Tags()
    metrics: _SeriesMap = {}
    for tag in tags.get("scalars", []):
        evs = acc.Scalars(tag)
        metrics[tag] = (
            [e.step for e in evs],
            [float(e.value) for e in evs],
            [e.wall_time for e in evs],
        )
    for tag in tags.get("tensors", []):
        if tag.startswith("_hparams_/") or tag in metrics:
            continue
        if acc.SummaryMetadata(tag).plugin_data.plugin_name not in ("scalars", ""):
            continue
        steps, values, stamps = [], [], []
        for e in acc.Tensors(tag):
            v = _scalar_tensor(e)
            if v is None:
                break
            steps.append(e.step)
            values.append(v)
            stamps.append(e.wall_time)
        else:
            if steps:
                metrics[tag] = (steps, values, stamps)
    counted: set[tuple[str, str]] = set()
    for kind, name in _NOT_IMPORTED.items():
        for tag in tags.get(kind, []):
            if (name, tag) not in counted:
                counted.add((name, tag))
                not_imported[name] = not_imported.get(name, 0) + 1
    for tag in tags.get("tensors", []):
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        if plugin in ("text", "histograms", "images", "audio") and tag not in metrics:
            key = "histograms" if plugin == "histograms" else plugin
            if (key, tag) not in counted:
                counted.add((key, tag))
                not_imported[key] = not_imported.get(key, 0) + 1
    return metrics


def _import_dir(
    ea: Any,
    target: Store,
    project: str,
    root: Path,
    d: Path,
    rel: str,
    summary: ImportSummary,
    sessions: list[Path],
) -> None:
    files = _files(d)
    rid = uuid.uuid5(uuid.NAMESPACE_URL, f"tensorboard:{rel}/{files[0]}").hex
    try:
        target.get_run(rid)
        summary.skipped += 1
        return
    except RunNotFoundError:
        pass
    not_imported: dict[str, int] = {}
    metrics = _read_folder(ea, d, not_imported)
    hparams = _hparams(d, files)
    for sd in sessions:  # add_hparams' own folder: its hparams and metrics are this run's
        s_files = _files(sd)
        hparams.update(_hparams(sd, s_files))
        for tag, series in _read_folder(ea, sd, not_imported).items():
            if tag not in metrics:
                metrics[tag] = series
        files = files + [f"{sd.relative_to(d).as_posix()}/{f}" for f in s_files]
    times = [t for _, _, ts in metrics.values() for t in ts]
    first_event = float(files[0].split(".")[3]) if files[0].split(".")[3].isdigit() else None
    start = min(times) if times else (first_event or time.time())
    if first_event is not None:
        start = min(start, first_event)
    end = max(times) if times else start
    host = files[0].split(".")[4] if len(files[0].split(".")) > 5 else None
    target.create_run(
        {
            "id": rid,
            "project": project,
            "name": (rel if rel != "." else root.name)[:250],
            "status": "finished",
            "created_at": start,
            "ended_at": end,
            "heartbeat_at": end,
            "config": hparams,
            "env": {
                "tensorboard": {
                    "logdir": str(root),
                    "run": rel,
                    "event_files": files,
                    "host": host,
                    "not_imported": not_imported,
                }
            },
        }
    )
    if metrics:
        target.write_batch(Batch(run_id=rid, metrics=metrics, id=f"tb-{rid}"))
    summary.runs += 1
    summary.params += len(hparams)
    summary.points += sum(len(s) for s, _, _ in metrics.values())
    for kind, n in not_imported.items():
        summary.not_imported[kind] = summary.not_imported.get(kind, 0) + n
