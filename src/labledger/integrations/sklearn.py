"""scikit-learn: fit an estimator and record it as a run.

>>> from labledger.integrations.sklearn import fit
>>> model = fit(RandomForestClassifier(n_estimators=50), X_train, y_train,
...             X_test=X_test, y_test=y_test, project="digits")

Records ``get_params()`` as config, ``fit_time_s`` and the training score (and, given
``X_test``/``y_test``, the test score) in the summary, the best params and score of a
search (``GridSearchCV``), and the fitted estimator, pickled, as artifact ``model``.
A classifier given ``X_test``/``y_test`` also logs ``test/confusion_matrix`` and, for two
classes, ``test/pr_curve`` and ``test/roc_curve`` (rich results, docs/results.md).
``log_estimator`` does the same for an estimator fitted already.
"""

from __future__ import annotations

import pickle
import time
from typing import Any

import labledger

from ._common import RunSource, guarded, json_config, temp_dir
from ._evaluation import log_predictions

__all__ = ["fit", "log_estimator"]


def fit(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    X_test: Any = None,
    y_test: Any = None,
    run: labledger.Run | None = None,
    log_model: bool = True,
    **init_kwargs: Any,
) -> Any:
    """``estimator.fit(X, y)``, recorded. Returns the fitted estimator."""
    source = RunSource(run, init_kwargs, {"job_type": "train"})
    source.get()  # start the run (and its clock) before fitting
    t0 = time.perf_counter()
    estimator.fit(X, y) if y is not None else estimator.fit(X)
    _record(source, estimator, X, y, X_test, y_test, time.perf_counter() - t0, log_model=log_model)
    return estimator


def log_estimator(
    estimator: Any,
    X: Any = None,
    y: Any = None,
    *,
    X_test: Any = None,
    y_test: Any = None,
    run: labledger.Run | None = None,
    log_model: bool = True,
    **init_kwargs: Any,
) -> labledger.Run | None:
    """Record a fitted ``estimator`` (params, scores on the data given, the model)."""
    source = RunSource(run, init_kwargs, {"job_type": "train"})
    _record(source, estimator, X, y, X_test, y_test, None, log_model=log_model)
    return source.current


@guarded("sklearn")
def _record(
    source: RunSource,
    est: Any,
    X: Any,
    y: Any,
    X_test: Any,
    y_test: Any,
    fit_time: float | None,
    *,
    log_model: bool,
) -> None:
    run = source.get()
    if run is None:
        return
    params = {k: v for k, v in est.get_params(deep=False).items()}
    run.config.update(json_config({**params, "estimator_class": type(est).__name__}))
    if fit_time is not None:
        run.summary["fit_time_s"] = fit_time
    if hasattr(est, "score"):
        if X is not None:
            _score(run, "training_score", est, X, y)
        if X_test is not None:
            _score(run, "test_score", est, X_test, y_test)
    if X_test is not None and y_test is not None and hasattr(est, "classes_"):
        _evaluate(run, est, X_test, y_test)
    if hasattr(est, "best_params_"):
        run.config.update({"best_params": json_config(est.best_params_)})
        run.summary["best_cv_score"] = float(est.best_score_)
    if log_model:
        path = temp_dir("sklearn") / "model.pkl"
        with open(path, "wb") as f:
            pickle.dump(est, f, protocol=pickle.HIGHEST_PROTOCOL)
        run.log_model(path, name="model")


def _evaluate(run: labledger.Run, est: Any, X: Any, y: Any) -> None:
    """A classifier's confusion matrix on the evaluation data it is given; PR and ROC
    curves from the positive class's probability (or decision value) for two classes."""
    import numpy as np

    classes = list(est.classes_)
    log_predictions(y, est.predict(X), labels=classes, prefix="test", run=run)
    if len(classes) != 2:
        return
    if hasattr(est, "predict_proba"):
        scores = est.predict_proba(X)[:, 1]
    elif hasattr(est, "decision_function"):
        scores = est.decision_function(X)
    else:
        return
    positive = np.asarray(y) == classes[1]
    run.log(
        {
            "test/pr_curve": labledger.Curve.pr(positive, scores),
            "test/roc_curve": labledger.Curve.roc(positive, scores),
        }
    )


def _score(run: labledger.Run, key: str, est: Any, X: Any, y: Any) -> None:
    try:
        value = est.score(X, y) if y is not None else est.score(X)
    except Exception:  # unsupervised estimators without a score for this data
        return
    run.summary[key] = float(value)


def _patch() -> None:
    """autolog: the ``fit`` of every scikit-learn estimator records a run (outermost fit only).

    A run the script started is used; else each fit gets its own run, finished after it.
    """
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    from ._autolog import autolog_scope, enabled, log_models

    # models and searches, not every scaler or encoder a pipeline fits on the way
    classes = [c for _, c in all_estimators(type_filter=["classifier", "regressor", "cluster"])]
    for cls in (*classes, Pipeline, GridSearchCV, RandomizedSearchCV):
        # patch fit where it is defined (BaseSearchCV.fit, BaseForest.fit ...)
        owner = next((k for k in cls.__mro__ if "fit" in k.__dict__), None)
        if owner is None:
            continue
        original = owner.__dict__["fit"]
        if getattr(original, "__labledger_patched__", False):
            continue
        owner.fit = _wrap_fit(original, autolog_scope, enabled, log_models)


def _wrap_fit(original: Any, autolog_scope: Any, enabled: Any, log_models: Any) -> Any:
    import functools

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not enabled("sklearn"):
            return original(self, *args, **kwargs)
        with autolog_scope("sklearn", "xgboost", "lightgbm") as outer:
            if not outer:
                return original(self, *args, **kwargs)
            X = args[0] if args else kwargs.get("X")
            y = args[1] if len(args) > 1 else kwargs.get("y")
            source: RunSource | None = None
            try:
                source = RunSource(labledger.active_run(), {}, {"job_type": "train"})
                if source.current is None:
                    source = RunSource(None, {"job_type": "train"})
                source.get()
            except Exception:
                source = None
            t0 = time.perf_counter()
            try:
                result = original(self, *args, **kwargs)
            except BaseException:
                if source is not None and source.owned:
                    _safe_finish(source, "failed")
                raise
            if source is not None:
                _record(
                    source,
                    self,
                    X,
                    y,
                    None,
                    None,
                    time.perf_counter() - t0,
                    log_model=log_models("sklearn"),
                )
                if source.owned:
                    _safe_finish(source, None)
            return result

    fit.__labledger_patched__ = True  # type: ignore[attr-defined]
    return fit


@guarded("sklearn finish")
def _safe_finish(source: RunSource, status: str | None) -> None:
    source.finish(status)
