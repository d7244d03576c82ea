"""``labledger import mlflow SOURCE``: every experiment and run of an MLflow tracking URI.

Read through the ``mlflow`` client, so any tracking URI works: ``sqlite:///mlflow.db``,
``postgresql://…``, a ``mlruns/`` folder, ``http://mlflow-server:5000``. Each MLflow run
becomes a labledger run with the *same* id (MLflow's run ids are 32 hex digits), so the
import is idempotent: a run already complete in the target is skipped. Kept: experiment
and run names and ids (``env.mlflow.run_id``, ``env.mlflow.experiment_id``), start and
end times, status, user (the author), params typed into ``config`` (strings kept in
``env.mlflow.params``), tags, every metric point with its step and timestamp, dataset
inputs, and artifacts (run artifacts and MLflow 3 logged models), content-addressed.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import MissingDependencyError, RunNotFoundError
from .._mlflow_map import GIT_TAGS, STATUS_FROM_MLFLOW, type_param
from ..store import Batch
from ._common import (
    ImportSummary,
    Progress,
    artifact_name,
    blob_store_for,
    store_artifact_dir,
    through_core,
)

if TYPE_CHECKING:
    from ..store import RunRecord, Store

__all__ = ["import_mlflow", "tracking_uri"]

_RUN_ID = re.compile(r"[0-9a-f]{32}\Z")
BATCH_POINTS = 200_000


def tracking_uri(source: str | os.PathLike[str]) -> str:
    """An MLflow tracking URI for ``source`` (a URI, an ``.db`` file, or a ``mlruns`` folder)."""
    text = os.fspath(source)
    if text.startswith("postgresql://"):
        return "postgresql+psycopg://" + text[len("postgresql://") :]
    if "://" in text or text.startswith("sqlite:"):
        return text
    p = Path(text).expanduser()
    if p.is_dir():
        return p.resolve().as_uri()
    if p.is_file():
        return f"sqlite:///{p.resolve()}"
    from .._exceptions import UsageError

    raise UsageError(f"{text!r} is neither a tracking URI, an MLflow database nor an mlruns folder")


def _unclamp(value: float) -> float:
    if value == sys.float_info.max:
        return math.inf
    if value == -sys.float_info.max:
        return -math.inf
    return value


def _labledger_id(mlflow_run_id: str) -> str:
    if _RUN_ID.match(mlflow_run_id):
        return mlflow_run_id
    return uuid.uuid5(uuid.NAMESPACE_URL, f"mlflow-run:{mlflow_run_id}").hex


def _paged(fetch: Any) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = fetch(token)
        out.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return out


def _existing(store: Store, run_id: str) -> RunRecord | None:
    try:
        run = store.get_run(run_id)
    except RunNotFoundError:
        return None
    return run if run["id"] == run_id else None


def import_mlflow(
    source: str | os.PathLike[str],
    store: Store | str | None = None,
    *,
    artifacts: bool = True,
    artifacts_uri: str | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import every experiment and run of MLflow tracking URI ``source`` into ``store``
    (a Store, a store URI, or None for the default store)."""
    kw: dict[str, Any] = {
        "artifacts": artifacts,
        "artifacts_uri": artifacts_uri,
        "on_progress": on_progress,
    }
    if store is not None and not isinstance(store, str):
        return _import_mlflow(source, store, **kw)
    from ..store import open_store

    target = open_store(store)
    try:
        return _import_mlflow(source, target, **kw)
    finally:
        target.close()


def _import_mlflow(
    source: str | os.PathLike[str],
    store: Store,
    *,
    artifacts: bool = True,
    artifacts_uri: str | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import every experiment and run of MLflow tracking URI ``source`` into ``store``."""
    try:
        from mlflow import MlflowClient
        from mlflow.entities import ViewType
    except ImportError as exc:
        raise MissingDependencyError("mlflow", "mlflow") from exc
    started = time.perf_counter()
    uri = tracking_uri(source)
    target = through_core(store)
    # mlflow draws a progress bar per download; the import draws its own
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if uri.startswith("file:"):
        # mlflow 3 refuses file stores unless asked; reading an old mlruns/ is the point here
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=uri)
    summary = ImportSummary(source=_redacted(uri))
    report = on_progress or (lambda done, total, desc: None)
    experiments = _paged(
        lambda tok: client.search_experiments(
            view_type=ViewType.ALL, max_results=1000, page_token=tok
        )
    )
    report(0, None, "listing runs")
    plan: list[tuple[Any, Any]] = []
    for exp in experiments:
        runs = _paged(
            lambda tok, e=exp: client.search_runs(
                [e.experiment_id], run_view_type=ViewType.ALL, max_results=1000, page_token=tok
            )
        )
        plan.extend((exp, r) for r in runs)
    summary.experiments = len(experiments)
    for exp in experiments:
        _record_experiment(target, exp)
    models = _logged_models(client, [e.experiment_id for e in experiments])
    blobs = blob_store_for(target, artifacts_uri) if artifacts else None
    histories = _Histories(uri)
    for i, (exp, run) in enumerate(plan):
        report(i, len(plan), f"{exp.name}/{run.info.run_name or run.info.run_id[:8]}")
        try:
            _import_run(client, histories, uri, target, blobs, exp, run, models, summary)
        except Exception as exc:  # one bad run must not stop an import of thousands
            summary.errors.append(f"run {run.info.run_id}: {type(exc).__name__}: {exc}")
    histories.close()
    report(len(plan), len(plan), "done")
    summary.seconds = time.perf_counter() - started
    return summary


def _redacted(uri: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", uri)


def _record_experiment(target: Store, exp: Any) -> None:
    """Keep the MLflow experiment id and tags (when the target is an SQL store)."""
    put = getattr(target, "put_mlflow_object", None)
    find = getattr(target, "mlflow_objects", None)
    one = getattr(target, "mlflow_object", None)
    if put is None or find is None or one is None:
        return
    if find("experiment", project=exp.name) or one("experiment", str(exp.experiment_id)):
        return
    created = (exp.creation_time or 0) / 1000.0 or time.time()
    put(
        "experiment",
        str(exp.experiment_id),
        exp.name,
        {
            "lifecycle_stage": exp.lifecycle_stage,
            "tags": {k: v for k, v in (exp.tags or {}).items()},
            "creation_time": created,
            "last_update_time": (exp.last_update_time or 0) / 1000.0 or created,
            "imported_from": "mlflow",
        },
        create_only=True,
    )


def _logged_models(client: Any, experiment_ids: list[str]) -> dict[str, list[Any]]:
    """MLflow 3 logged models by source run id (none on older stores and servers)."""
    out: dict[str, list[Any]] = {}
    if not experiment_ids:
        return out
    try:
        found = _paged(
            lambda tok: client.search_logged_models(
                experiment_ids=experiment_ids, max_results=100, page_token=tok
            )
        )
    except Exception:  # an MLflow 2 store or server: no logged models
        return out
    for m in found:
        if m.source_run_id:
            out.setdefault(m.source_run_id, []).append(m)
    return out


class _Histories:
    """Metric histories read straight from an MLflow SQL database (one query per run
    instead of one client call per metric; the client stays the fallback)."""

    def __init__(self, uri: str) -> None:
        from ..store import MlflowMetricsSource

        self.source = MlflowMetricsSource(uri)

    def read(self, run_id: str) -> dict[str, tuple[list[int], list[float], list[float]]]:
        out = self.source.read(run_id)
        for _steps, values, _stamps in out.values():
            # MLflow's SQL store clamps +-inf to +-max float: give them back their meaning
            values[:] = [_unclamp(v) for v in values]
        return out

    def close(self) -> None:
        self.source.close()


def _import_run(
    client: Any,
    histories: _Histories,
    uri: str,
    target: Store,
    blobs: Any,
    exp: Any,
    run: Any,
    models: dict[str, list[Any]],
    summary: ImportSummary,
) -> None:
    info, data = run.info, run.data
    rid = _labledger_id(info.run_id)
    existing = _existing(target, rid)
    if existing is not None and ((existing.get("env") or {}).get("mlflow") or {}).get(
        "import_complete"
    ):
        summary.skipped += 1
        return
    tags = dict(data.tags)
    params = dict(data.params)
    ml_env: dict[str, Any] = {
        "run_id": info.run_id,
        "experiment_id": str(info.experiment_id),
        "source": _redacted(uri),
        "tags": tags,
        "params": params,
        "lifecycle_stage": info.lifecycle_stage,
        "import_complete": False,
    }
    datasets = []
    inputs = getattr(run, "inputs", None)
    for di in getattr(inputs, "dataset_inputs", None) or []:
        ds = di.dataset
        item = {
            "dataset": {
                "name": ds.name,
                "digest": ds.digest,
                "source_type": ds.source_type,
                "source": ds.source,
                "schema": ds.schema,
                "profile": ds.profile,
            },
            "tags": [{"key": t.key, "value": t.value} for t in di.tags],
        }
        ml_env.setdefault("inputs", []).append(item)
        datasets.append(
            {
                "name": ds.name,
                "digest": ds.digest,
                "source_type": ds.source_type,
                "source": ds.source,
            }
        )
    env: dict[str, Any] = {"mlflow": ml_env}
    git = {field: tags[tag] for tag, field in GIT_TAGS.items() if tags.get(tag)}
    if git:
        env["git"] = git
    start = (info.start_time or 0) / 1000.0 or time.time()
    end = info.end_time / 1000.0 if info.end_time else None
    parent = tags.get("mlflow.parentRunId")
    record = {
        "id": rid,
        "project": exp.name,
        "name": (info.run_name or tags.get("mlflow.runName") or rid[:8])[:250],
        "status": STATUS_FROM_MLFLOW.get(info.status, "failed"),
        "created_at": start,
        "ended_at": end,
        "heartbeat_at": end or start,
        "author": info.user_id or tags.get("mlflow.user") or None,
        "config": {k: type_param(v) for k, v in params.items()},
        "notes": tags.get("mlflow.note.content"),
        "parent_run_id": _labledger_id(parent) if parent else None,
        "env": env,
        "datasets": datasets,
    }
    if existing is None:
        target.create_run(record)
    summary.params += len(params)
    has_files = blobs is not None and (
        bool(models.get(info.run_id)) or bool(client.list_artifacts(info.run_id))
    )
    batches: list[dict[str, tuple[list[int], list[float], list[float]]]] = [{}]
    size = 0
    direct = histories.read(info.run_id) if data.metrics else {}
    for key in sorted(data.metrics):
        if key in direct:
            steps, values, stamps = direct[key]
        else:
            hist = client.get_metric_history(info.run_id, key)
            steps = [int(m.step) for m in hist]
            # MLflow's SQL store clamps +-inf to +-max float: give them back their meaning
            values = [_unclamp(float(m.value)) for m in hist]
            stamps = [m.timestamp / 1000.0 for m in hist]
        if size >= BATCH_POINTS:
            batches.append({})
            size = 0
        batches[-1][key] = (steps, values, stamps)
        size += len(steps)
        summary.points += len(steps)
    done = {"env": {"mlflow": dict(ml_env, import_complete=True)}}
    for n, metrics in enumerate(batches):
        # without files to copy, the last metrics batch also marks the import complete:
        # one transaction per run instead of two
        last = n == len(batches) - 1 and not has_files
        if metrics or last:
            target.write_batch(
                Batch(
                    run_id=rid,
                    metrics=metrics,
                    run_update=done if last else {},
                    id=f"mlflow-{rid}-m{n}",
                )
            )
    if has_files:
        _import_artifacts(client, uri, target, blobs, exp.name, rid, run, models, summary)
        target.write_batch(Batch(run_id=rid, run_update=done, id=f"mlflow-{rid}-done"))
    summary.runs += 1


def _import_artifacts(
    client: Any,
    uri: str,
    target: Store,
    blobs: Any,
    project: str,
    rid: str,
    run: Any,
    models: dict[str, list[Any]],
    summary: ImportSummary,
) -> None:
    from mlflow.artifacts import download_artifacts

    meta = {"source": "mlflow", "mlflow_owner": f"run:{rid}"}
    if client.list_artifacts(run.info.run_id):
        with tempfile.TemporaryDirectory(prefix="labledger-import-") as tmp:
            root = Path(download_artifacts(run_id=run.info.run_id, dst_path=tmp, tracking_uri=uri))
            files, size = store_artifact_dir(target, blobs, project, rid, root, meta)
            summary.artifacts += files
            summary.artifact_bytes += size
    for model in models.get(run.info.run_id, []):
        # an MLflow 3 logged model: its files become a directory artifact of the run
        with tempfile.TemporaryDirectory(prefix="labledger-import-") as tmp:
            got = Path(
                download_artifacts(
                    artifact_uri=model.artifact_location,
                    dst_path=str(Path(tmp) / "download"),
                    tracking_uri=uri,
                )
            )
            holder = Path(tmp) / "holder"
            holder.mkdir()
            os.rename(got, holder / artifact_name(model.name or "model"))
            files, size = store_artifact_dir(target, blobs, project, rid, holder, meta)
            summary.artifacts += files
            summary.artifact_bytes += size
