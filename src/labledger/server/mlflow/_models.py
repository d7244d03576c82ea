"""Metrics linked to an MLflow 3 logged model: a metric logged with ``model_id`` (and its
dataset) is kept on the model's ``mlflow_objects`` row, so ``get_logged_model`` returns
the model's own metrics and ``search_logged_models(datasets=...)`` can filter on them."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request

from ._common import float_to_json, json_float, json_int
from ._experiments import sql_store

__all__ = ["link_model_metrics"]

MODEL = "model"


def link_model_metrics(request: Request, run_id: str, raw: list[Any]) -> None:
    """Record on each named model the metrics (already written to the run) that carry its id."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for m in raw:
        if not isinstance(m, dict) or not m.get("model_id"):
            continue
        ts = json_int(m.get("timestamp"), "timestamp")
        by_model.setdefault(str(m["model_id"]), []).append(
            {
                "key": str(m.get("key")),
                "value": float_to_json(json_float(m.get("value"), "value")),
                "timestamp": int(time.time() * 1000) if ts is None else ts,
                "step": json_int(m.get("step"), "step", 0),
                "run_id": run_id,
                **({"dataset_name": m["dataset_name"]} if m.get("dataset_name") else {}),
                **({"dataset_digest": m["dataset_digest"]} if m.get("dataset_digest") else {}),
            }
        )
    if not by_model:
        return
    store = sql_store(request)
    for model_id, metrics in by_model.items():
        obj = store.mlflow_object(MODEL, model_id)
        if obj is None or obj["data"].get("deleted"):
            continue  # the run's own series has the points; an unknown model links nothing
        data = dict(obj["data"])
        data["metrics"] = list(data.get("metrics") or []) + metrics
        store.put_mlflow_object(MODEL, model_id, obj["project"], data, run_id=obj["run_id"])
