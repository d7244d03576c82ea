"""The XGBoost and LightGBM callbacks and scikit-learn, on the digits data scikit-learn ships."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import artifacts_of, ledger, one_run, series

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")


def test_xgboost_callback_records_params_rounds_importance_and_booster(
    store: str, example: Any
) -> None:
    _booster, run = example("xgboost_example").main(rounds=10)
    run.finish()  # waits for the artifact uploads too
    rec = one_run(store, "integrations-xgboost")
    assert rec["config"]["max_depth"] == 3
    assert rec["config"]["objective"] == "multi:softprob"
    assert [s for s, _ in series(store, rec["id"], "valid-mlogloss")] == list(range(10))
    assert (
        series(store, rec["id"], "train-mlogloss")[-1][1]
        < series(store, rec["id"], "train-mlogloss")[0][1]
    )
    arts = artifacts_of(store, rec["id"])
    assert arts["integrations-xgboost-xgboost-model"]["kind"] == "model"
    assert arts["feature_importance"]["kind"] == "feature-importance"


def test_lightgbm_callback_records_params_iterations_importance_and_booster(
    store: str, example: Any
) -> None:
    _booster, run = example("lightgbm_example").main(rounds=10)
    run.finish()  # waits for the artifact uploads too
    rec = one_run(store, "integrations-lightgbm")
    assert rec["config"]["num_leaves"] == 7
    assert [s for s, _ in series(store, rec["id"], "valid-multi_logloss")] == list(range(10))
    arts = artifacts_of(store, rec["id"])
    assert set(arts) == {"integrations-lightgbm-lightgbm-model", "feature_importance"}


def test_sklearn_fit_records_params_scores_and_model(store: str, example: Any) -> None:
    import labledger

    model = example("sklearn_example").main()
    run = labledger.active_run()
    assert run is not None
    run.finish()
    rec = one_run(store, "integrations-sklearn")
    assert rec["config"]["estimator_class"] == "RandomForestClassifier"
    assert rec["config"]["n_estimators"] == 20
    assert rec["summary"]["training_score"] == pytest.approx(1.0)
    assert rec["summary"]["test_score"] == pytest.approx(model.score(*_digits_test()))
    model = artifacts_of(store, rec["id"])["integrations-sklearn-RandomForestClassifier-model"]
    assert model["kind"] == "model"


def _digits_test() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    _, X_test, _, y_test = train_test_split(X, y, random_state=0)
    return X_test, y_test


@pytest.mark.slow  # sklearn autolog imports every scikit-learn model to patch it
def test_autolog_boosters_and_sklearn_leave_predictions_unchanged(
    store: str, no_autolog: None
) -> None:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    import labledger

    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]

    def fit_all() -> list[Any]:
        xm = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1, random_state=0).fit(X, y)
        lm = lgb.LGBMClassifier(
            n_estimators=5, num_leaves=7, n_jobs=1, random_state=0, verbose=-1
        ).fit(X, y)
        gs = GridSearchCV(LogisticRegression(max_iter=200), {"C": [0.1, 1.0]}, cv=2).fit(X / 16, y)
        return [xm.predict_proba(X), lm.predict_proba(X), gs.predict_proba(X / 16)]

    plain = fit_all()
    labledger.autolog(["xgboost", "lightgbm", "sklearn"])
    tracked = fit_all()
    assert all(np.array_equal(a, b) for a, b in zip(plain, tracked, strict=False))
    from labledger.integrations._common import finish_kept

    finish_kept()  # the search's run stays open for a score() until the next fit or exit
    every = ledger(store).runs()
    runs = [r for r in every if r["parent_run_id"] is None]
    # one run per outermost fit: the grid search's 4 inner fits and its refit log nothing of
    # their own; its two candidates are child runs
    assert len(runs) == 3, [(r["config"].get("estimator_class"), r["status"]) for r in runs]
    assert len(every) == 5 and all(r["status"] == "finished" for r in every)
    by_kind = {
        (
            "GridSearchCV"
            if r["config"].get("estimator_class") == "GridSearchCV"
            else "lgb"
            if "num_leaves" in r["config"]
            else "xgb"
        ): r
        for r in runs
    }
    assert by_kind["GridSearchCV"]["config"]["best_params"]["C"] in (0.1, 1.0)
    assert "best_cv_score" in by_kind["GridSearchCV"]["summary"]
    assert by_kind["xgb"]["config"]["max_depth"] == 2
    assert "validation_0-mlogloss" not in by_kind["xgb"]["summary"]  # no eval set given
    assert all(r["status"] == "finished" for r in runs)  # each autolog-made run ends with its fit
