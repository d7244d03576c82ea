"""XGBoost: a ``TrainingCallback`` that records a run.

>>> from labledger.integrations.xgboost import LabledgerCallback
>>> booster = xgb.train(params, dtrain, evals=[(dvalid, "valid")],
...                     callbacks=[LabledgerCallback(project="tabular")])

Logs the booster's parameters (from its saved config, or ``params=`` when given) and the
round settings of ``train`` (``num_boost_round``, ``early_stopping_rounds``, ``maximize``)
as config, the booster's ``seed`` as the run's seed, the training matrix and the
evaluation sets as datasets (``train``, ``validation``, ``test`` by their names), every
evaluation metric per boosting round as ``<data>-<metric>`` (the names of
``evals_result``), ``best_iteration`` and ``best_score`` (and ``best/<data>-<metric>``,
each metric at the best round) in the summary when training stopped early or kept a best
round, the gain importance of each feature, and the trained booster as artifact
``<project>-<family>-model`` (``model.json``; the family: the run's group, else
``xgboost``). Works with the scikit-learn wrappers too (``XGBClassifier(callbacks=[...])``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import xgboost

from ..tracking import Run
from ._boosting import (
    coerce_params,
    log_best,
    log_booster_file,
    log_importance,
    record_boosting_data,
    split_name,
    wrap_train,
)
from ._common import RunSource, caller_locals, guarded, json_config, record_seed

__all__ = ["LabledgerCallback"]


class LabledgerCallback(xgboost.callback.TrainingCallback):
    """Log an XGBoost training to a labledger run (``run=None, **init_kwargs`` as everywhere)."""

    def __init__(
        self,
        run: Run | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        log_model: bool = True,
        importance_type: str = "gain",
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        self._source = RunSource(run, init_kwargs, {"job_type": "train"})
        self._params = dict(params) if params is not None else None
        self._log_model = log_model
        self._importance_type = importance_type
        self._evals_log: Mapping[str, Mapping[str, Any]] = {}

    @property
    def run(self) -> Run | None:
        return self._source.current

    @guarded("xgboost before_training")
    def _before(self, model: Any) -> None:
        run = self._source.get()
        if run is None:
            return
        saved = coerce_params(_saved_params(model))
        params = coerce_params(self._params) if self._params is not None else saved
        call = caller_locals(_is_xgboost_train) or {}
        settings = {
            k: call[k]
            for k in ("num_boost_round", "early_stopping_rounds", "maximize")
            if call.get(k) is not None
        }
        run.config.update(json_config({**params, **settings}))
        seed = next(
            (
                p[k]
                for p in (params, saved)
                for k in ("seed", "random_state")
                if p.get(k) is not None
            ),
            None,
        )
        record_seed(run, seed, "xgboost.seed")
        data: list[tuple[str, Any]] = []
        if call.get("dtrain") is not None:
            data.append(("train", call["dtrain"]))
        for item in call.get("evals") or []:
            dm, name = item
            if dm is not call.get("dtrain"):
                data.append((split_name(str(name)), dm))
        record_boosting_data(run, [(n, _matrix_data(dm)) for n, dm in data])

    def before_training(self, model: Any) -> Any:
        self._before(model)
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        self._after_iteration(epoch, evals_log)
        return False  # never stop training

    @guarded("xgboost after_iteration")
    def _after_iteration(self, epoch: int, evals_log: Mapping[str, Mapping[str, Any]]) -> None:
        run = self._source.get()
        if run is None or not evals_log:
            return
        data: dict[str, float] = {}
        for data_name, metrics in evals_log.items():
            for metric, values in metrics.items():
                if values:
                    last = values[-1]
                    data[f"{data_name}-{metric}"] = float(
                        last[0] if isinstance(last, tuple) else last
                    )
        if data:
            run.log(data, step=int(epoch))
        self._evals_log = evals_log

    def after_training(self, model: Any) -> Any:
        self._after_training(model)
        return model

    @guarded("xgboost after_training")
    def _after_training(self, model: Any) -> None:
        run = self._source.get()
        if run is None:
            return
        try:
            scores = model.get_score(importance_type=self._importance_type)
        except Exception:  # linear boosters have no tree importance
            scores = {}
        log_importance(run, scores, self._importance_type)
        best = getattr(model, "best_iteration", None)
        if best is not None:
            history = {
                f"{d}-{m}": [float(v[0] if isinstance(v, tuple) else v) for v in values]
                for d, metrics in self._evals_log.items()
                for m, values in metrics.items()
            }
            log_best(run, int(best), getattr(model, "best_score", None), history)
        if self._log_model:
            log_booster_file(run, model.save_model, "model.json", "xgboost")

    def finish(self, status: str | None = None) -> None:
        """Finish the run if this callback created it."""
        self._source.finish(status)


def _is_xgboost_train(code: Any) -> bool:
    return bool(
        code.co_name == "train"
        and code.co_filename.replace("\\", "/").endswith("xgboost/training.py")
    )


def _matrix_data(dm: Any) -> Any:
    """What a DMatrix holds, to fingerprint: its CSR data and its labels."""
    try:
        return (dm.get_data(), dm.get_label())
    except Exception:  # a QuantileDMatrix keeps no raw data
        return None


def _saved_params(booster: Any) -> dict[str, Any]:
    """The training parameters from the booster's JSON config (objective, eta, depth ...)."""
    cfg = json.loads(booster.save_config())
    learner = cfg.get("learner", {})
    out: dict[str, Any] = {}
    out.update(learner.get("learner_train_param", {}))
    out.update(learner.get("generic_param", {}))
    gb = learner.get("gradient_booster", {})
    out["booster"] = gb.get("name")
    for key in ("tree_train_param", "gbtree_train_param"):
        out.update(gb.get(key, {}) or {})
    out.update(
        (gb.get("updater") or {}).get("tree_train_param", {})
        if isinstance(gb.get("updater"), dict)
        else {}
    )
    obj = learner.get("objective", {})
    if "name" in obj:
        out["objective"] = obj["name"]
    return {k: v for k, v in out.items() if v not in (None, "")}


def _patch() -> None:
    """autolog: every ``xgboost.train`` (the scikit-learn wrappers call it) gets a callback."""
    import xgboost.sklearn
    import xgboost.training

    from ._autolog import log_models

    original = xgboost.training.train
    if getattr(original, "__labledger_patched__", False):
        return
    train = wrap_train(
        original,
        "xgboost",
        lambda params: LabledgerCallback(params=dict(params), log_model=log_models("xgboost")),
    )
    for module in (xgboost.training, xgboost.sklearn, xgboost):
        if getattr(module, "train", None) is original:
            module.train = train  # type: ignore[attr-defined]
