"""What the XGBoost and LightGBM integrations share: importance, model artifacts and the
autolog wrapper around their ``train`` functions."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ..tracking import Run
from ._common import guarded, model_name, record_data, temp_dir, write_json

__all__ = [
    "coerce_params",
    "log_best",
    "log_booster_file",
    "log_importance",
    "record_boosting_data",
    "split_name",
    "wrap_train",
]


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


def log_importance(run: Run, scores: Mapping[str, float], kind: str) -> None:
    """The importance table, highest first, as JSON artifact ``feature_importance``."""
    scores = {str(k): float(v) for k, v in scores.items()}
    if not scores:
        return
    ranked = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    folder = temp_dir("importance")
    path = write_json(folder / "feature_importance.json", {"type": kind, "importance": ranked})
    run.log_artifact(path, name="feature_importance", kind="feature-importance")


def log_booster_file(run: Run, save: Any, filename: str, family: str) -> None:
    """``save(path)`` the booster into a temporary folder and log it as the family's model."""
    path = temp_dir("booster") / filename
    save(str(path))
    run.log_model(path, name=model_name(run, family))


def split_name(name: str) -> str:
    """An evaluation set's name as a dataset name: ``train``, ``validation``, ``test`` or itself."""
    low = name.lower()
    if low.startswith("train") or low == "training":
        return "train"
    if "test" in low:
        return "test"
    if "val" in low or "eval" in low or "dev" in low:
        return "validation"
    return name


def record_boosting_data(run: Run, data: list[tuple[str, Any]]) -> None:
    """Fingerprint each (name, data) as a dataset; a second set of one name gets a suffix."""
    seen: dict[str, int] = {}
    for name, item in data:
        if item is None:
            continue
        n = seen.get(name, 0)
        seen[name] = n + 1
        record_data(run, name if n == 0 else f"{name}_{n}", item)


def log_best(run: Run, best: int, score: Any, history: Mapping[str, list[float]]) -> None:
    """``best_iteration``, ``best_score`` and each metric at the best round, in the summary."""
    run.summary["best_iteration"] = int(best)
    if score is not None:
        try:
            run.summary["best_score"] = float(score)
        except (TypeError, ValueError):
            pass
    for key, values in history.items():
        if 0 <= best < len(values):
            run.summary[f"best/{key}"] = float(values[best])


@guarded("boosting finish")
def _finish_quietly(cb: Any, status: str | None) -> None:
    cb.finish(status)


def wrap_train(
    original: Callable[..., Any],
    framework: str,
    make_callback: Callable[[Any], Any],
    after: Callable[[Any, Any], None] | None = None,
) -> Callable[..., Any]:
    """autolog's replacement for a boosting library's ``train(params, ...)``.

    The outermost call (not one made by the scikit-learn wrappers inside another tracked
    fit) gets ``make_callback(params)`` appended to its callbacks; the run it made ends
    with the training (``failed`` when training raises). ``after(cb, booster)`` runs on
    success before the run ends. Tracking failures never reach training."""
    from ._autolog import autolog_scope, enabled

    def train(params: Any, *args: Any, **kwargs: Any) -> Any:
        if not enabled(framework):
            return original(params, *args, **kwargs)
        with autolog_scope(framework, "sklearn") as outer:
            cb = None
            if outer:
                try:
                    cb = make_callback(params)
                    kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), cb]
                except Exception:
                    cb = None
            try:
                booster = original(params, *args, **kwargs)
            except BaseException:
                if cb is not None:
                    _finish_quietly(cb, "failed")
                raise
            if cb is not None:
                if after is not None:
                    after(cb, booster)
                _finish_quietly(cb, None)  # a run autolog made for this training ends with it
            return booster

    train.__labledger_patched__ = True  # type: ignore[attr-defined]
    train.__wrapped__ = original  # type: ignore[attr-defined]
    return train
