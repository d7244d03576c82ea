"""MLflow runs, params, metrics and tags over labledger runs (``/api/2.0/mlflow/runs/...``).

An MLflow run is a labledger run with the same 32-hex id. Writes become one
:class:`~labledger.store.Batch` each, applied by ``store.write_batch``: the path
labledger's own client takes. Mapping:

- params -> ``config`` (a number when the string parses as one); the strings as logged
  are kept in ``env.mlflow.params`` and returned as they came;
- tags -> ``env.mlflow.tags``; ``mlflow.runName`` is the run's name,
  ``mlflow.source.git.*`` fill ``env.git``, ``mlflow.note.content`` the notes,
  ``mlflow.parentRunId`` the parent. ``mlflow.user`` is the client's *claim*, kept as a
  tag; the run's author (``user_id``) is the caller's identity (the token's user, or
  ``anonymous`` on an open server), as on every other door;
- status and times as given (milliseconds <-> seconds); deletion is
  ``env.mlflow.lifecycle_stage``.

Every write goes through the server's write core (``labledger.store.WriteCore``): a run
the caller may not read answers RESOURCE_DOES_NOT_EXIST as a missing one does, only the
author or a project admin changes a run (PERMISSION_DENIED otherwise), the project policy
applies when ``runs/update`` finishes a run, and edit events name the caller.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request

from ..._exceptions import RunNotFoundError
from ..._limits import MAX_NOTES_LENGTH
from ..._mlflow_map import GIT_TAGS, env_from_tags, run_tags
from ..._values import check_key
from ...store import Batch, RunRecord, ServerStore
from ..auth import core, principal
from ._common import (
    STATUS_FROM_MLFLOW,
    STATUS_TO_MLFLOW,
    MlflowError,
    MlflowRoute,
    flatten,
    float_to_json,
    invalid_value,
    json_float,
    json_int,
    json_list,
    json_str,
    max_results,
    page_offset,
    page_token,
    param_text,
    read_params,
    require_str,
    type_param,
)
from ._experiments import experiment_of_project, sql_store, visible_experiment
from ._models import link_model_metrics
from ._search import combine, lifecycle_filter, translate_filter, translate_order_by

__all__ = ["metrics_router", "router", "run_json"]

router = APIRouter(prefix="/api/2.0/mlflow/runs", route_class=MlflowRoute)
metrics_router = APIRouter(prefix="/api/2.0/mlflow/metrics", route_class=MlflowRoute)

_RUN_ID = re.compile(r"[0-9a-f]{32}\Z")
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
MAX_PARAM_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000  # MLflow's MAX_TAG_VAL_LENGTH; a note may be as long as notes


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def run_json(run: RunRecord, experiment_id: str) -> dict[str, Any]:
    """A labledger run record as MLflow's ``Run`` message (JSON)."""
    env = run.get("env") or {}
    ml = env.get("mlflow") or {}
    tags: dict[str, str] = dict(ml.get("tags") or {})
    tags["mlflow.runName"] = run["name"]
    if run["author"]:
        tags.setdefault("mlflow.user", run["author"])
    git = env.get("git") or {}
    for tag, field in GIT_TAGS.items():
        if git.get(field):
            tags.setdefault(tag, str(git[field]))
    if run["notes"]:
        tags.setdefault("mlflow.note.content", run["notes"])
    if run["parent_run_id"]:
        tags.setdefault("mlflow.parentRunId", run["parent_run_id"])
    if run.get("tags"):
        tags.setdefault("labledger.tags", ",".join(map(str, run["tags"])))
    raw = ml.get("params") or {}
    params = {}
    for key, value in flatten(run.get("config") or {}).items():
        kept = raw.get(key)
        params[key] = kept if kept is not None and type_param(kept) == value else param_text(value)
    metrics = [
        {
            "key": k,
            "value": float_to_json(m["last"]),
            "timestamp": _ms(m["last_ts"]),
            "step": m["last_step"],
        }
        for k, m in sorted((run.get("metrics") or {}).items())
    ]
    info = {
        "run_id": run["id"],
        "run_uuid": run["id"],
        "run_name": run["name"],
        "experiment_id": experiment_id,
        "user_id": run.get("author") or tags.get("mlflow.user") or "",
        "status": STATUS_TO_MLFLOW.get(run["status"], "FAILED"),
        "start_time": _ms(run["created_at"]),
        "end_time": _ms(run.get("ended_at")),
        "artifact_uri": f"mlflow-artifacts:/{experiment_id}/{run['id']}/artifacts",
        "lifecycle_stage": ml.get("lifecycle_stage", "active"),
    }
    inputs = list(ml.get("inputs") or [])
    return {
        "info": {k: v for k, v in info.items() if v is not None},
        "data": {
            "metrics": metrics,
            "params": [{"key": k, "value": v} for k, v in sorted(params.items())],
            "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        },
        "inputs": {
            "dataset_inputs": inputs,
            **({"model_inputs": list(ml["model_inputs"])} if ml.get("model_inputs") else {}),
        },
        "outputs": {"model_outputs": list(ml.get("outputs") or [])},
    }


def _no_run(run_id: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", f"Run with id={run_id} not found")


def _run_id(request: Request, params: dict[str, Any], role: str) -> str:
    """The run's id once the caller may ``role`` it (write: its author or a project admin);
    a run the caller may not read answers exactly like a missing one."""
    run_id = require_str(params, "run_id", "run_uuid")
    if not _RUN_ID.match(run_id):
        raise _no_run(run_id)
    rules, actor = core(request), principal(request).actor
    try:
        if role == "read":
            return rules.resolve(actor, run_id, "read")[0]
        return rules.owned(actor, run_id)[0]
    except RunNotFoundError:
        raise _no_run(run_id) from None


def _run(request: Request, params: dict[str, Any], role: str) -> tuple[ServerStore, RunRecord]:
    run_id = _run_id(request, params, role)
    store = sql_store(request)
    return store, store.get_run(run_id)


def _active(run: RunRecord) -> None:
    if ((run.get("env") or {}).get("mlflow") or {}).get("lifecycle_stage") == "deleted":
        raise MlflowError("INVALID_STATE", f"The run {run['id']} must be in the 'active' state.")


def _write(
    request: Request,
    run_id: str,
    update: dict[str, Any] | None = None,
    metrics: dict[str, tuple[list[int], list[float], list[float]]] | None = None,
) -> None:
    """One batch through the write core, as the caller."""
    batch = Batch(
        run_id=run_id, metrics=metrics or {}, run_update=update or {}, heartbeat=time.time()
    )
    core(request).write_batch(principal(request).actor, batch)


def _experiment_id(store: ServerStore, project: str) -> str:
    return str(experiment_of_project(store, project)["id"])


def _tag_list(params: dict[str, Any], what: str = "tags") -> list[tuple[str, str]]:
    out = []
    for t in json_list(params, what):
        if not isinstance(t, dict) or not isinstance(t.get("key"), str) or not t["key"]:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid entry in {what}: {t!r}")
        value = t.get("value")
        out.append((t["key"], "" if value is None else str(value)))
    return out


class _Changes:
    """Run-field changes collected from params and tags, then written as one batch."""

    def __init__(self, run: RunRecord) -> None:
        self.run = run
        env = run.get("env") or {}
        self.ml: dict[str, Any] = dict(env.get("mlflow") or {})
        self.git: dict[str, Any] = dict(env.get("git") or {})
        self.config: dict[str, Any] = dict(run.get("config") or {})
        self.tags: list[str] = list(run.get("tags") or [])
        self.captured: dict[str, Any] = {}
        self.update: dict[str, Any] = {}
        self.touched: set[str] = set()

    def param(self, key: str, value: str) -> None:
        check_key(key)
        if len(value) > MAX_PARAM_LENGTH:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"Param value for '{key}' exceeds the {MAX_PARAM_LENGTH} character limit",
            )
        params = dict(self.ml.get("params") or {})
        old = params.get(key)
        if old is not None and old != value:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{old}' for run ID='{self.run['id']}'. "
                f"Attempted logging new value '{value}'.",
            )
        params[key] = value
        self.ml["params"] = params
        self.config[key] = type_param(value)
        self.touched |= {"ml", "config"}

    def tag(self, key: str, value: str) -> None:
        most = MAX_NOTES_LENGTH if key == "mlflow.note.content" else MAX_TAG_VALUE_LENGTH
        if len(value) > most:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"Tag value for '{key}' exceeds the {most} character limit",
            )
        tags = dict(self.ml.get("tags") or {})
        tags[key] = value
        self.ml["tags"] = tags
        self.touched.add("ml")
        self.run_tag(key, value)
        if key == "mlflow.runName" and value:
            self.update["name"] = value[:250]
        elif key == "mlflow.note.content":
            self.update["notes"] = value
        elif key == "mlflow.parentRunId" and _RUN_ID.match(value):
            self.update["parent_run_id"] = value
        elif key in GIT_TAGS:
            self.git[GIT_TAGS[key]] = value
            self.touched.add("git")

    def absorb_capture(self, store: ServerStore) -> None:
        """labledger's capture sent as tags by the MLflow plugin becomes the run's ``env``
        (the patch a blob, as labledger's own client stores it); the tags are dropped."""
        tags = dict(self.ml.get("tags") or {})
        env, patch, used = env_from_tags(tags)
        if not used:
            return
        for k in used:
            tags.pop(k, None)
        self.ml["tags"] = tags
        self.touched.add("ml")
        for part, value in env.items():
            if part == "git" and isinstance(value, dict):
                git = dict(value, **self.git)  # the run's own git tags win
                if patch:
                    git["diff_sha256"] = store.put_blob(patch)
                    git["diff_size"] = len(patch)
                self.git = git
                self.touched.add("git")
            elif part not in ("mlflow",):
                self.captured[part] = value

    def run_tag(self, key: str, value: str | None) -> None:
        """A custom MLflow tag is also the run's own tag (``owner=ada``)."""
        tags = run_tags(self.tags, key, value)
        if tags != self.tags:
            self.tags = tags
            self.touched.add("tags")

    def batch_update(self) -> dict[str, Any]:
        update = dict(self.update)
        if "tags" in self.touched:
            update["tags"] = sorted(self.tags)
        env: dict[str, Any] = {}
        if "ml" in self.touched:
            env["mlflow"] = self.ml
        if "git" in self.touched:
            env["git"] = self.git
        if env:
            update["env"] = env
        if "config" in self.touched:
            update["config"] = self.config
        for part, value in self.captured.items():
            update.setdefault("env", {})[part] = value
            if part == "seed" and isinstance(value, dict) and isinstance(value.get("seed"), int):
                update["seed"] = value["seed"]
        return update


@router.post("/create")
def create(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, who = sql_store(request), principal(request)
    exp = visible_experiment(request, str(params.get("experiment_id") or "0"))
    if exp["data"].get("lifecycle_stage") == "deleted":
        raise MlflowError(
            "INVALID_STATE", f"The experiment {exp['id']} must be in the 'active' state."
        )
    tags = _tag_list(params)
    tag_map = dict(tags)
    name = params.get("run_name") or tag_map.get("mlflow.runName")
    if not name:
        from ..._names import new_run_name

        name = new_run_name()
    start = json_int(params.get("start_time"), "start_time")
    run_id = uuid.uuid4().hex
    claim = json_str(params, "user_id") or tag_map.get("mlflow.user")
    record: dict[str, Any] = {
        "id": run_id,
        "project": exp["project"],
        "name": str(name)[:250],
        "status": "running",
        "created_at": time.time() if start is None else start / 1000.0,
        "env": {"mlflow": {"experiment_id": exp["id"], "tags": {}, "params": {}}},
    }
    # the author is the caller's identity (the write core sets it); the client's claim
    # stays a tag (mlflow.user)
    core(request).create_run(who.actor, record)
    run = store.get_run(run_id)
    changes = _Changes(run)
    for k, v in tags:
        changes.tag(k, v)
    changes.tag("mlflow.runName", str(name))
    if claim and "mlflow.user" not in tag_map:
        changes.tag("mlflow.user", str(claim))
    changes.absorb_capture(store)
    _write(request, run_id, changes.batch_update())
    return {"run": run_json(store.get_run(run_id), exp["id"])}


@router.get("/get")
def get(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, run = _run(request, params, "read")
    return {"run": run_json(run, _experiment_id(store, run["project"]))}


@router.post("/update")
def update(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, run = _run(request, params, "write")
    _active(run)
    upd: dict[str, Any] = {}
    status = params.get("status")
    if status:
        mapped = STATUS_FROM_MLFLOW.get(str(status).upper())
        if mapped is None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid run status '{status}'")
        upd["status"] = mapped
        if mapped == "running":
            if run.get("status") != "running":
                # start_run(run_id=...) of an ended run: labledger's rule stays (an ended
                # run is sealed into the audit chain), said in MLflow's shape
                raise MlflowError(
                    "INVALID_STATE",
                    f"Run {run['id']} has ended ({run.get('status')}) and cannot be resumed: "
                    "labledger seals an ended run's record (its audit chain entry), so a "
                    "resumed run would change reported numbers after the fact. Start a new "
                    "run (e.g. with tag mlflow.parentRunId) instead; a running run can be "
                    "resumed.",
                )
            upd["ended_at"] = None
    end = json_int(params.get("end_time"), "end_time")
    if end is not None:
        upd["ended_at"] = end / 1000.0
    elif upd.get("status") not in (None, "running") and run.get("ended_at") is None:
        upd["ended_at"] = time.time()
    changes = _Changes(run)
    if params.get("run_name"):
        changes.tag("mlflow.runName", str(params["run_name"]))
    upd.update(changes.batch_update())
    _write(request, run["id"], upd)
    fresh = store.get_run(run["id"])
    return {"run_info": run_json(fresh, _experiment_id(store, run["project"]))["info"]}


def _lifecycle(request: Request, params: dict[str, Any], stage: str) -> Any:
    _store, run = _run(request, params, "write")
    changes = _Changes(run)
    changes.ml["lifecycle_stage"] = stage
    changes.touched.add("ml")
    _write(request, run["id"], changes.batch_update())
    return {}


@router.post("/delete")
def delete(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    return _lifecycle(request, params, "deleted")


@router.post("/restore")
def restore(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    return _lifecycle(request, params, "active")


def _metrics(
    raw: list[Any], prefix: str | None = None
) -> dict[str, tuple[list[int], list[float], list[float]]]:
    """Metrics as the write core takes them; ``prefix`` names the request's field in
    messages (``metrics[0].timestamp``), as MLflow's server does."""
    out: dict[str, tuple[list[int], list[float], list[float]]] = {}
    now = time.time()
    for i, m in enumerate(raw):
        at = f"{prefix}[{i}]." if prefix else ""
        if not isinstance(m, dict):
            raise invalid_value(prefix or "metric", m)
        key = m.get("key")
        if key is not None and not isinstance(key, str):
            raise invalid_value(f"{at}key", key)
        if not key:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{at}key'."
            )
        check_key(key)
        if m.get("timestamp") is None:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"Missing value for required parameter '{at}timestamp'.",
            )
        if "value" not in m:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"Missing value for required parameter 'value' of {key!r}.",
            )
        value = json_float(m["value"], f"{at}value")
        ts = json_int(m.get("timestamp"), f"{at}timestamp")
        step = json_int(m.get("step"), f"{at}step", 0)
        assert step is not None
        if step < 0:  # labledger's rule (Run.log refuses it too): steps count from 0
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"step must be >= 0 for {key!r}, got {step}"
            )
        steps, values, times = out.setdefault(key, ([], [], []))
        steps.append(step)
        values.append(value)
        times.append(now if ts is None else ts / 1000.0)
    return out


@router.post("/log-metric")
def log_metric(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    run_id = _run_id(request, params, "write")
    _write(request, run_id, metrics=_metrics([params]))
    link_model_metrics(request, run_id, [params])
    return {}


def _value(params: dict[str, Any]) -> str:
    """A param's or tag's ``value``: a string (absent or null is empty)."""
    value = params.get("value")
    if value is not None and not isinstance(value, str):
        raise invalid_value("value", value)
    return value or ""


@router.post("/log-parameter")
def log_param(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    _store, run = _run(request, params, "write")
    _active(run)
    changes = _Changes(run)
    changes.param(require_str(params, "key"), _value(params))
    _write(request, run["id"], changes.batch_update())
    return {}


@router.post("/set-tag")
def set_tag(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    _store, run = _run(request, params, "write")
    _active(run)
    changes = _Changes(run)
    changes.tag(require_str(params, "key"), _value(params))
    _write(request, run["id"], changes.batch_update())
    return {}


@router.post("/delete-tag")
def delete_tag(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    _store, run = _run(request, params, "write")
    _active(run)
    key = require_str(params, "key")
    changes = _Changes(run)
    tags = dict(changes.ml.get("tags") or {})
    if key not in tags:
        raise MlflowError(
            "RESOURCE_DOES_NOT_EXIST", f"No tag with name: {key} in run with id {run['id']}"
        )
    del tags[key]
    changes.ml["tags"] = tags
    changes.touched.add("ml")
    changes.run_tag(key, None)
    _write(request, run["id"], changes.batch_update())
    return {}


@router.post("/log-batch")
def log_batch(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    metrics = json_list(params, "metrics")
    for m in metrics:  # before any write: a bad batch changes nothing
        if not isinstance(m, dict):
            raise invalid_value("metrics", m)
    param_list = _tag_list(params, "params")
    tags = _tag_list(params)
    if len(metrics) > MAX_METRICS or len(param_list) > MAX_PARAMS or len(tags) > MAX_TAGS:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"A batch logging request can contain at most {MAX_METRICS} metrics, "
            f"{MAX_PARAMS} params and {MAX_TAGS} tags; got {len(metrics)}, "
            f"{len(param_list)} and {len(tags)}",
        )
    if not param_list and not tags:  # metrics only: no run record to read
        run_id = _run_id(request, params, "write")
        _write(request, run_id, metrics=_metrics(metrics, "metrics"))
        link_model_metrics(request, run_id, metrics)
        return {}
    _store, run = _run(request, params, "write")
    _active(run)
    changes = _Changes(run)
    seen: dict[str, str] = {}
    for k, v in param_list:
        if seen.get(k, v) != v:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"Duplicate parameter key '{k}' with different values"
            )
        seen[k] = v
        changes.param(k, v)
    for k, v in tags:
        changes.tag(k, v)
    changes.absorb_capture(_store)
    _write(request, run["id"], changes.batch_update(), _metrics(metrics, "metrics"))
    link_model_metrics(request, run["id"], metrics)
    return {}


@router.post("/log-inputs")
def log_inputs(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    _store, run = _run(request, params, "write")
    _active(run)
    changes = _Changes(run)
    inputs = list(changes.ml.get("inputs") or [])
    datasets = list(run.get("datasets") or [])
    model_inputs = list(changes.ml.get("model_inputs") or [])
    for m in json_list(params, "models", of=dict):
        if m.get("model_id") and {"model_id": str(m["model_id"])} not in model_inputs:
            model_inputs.append({"model_id": str(m["model_id"])})
    if model_inputs:
        changes.ml["model_inputs"] = model_inputs
    for item in json_list(params, "datasets", of=dict):
        ds = item.get("dataset") or {}
        if not isinstance(ds, dict) or not ds.get("name"):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid dataset input {item!r}")
        context = dict(_tag_list(item)).get("mlflow.data.context")
        if item not in inputs:
            inputs.append(item)
            datasets.append(
                {
                    "name": str(ds["name"]),
                    "digest": ds.get("digest"),
                    "source_type": ds.get("source_type"),
                    "source": ds.get("source"),
                    "context": context,
                }
            )
    changes.ml["inputs"] = inputs
    changes.touched.add("ml")
    upd = changes.batch_update()
    upd["datasets"] = datasets
    _write(request, run["id"], upd)
    return {}


@router.post("/outputs")
def log_outputs(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    _store, run = _run(request, params, "write")
    changes = _Changes(run)
    outputs = list(changes.ml.get("outputs") or [])
    for m in json_list(params, "models"):
        if isinstance(m, dict) and m.get("model_id") and m not in outputs:
            outputs.append(
                {"model_id": str(m["model_id"]), "step": json_int(m.get("step"), "step", 0)}
            )
    changes.ml["outputs"] = outputs
    changes.touched.add("ml")
    _write(request, run["id"], changes.batch_update())
    return {}


@router.post("/log-model")
def log_model(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    _store, run = _run(request, params, "write")
    changes = _Changes(run)
    try:
        history = json.loads((changes.ml.get("tags") or {}).get("mlflow.log-model.history") or "[]")
        history.append(json.loads(str(params.get("model_json") or "{}")))
    except ValueError:
        raise MlflowError("INVALID_PARAMETER_VALUE", "model_json is not JSON") from None
    changes.tag("mlflow.log-model.history", json.dumps(history))
    _write(request, run["id"], changes.batch_update())
    return {}


@router.post("/search")
def search(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store = sql_store(request)
    ids = json_list(params, "experiment_ids", of=str)
    projects: dict[str, str] = {}
    for eid in ids:
        # an experiment the caller may not read answers like a missing one
        exp = visible_experiment(request, str(eid))
        projects[exp["project"]] = exp["id"]
    limit = max_results(params, 1000)
    offset = page_offset(params.get("page_token"))
    if not projects:
        return {"runs": []}
    order_by = translate_order_by(json_list(params, "order_by", of=str))
    flt = combine(
        translate_filter(params.get("filter")), lifecycle_filter(params.get("run_view_type"))
    )
    runs = store.list_runs(
        filter=flt,
        order_by=order_by or None,
        limit=limit + 1,
        offset=offset,
        projects=sorted(projects),
    )
    out: dict[str, Any] = {"runs": [run_json(r, projects[r["project"]]) for r in runs[:limit]]}
    if len(runs) > limit:
        out["next_page_token"] = page_token(offset + limit)
    return out


@metrics_router.get("/get-history")
def get_history(request: Request, params: dict[str, Any] = Depends(read_params)) -> Any:
    store, run = _run(request, params, "read")
    key = require_str(params, "metric_key")
    if key not in (run.get("metrics") or {}):
        return {"metrics": []}
    hist = store.history(run["id"], key)
    limit = json_int(params.get("max_results"), "max_results")
    offset = page_offset(params.get("page_token"))
    end = len(hist) if limit is None else min(len(hist), offset + limit)
    steps = hist.steps[offset:end].tolist()
    values = hist.values[offset:end].tolist()
    times = hist.timestamps[offset:end].tolist()
    out: dict[str, Any] = {
        "metrics": [
            {"key": key, "value": float_to_json(v), "timestamp": _ms(t), "step": s}
            for s, v, t in zip(steps, values, times, strict=True)
        ]
    }
    if end < len(hist):
        out["next_page_token"] = page_token(end)
    return out
