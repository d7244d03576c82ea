"""scikit-learn: fit an estimator and record it as a run.

>>> from labledger.integrations.sklearn import fit
>>> model = fit(RandomForestClassifier(n_estimators=50, random_state=0), X_train, y_train,
...             X_test=X_test, y_test=y_test, project="digits")

Records ``get_params()`` as config, the estimator's ``random_state`` (the first integer one,
nested estimators included) as the run's seed, the data as datasets ``train`` and
``test`` (fingerprints of the arrays or frames), ``fit_time_s``, the score and the
classification metrics (accuracy, precision, recall, F1, ROC AUC, log loss; weighted over
classes) or regression metrics (MSE, RMSE, MAE, R²) on the training data
(``training_*``) and the test data (``test_*``) in the summary. A search (``GridSearchCV``,
``RandomizedSearchCV``) also records its best params and score, one child run per
candidate (``job_type="candidate"``, best ranked first, at most ``MAX_CANDIDATES``) and
``cv_results_`` as a table artifact (CSV and JSON). The fitted estimator, pickled, is the
artifact ``<project>-<family>-model`` (the family: the run's group, else the estimator's
class). ``log_estimator`` does the same for an estimator fitted already. Under
``autolog()``, ``score(X, y)`` after a fit is recorded on the fit's run too (``test_*``).
A classifier given ``X_test``/``y_test`` also logs ``test/confusion_matrix`` and, for two
classes, ``test/pr_curve`` and ``test/roc_curve`` (rich results, docs/results.md).
"""

from __future__ import annotations

import csv
import json
import math
import pickle
import time
import weakref
from typing import Any

from .._media import Curve
from ..tracking import Run, active_run, init
from ._common import (
    RunSource,
    finish_kept,
    guarded,
    json_config,
    keep_open,
    model_name,
    record_data,
    record_seed,
    temp_dir,
)
from ._evaluation import log_predictions

__all__ = ["MAX_CANDIDATES", "fit", "log_estimator"]

MAX_CANDIDATES = 100  # child runs a search records (best ranked first)

# the run an autologged fit recorded, per estimator (score() after fit goes there)
_RUN_OF: weakref.WeakKeyDictionary[Any, tuple[Run, int]] = weakref.WeakKeyDictionary()


def fit(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    X_test: Any = None,
    y_test: Any = None,
    run: Run | None = None,
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
    run: Run | None = None,
    log_model: bool = True,
    **init_kwargs: Any,
) -> Run | None:
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
    seed = _random_state(est)
    record_seed(run, seed, "sklearn.random_state")
    train = (X, y) if y is not None else X
    if X is not None:
        record_data(run, "train", train)
        try:
            _RUN_OF[est] = (run, id(X))
        except TypeError:
            pass
    if X_test is not None:
        record_data(run, "test", (X_test, y_test) if y_test is not None else X_test)
    if fit_time is not None:
        run.summary["fit_time_s"] = fit_time
    if X is not None:
        _evaluate(run, "training", est, X, y)
    if X_test is not None:
        _evaluate(run, "test", est, X_test, y_test)
    if X_test is not None and y_test is not None and hasattr(est, "classes_"):
        _evaluate_media(run, est, X_test, y_test)
    if hasattr(est, "best_params_"):
        run.config.update({"best_params": json_config(est.best_params_)})
        run.summary["best_cv_score"] = float(est.best_score_)
    if hasattr(est, "cv_results_"):
        _log_search(run, est, seed, train if X is not None else None)
    if log_model:
        path = temp_dir("sklearn") / "model.pkl"
        with open(path, "wb") as f:
            pickle.dump(est, f, protocol=pickle.HIGHEST_PROTOCOL)
        run.log_model(path, name=model_name(run, _family(est)))


def _evaluate_media(run: Run, est: Any, X: Any, y: Any) -> None:
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
            "test/pr_curve": Curve.pr(positive, scores),
            "test/roc_curve": Curve.roc(positive, scores),
        }
    )


def _family(est: Any) -> str:
    inner = getattr(est, "estimator", None)  # a search: the family of what it searches
    if inner is not None and hasattr(est, "cv_results_"):
        return type(inner).__name__
    return type(est).__name__


def _random_state(est: Any) -> int | None:
    """The estimator's ``random_state`` when it is an int (searches and pipelines: the
    first integer one among the nested estimators' params)."""
    try:
        params = est.get_params(deep=True)
    except Exception:
        return None
    for key in sorted(params, key=lambda k: (k.count("__"), k)):
        if key == "random_state" or key.endswith("__random_state"):
            value = params[key]
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def _evaluate(run: Run, prefix: str, est: Any, X: Any, y: Any) -> None:
    """``<prefix>_score`` and the metrics of ``est`` on (X, y), into the summary."""
    if hasattr(est, "score"):
        try:
            value = est.score(X, y) if y is not None else est.score(X)
            run.summary[f"{prefix}_score"] = float(value)
        except Exception:  # unsupervised estimators without a score for this data
            pass
    if y is None:
        return
    for key, value in _metrics(est, X, y).items():
        if math.isfinite(value):
            run.summary[f"{prefix}_{key}"] = value


def _metrics(est: Any, X: Any, y: Any) -> dict[str, float]:
    """The metrics of ``est`` on (X, y); sklearn's per-call argument validation skipped
    (the inputs are the ones ``fit``/``score`` accepted), a third of their cost."""
    import sklearn

    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        return _metrics_checked(est, X, y)


def _metrics_checked(est: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    if is_classifier(est):
        import numpy as np

        pred = est.predict(X)
        out["accuracy"] = float(np.mean(np.asarray(pred) == np.asarray(y)))
        # one pass for the three (each metric function re-validates its input)
        p, r, f, _ = m.precision_recall_fscore_support(y, pred, average="weighted", zero_division=0)
        out.update(precision=float(p), recall=float(r), f1=float(f))
        if hasattr(est, "predict_proba"):
            try:
                proba = est.predict_proba(X)
                classes = list(getattr(est, "classes_", []))
                if proba.shape[1] == 2:
                    out["roc_auc"] = float(m.roc_auc_score(y, proba[:, 1]))
                else:
                    out["roc_auc"] = float(
                        m.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
                    )
                out["log_loss"] = float(m.log_loss(y, proba, labels=classes))
            except Exception:  # a class missing from y, or no probabilities for this model
                pass
    elif is_regressor(est):
        pred = est.predict(X)
        mse = float(m.mean_squared_error(y, pred))
        out.update(
            mse=mse,
            rmse=math.sqrt(mse),
            mae=float(m.mean_absolute_error(y, pred)),
            r2=float(m.r2_score(y, pred)),
        )
    return out


def _log_search(run: Run, est: Any, seed: int | None, train: Any) -> None:
    """One child run per candidate of a search, and ``cv_results_`` as a table artifact."""
    res = est.cv_results_
    cand = list(res.get("params") or [])
    rank_key = next((k for k in sorted(res) if k.startswith("rank_test_")), None)
    order = list(range(len(cand)))
    if rank_key is not None:
        order.sort(key=lambda i: (int(res[rank_key][i]), i))
    run.summary["candidates"] = len(cand)
    for i in order[:MAX_CANDIDATES]:
        child = init(
            project=run.project,
            name=f"{run.name}-candidate-{i}",
            parent_run_id=run.id,
            group=run.group,
            job_type="candidate",
            config=json_config({**cand[i], "candidate": i}),
            capture=False,
            system_metrics=False,
            console=False,
        )
        try:
            record_seed(child, seed, "sklearn.random_state")
            if train is not None:
                record_data(child, "train", train)  # hashed once: the same objects
            for key, values in res.items():
                if key == "params" or key.startswith("param_"):
                    continue
                v = _number(values[i])
                if v is not None:
                    child.summary[key] = v
        finally:
            child.finish()
    folder = temp_dir("cv-results")
    columns = [k for k in res if k != "params"]
    rows = [{k: _cell(res[k][i]) for k in columns} for i in range(len(cand))]
    with open(folder / "cv_results.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (folder / "cv_results.json").write_text(
        json.dumps({"columns": columns, "rows": rows}, indent=1), encoding="utf-8"
    )
    run.log_artifact(folder, name=model_name(run, _family(est), "cv-results"), kind="table")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _cell(value: Any) -> Any:
    x = _number(value)
    if x is not None or value is None:
        return x
    return str(value)  # a parameter value (a string, an estimator, a masked entry "--")


@guarded("sklearn score")
def _record_score(est: Any, X: Any, y: Any, value: Any) -> None:
    """``est.score(X, y)`` after an autologged fit: on the fit's run, as ``test_*``."""
    hit = _RUN_OF.get(est)
    if hit is None:
        return
    run, train_id = hit
    if run.status != "running":
        return
    prefix = "training" if id(X) == train_id else "test"
    if prefix == "test":
        record_data(run, "test", (X, y) if y is not None else X)
    run.summary[f"{prefix}_score"] = float(value)
    if y is not None:
        for key, v in _metrics(est, X, y).items():
            if math.isfinite(v):
                run.summary[f"{prefix}_{key}"] = v


def _patch() -> None:
    """autolog: the ``fit`` of every scikit-learn estimator records a run (outermost fit only),
    and ``score()`` after it records its result on that run.

    A run the script started is used; else each fit gets its own run, which stays open
    for a ``score()`` on held-out data until the next autologged fit starts (or the
    process ends), then finishes.
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
        if owner is not None:
            original = owner.__dict__["fit"]
            if not getattr(original, "__labledger_patched__", False):
                owner.fit = _wrap_fit(original, autolog_scope, enabled, log_models)
        owner = next((k for k in cls.__mro__ if "score" in k.__dict__), None)
        if owner is not None:
            original = owner.__dict__["score"]
            if not getattr(original, "__labledger_patched__", False):
                owner.score = _wrap_score(original, autolog_scope, enabled)


def _wrap_score(original: Any, autolog_scope: Any, enabled: Any) -> Any:
    import functools

    @functools.wraps(original)
    def score(self: Any, X: Any, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not enabled("sklearn"):
            return original(self, X, y, *args, **kwargs)
        # a fit scoring itself (a search's candidates) is not a post-fit score
        with autolog_scope("sklearn-score", "sklearn") as outer:
            value = original(self, X, y, *args, **kwargs)
        if outer and self in _RUN_OF:
            _record_score(self, X, y, value)
        return value

    score.__labledger_patched__ = True  # type: ignore[attr-defined]
    return score


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
                finish_kept()
                source = RunSource(active_run(), {}, {"job_type": "train"})
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
                    keep_open(source)  # finished by the next fit, or at exit
            return result

    fit.__labledger_patched__ = True  # type: ignore[attr-defined]
    return fit


@guarded("sklearn finish")
def _safe_finish(source: RunSource, status: str | None) -> None:
    source.finish(status)
