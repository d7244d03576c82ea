"""LightGBM: a callback that records a run.

>>> from labledger.integrations.lightgbm import labledger_callback
>>> cb = labledger_callback(project="tabular")
>>> booster = lgb.train(params, dtrain, valid_sets=[dvalid], callbacks=[cb])

Logs the training parameters as config, every evaluation result per iteration as
``<data>-<metric>``, and, at the last iteration, the gain importance of each feature and
the booster as artifact ``model`` (``model.txt``). A training stopped early ends before
its last iteration: call ``cb.log_booster(booster)`` afterwards (``autolog()`` does).
"""

from __future__ import annotations

from typing import Any

import labledger

from ._boosting import coerce_params, log_booster_file, log_importance, wrap_train
from ._common import RunSource, guarded, json_config

__all__ = ["LabledgerCallback", "labledger_callback"]


class LabledgerCallback:
    """A LightGBM callback (``callbacks=[LabledgerCallback(...)]``)."""

    order = 15  # after LightGBM's record_evaluation (20 is log_evaluation): any order works
    before_iteration = False

    def __init__(
        self,
        run: labledger.Run | None = None,
        *,
        log_model: bool = True,
        importance_type: str = "gain",
        **init_kwargs: Any,
    ) -> None:
        self._source = RunSource(run, init_kwargs, {"job_type": "train"})
        self._log_model = log_model
        self._importance_type = importance_type
        self._started = False
        self._logged_booster = False

    @property
    def run(self) -> labledger.Run | None:
        return self._source.current

    @guarded("lightgbm")
    def __call__(self, env: Any) -> None:
        run = self._source.get()
        if run is None:
            return
        if not self._started:
            self._started = True
            run.config.update(json_config(coerce_params(dict(env.params or {}))))
        data: dict[str, float] = {}
        for item in env.evaluation_result_list or []:
            data_name, metric, value = item[0], item[1], item[2]
            data[f"{data_name}-{metric}"] = float(value)
        if data:
            run.log(data, step=int(env.iteration))
        if env.iteration + 1 >= env.end_iteration:
            self.log_booster(env.model)

    @guarded("lightgbm booster")
    def log_booster(self, booster: Any) -> None:
        """Log ``booster``'s feature importance and (``log_model``) the booster itself, once."""
        run = self._source.get()
        if run is None or self._logged_booster or not hasattr(booster, "feature_importance"):
            return
        self._logged_booster = True
        names = booster.feature_name()
        values = booster.feature_importance(importance_type=self._importance_type)
        log_importance(run, dict(zip(names, values, strict=False)), self._importance_type)
        best = getattr(booster, "best_iteration", 0)
        if best:
            run.summary["best_iteration"] = int(best)
        if self._log_model:
            log_booster_file(run, booster.save_model, "model.txt")

    def finish(self, status: str | None = None) -> None:
        """Finish the run if this callback created it."""
        self._source.finish(status)


def labledger_callback(run: labledger.Run | None = None, **init_kwargs: Any) -> LabledgerCallback:
    """A LightGBM callback logging to ``run`` (the LightGBM style of ``record_evaluation()``)."""
    return LabledgerCallback(run, **init_kwargs)


def _patch() -> None:
    """autolog: every ``lightgbm.train`` (the scikit-learn wrappers call it) gets a callback."""
    import lightgbm
    import lightgbm.engine

    from ._autolog import log_models

    original = lightgbm.engine.train
    if getattr(original, "__labledger_patched__", False):
        return
    train = wrap_train(
        original,
        "lightgbm",
        lambda params: LabledgerCallback(log_model=log_models("lightgbm")),
        # early stopping ends before the last iteration: log the booster training returned
        after=lambda cb, booster: cb.log_booster(booster),
    )
    modules = [lightgbm.engine, lightgbm]
    try:
        import lightgbm.sklearn

        modules.append(lightgbm.sklearn)
    except ImportError:
        pass
    for module in modules:
        if getattr(module, "train", None) is original:
            module.train = train  # type: ignore[attr-defined]
