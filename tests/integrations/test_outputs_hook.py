"""``log_outputs`` turns what a network hands back (logits, probabilities, one sigmoid
column) and its targets (indices, one-hot) into a confusion matrix and, for two classes,
PR/ROC curves; regression outputs are skipped. ``log_weight_histograms`` logs one
histogram per tensor, sampled down when large."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import labledger
from labledger.integrations import log_outputs, log_weight_histograms
from labledger.integrations._evaluation import MAX_HISTOGRAM_VALUES, classify_outputs


def test_classify_outputs_reads_logits_probabilities_and_one_hot() -> None:
    y = np.array([0, 1, 1, 0])
    # one column of probabilities; of logits (sigmoid, threshold 0.5 = logit 0)
    true, pred, scores = classify_outputs(y, np.array([[0.2], [0.9], [0.4], [0.6]]))
    assert pred.tolist() == [0, 1, 0, 1] and scores.tolist() == [0.2, 0.9, 0.4, 0.6]
    _, pred, scores = classify_outputs(y.astype(float), np.array([-3.0, 2.0, -0.5, 0.5]))
    assert pred.tolist() == [0, 1, 0, 1] and np.all((scores > 0) & (scores < 1))
    # two logits: the softmax of the second is the score
    _, pred, scores = classify_outputs(y, np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.5], [0, -1]]))
    assert pred.tolist() == [0, 1, 1, 0]
    assert scores[1] == pytest.approx(1 / (1 + np.exp(-3.0)))
    # one-hot targets, three classes: no scores
    onehot = np.eye(3)[[2, 0, 1]]
    true, pred, scores = classify_outputs(onehot, np.array([[0, 0, 5.0], [9, 0, 0], [0, 0, 1.0]]))
    assert true.tolist() == [2, 0, 1] and pred.tolist() == [2, 0, 2] and scores is None
    # regression: float targets, or integers against one output column
    assert classify_outputs(np.array([0.5, 1.7]), np.array([0.4, 1.9])) is None
    assert classify_outputs(np.array([3, 7]), np.array([[2.9], [7.2]])) is None
    assert classify_outputs(np.array([0, 5]), np.array([[0.1, 0.9], [0.3, 0.7]])) is None


def test_log_outputs_and_weight_histograms(store_uri: str) -> None:
    torch: Any = pytest.importorskip("torch")
    with labledger.init("outputs", store=store_uri, capture=False) as run:
        logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [2.0, 0.0, 0.0]])
        assert log_outputs(torch.tensor([0, 1, 2, 2]), logits, labels=["a", "b", "c"], step=3)
        assert log_outputs(np.array([0, 1]), np.array([0.3, 0.8]), prefix="bin", step=3)
        assert not log_outputs(np.array([0.5]), np.array([0.1]), step=3)  # regression
        big = torch.zeros(MAX_HISTOGRAM_VALUES * 2 + 1)
        named = [("fc.weight", torch.ones(4, 3)), ("big", big), ("empty", torch.zeros(0))]
        assert log_weight_histograms(named, step=3, bins=8) == 2
    with labledger.Ledger(store_uri) as ledger:
        media = {m["key"]: m for m in ledger.media(run.id)}
        assert set(media) == {
            "val/confusion_matrix",
            "bin/confusion_matrix",
            "bin/pr_curve",
            "bin/roc_curve",
            "weights/fc.weight",
            "weights/big",
        }
        body = json.loads(ledger.media_bytes(run.id, media["val/confusion_matrix"]))
        assert body == {"labels": ["a", "b", "c"], "matrix": [[1, 0, 0], [0, 1, 0], [1, 0, 1]]}
        assert media["bin/roc_curve"]["meta"]["auc"] == 1.0
        assert media["weights/fc.weight"]["meta"]["count"] == 12
        assert media["weights/big"]["meta"]["count"] <= MAX_HISTOGRAM_VALUES
        assert all(m["step"] == 3 for m in media.values())
    assert not log_outputs([0, 1], [0.2, 0.7])  # no active run: nothing logged
