"""Integrations emit rich results: the scikit-learn integration logs a confusion matrix and
PR/ROC curves on the evaluation data it is given; ``log_predictions`` is the hook the
other frameworks' evaluation loops call."""

from __future__ import annotations

import json

import numpy as np
import pytest

import labledger
from labledger.integrations import log_predictions


def test_sklearn_classifier_logs_confusion_matrix_and_curves(store_uri: str) -> None:
    sklearn = pytest.importorskip("sklearn")
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from labledger.integrations.sklearn import fit

    assert sklearn
    X, y = make_classification(n_samples=200, random_state=0)
    with labledger.init("sk", store=store_uri, capture=False) as run:
        model = fit(
            LogisticRegression(),
            X[:150],
            y[:150],
            X_test=X[150:],
            y_test=y[150:],
            run=run,
            log_model=False,
        )
    with labledger.Ledger(store_uri) as ledger:
        kinds = {k["key"]: k["kind"] for k in ledger.media_keys(run.id)}
        assert kinds == {
            "test/confusion_matrix": "confusion_matrix",
            "test/pr_curve": "curve",
            "test/roc_curve": "curve",
        }
        cm = ledger.media(run.id, "test/confusion_matrix")[0]
        body = json.loads(ledger.media_bytes(run.id, cm))
        assert body["labels"] == ["0", "1"] and np.sum(body["matrix"]) == 50
        assert cm["meta"]["accuracy"] == pytest.approx(model.score(X[150:], y[150:]))
        roc = ledger.media(run.id, "test/roc_curve")[0]["meta"]["auc"]
        from sklearn.metrics import roc_auc_score

        assert roc == pytest.approx(roc_auc_score(y[150:], model.predict_proba(X[150:])[:, 1]))


def test_log_predictions_hook(store_uri: str) -> None:
    with labledger.init("hook", store=store_uri, capture=False) as run:
        log_predictions(["a", "b", "b"], ["a", "b", "a"], prefix="val", step=4)
        log_predictions([0, 1], [0, 1], scores=[0.2, 0.9], prefix="val", step=5)
    with labledger.Ledger(store_uri) as ledger:
        got = [(m["key"], m["step"]) for m in ledger.media(run.id)]
        assert got == [
            ("val/confusion_matrix", 4),
            ("val/confusion_matrix", 5),
            ("val/pr_curve", 5),
            ("val/roc_curve", 5),
        ]
    log_predictions([0], [0])  # no active run: nothing happens
