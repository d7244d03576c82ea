"""LightGBM: a callback that records a run.

>>> from labledger.integrations.lightgbm import labledger_callback
>>> cb = labledger_callback(project="tabular")
>>> booster = lgb.train(params, dtrain, valid_sets=[dvalid], callbacks=[cb])

Logs the training parameters and the round settings (``num_boost_round``, the early
stopping rounds of ``lgb.early_stopping()`` or ``early_stopping_round``) as config, the
``seed`` (or ``random_state``) as the run's seed, the training and validation sets as
datasets (``train``, ``validation``, ``test`` by their names; the raw data when LightGBM
still holds it, else the constructed binary dataset), every evaluation result per
iteration as ``<data>-<metric>``, and, at the end, ``best_iteration``, ``best_score`` and
``best/<data>-<metric>`` when early stopping kept a best round, the gain importance of
each feature and the booster as artifact ``<project>-<family>-model`` (``model.txt``;
the family: the run's group, else ``lightgbm``). A training stopped early ends before its
last iteration: call ``cb.log_booster(booster)`` afterwards (``autolog()`` does).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ..tracking import Run
from ._boosting import (
    coerce_params,
    log_booster_file,
    log_importance,
    record_boosting_data,
    split_name,
    wrap_train,
)
from ._common import RunSource, caller_locals, guarded, json_config, record_seed, temp_dir

__all__ = ["LabledgerCallback", "labledger_callback"]


class LabledgerCallback:
    """A LightGBM callback (``callbacks=[LabledgerCallback(...)]``)."""

    order = 15  # after LightGBM's record_evaluation (20 is log_evaluation): any order works
    before_iteration = False

    def __init__(
        self,
        run: Run | None = None,
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
    def run(self) -> Run | None:
        return self._source.current

    @guarded("lightgbm")
    def __call__(self, env: Any) -> None:
        run = self._source.get()
        if run is None:
            return
        if not self._started:
            self._started = True
            self._begin(run, env)
        data: dict[str, float] = {}
        for item in env.evaluation_result_list or []:
            data_name, metric, value = item[0], item[1], item[2]
            data[f"{data_name}-{metric}"] = float(value)
        if data:
            run.log(data, step=int(env.iteration))
        if env.iteration + 1 >= env.end_iteration:
            self.log_booster(env.model)

    @guarded("lightgbm begin")
    def _begin(self, run: Run, env: Any) -> None:
        params = coerce_params(dict(env.params or {}))
        call = caller_locals(_is_lightgbm_train) or {}
        settings: dict[str, Any] = {}
        if call.get("num_boost_round") is not None:
            settings["num_boost_round"] = call["num_boost_round"]
        for cb in call.get("callbacks_set") or call.get("callbacks") or []:
            rounds = getattr(cb, "stopping_rounds", None)
            if rounds is not None:
                settings["early_stopping_rounds"] = rounds
                settings["early_stopping_min_delta"] = getattr(cb, "min_delta", 0.0)
                settings["first_metric_only"] = getattr(cb, "first_metric_only", False)
        run.config.update(json_config({**params, **settings}))
        seed = next(
            (
                params[k]
                for k in ("seed", "random_seed", "random_state")
                if params.get(k) is not None
            ),
            None,
        )
        record_seed(run, seed, "lightgbm.seed")
        booster = env.model
        sets: list[tuple[str, Any]] = []
        train = getattr(booster, "train_set", None)
        if train is not None:
            sets.append(("train", _dataset_data(train)))
        names = list(getattr(booster, "name_valid_sets", []) or [])
        for name, ds in zip(names, getattr(booster, "valid_sets", []) or [], strict=False):
            if ds is not train:
                sets.append((split_name(str(name)), _dataset_data(ds)))
        record_boosting_data(run, sets)

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
        if best:  # 1-based in LightGBM; the series step of that round is best - 1
            run.summary["best_iteration"] = int(best)
            run.summary["best_step"] = int(best) - 1
            first = True
            for data_name, metrics in (getattr(booster, "best_score", None) or {}).items():
                for metric, value in metrics.items():
                    if first:
                        run.summary["best_score"] = float(value)
                        first = False
                    run.summary[f"best/{data_name}-{metric}"] = float(value)
        if self._log_model:
            log_booster_file(run, booster.save_model, "model.txt", "lightgbm")

    def finish(self, status: str | None = None) -> None:
        """Finish the run if this callback created it."""
        self._source.finish(status)


def _is_lightgbm_train(code: Any) -> bool:
    return bool(
        code.co_name == "train"
        and code.co_filename.replace("\\", "/").endswith("lightgbm/engine.py")
    )


def _dataset_data(ds: Any) -> Any:
    """What to fingerprint of a ``lightgbm.Dataset``: its raw data and labels while LightGBM
    keeps them (``free_raw_data=False``), the file it was read from, else the constructed
    binary dataset (``save_binary``: the binned features and labels)."""
    raw = getattr(ds, "data", None)
    if isinstance(raw, (str, os.PathLike)):
        return raw
    if raw is not None:
        label = getattr(ds, "label", None)
        return (raw, label) if label is not None else raw
    if getattr(ds, "_handle", None) is None:
        return None
    path = temp_dir("lgb-dataset") / "train.bin"
    try:
        ds.save_binary(str(path))
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        return _Binary(h.hexdigest(), path.stat().st_size)
    finally:
        try:
            path.unlink()
            path.parent.rmdir()
        except OSError:
            pass


class _Binary:
    """A constructed LightGBM dataset, fingerprinted through its binary file (as a path is)."""

    def __init__(self, sha256: str, size: int) -> None:
        self.sha256 = sha256
        self.size = size

    def __labledger_fingerprint__(self) -> dict[str, Any]:
        return {"kind": "lightgbm-binary", "sha256": self.sha256, "size": self.size}


def labledger_callback(run: Run | None = None, **init_kwargs: Any) -> LabledgerCallback:
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
