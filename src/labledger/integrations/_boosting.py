"""What the XGBoost and LightGBM integrations share: importance and model artifacts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import labledger

from ._common import temp_dir, write_json

__all__ = ["coerce_params", "log_booster_file", "log_importance"]


def coerce_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Booster params as JSON values: numeric strings (XGBoost's saved config) become numbers."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, str):
            try:
                num = json.loads(v)
                if isinstance(num, (int, float)) and not isinstance(num, bool):
                    v = num
            except ValueError:
                pass
        out[str(k)] = v
    return out


def log_importance(run: labledger.Run, scores: Mapping[str, float], kind: str) -> None:
    """The importance table, highest first, as JSON artifact ``feature_importance``."""
    scores = {str(k): float(v) for k, v in scores.items()}
    if not scores:
        return
    ranked = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    folder = temp_dir("importance")
    path = write_json(folder / "feature_importance.json", {"type": kind, "importance": ranked})
    run.log_artifact(path, name="feature_importance", kind="feature-importance")


def log_booster_file(run: labledger.Run, save: Any, filename: str) -> None:
    """``save(path)`` the booster into a temporary folder and log it as artifact ``model``."""
    path = temp_dir("booster") / filename
    save(str(path))
    run.log_model(path, name="model")
