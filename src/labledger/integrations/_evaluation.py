"""The evaluation hooks every integration shares: predictions on evaluation data become
rich results (a confusion matrix; PR and ROC curves for a binary task), a model's
weights become histograms.

>>> from labledger.integrations import log_predictions, log_outputs
>>> log_predictions(y_val, model.predict(X_val), scores=model.predict_proba(X_val)[:, 1],
...                 labels=[0, 1], step=epoch)
>>> log_outputs(y_val, logits, labels=["cat", "dog", "bird"], prefix="val", step=epoch)

``log_outputs`` takes what a network hands back (logits, probabilities, one column of
sigmoid scores) and the targets (class indices or one-hot rows); the Keras callback,
the Lightning ``LabledgerEvaluation`` callback and the Hugging Face callback call it with
the validation predictions their framework hands over; the scikit-learn integration
calls ``log_predictions`` itself on ``X_test``/``y_test``. Regression outputs (targets
that are not class indices) are skipped. Everything here runs at evaluation time, never
per training step, and the encoding (matrix counts, curve points, histogram bins)
happens on the run's writer thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._media import ConfusionMatrix, Curve, Histogram
from ..tracking import Run, active_run
from ._common import guarded

__all__ = [
    "MAX_HISTOGRAMS",
    "MAX_HISTOGRAM_VALUES",
    "classify_outputs",
    "log_outputs",
    "log_predictions",
    "log_weight_histograms",
]

MAX_HISTOGRAMS = 256  # weight tensors histogrammed per call (the first ones, in order)
MAX_HISTOGRAM_VALUES = 1_000_000  # a larger tensor is sampled with a stride


@guarded("evaluation")
def log_predictions(
    y_true: Any,
    y_pred: Any,
    *,
    scores: Any = None,
    labels: Sequence[Any] | None = None,
    prefix: str = "eval",
    step: int | None = None,
    run: Run | None = None,
) -> None:
    """Log ``PREFIX/confusion_matrix`` of ``y_true`` against ``y_pred`` and, given the
    positive class's ``scores`` of a binary task, ``PREFIX/pr_curve`` and
    ``PREFIX/roc_curve``, to ``run`` (default: the active run; none: nothing is logged).
    Never raises: a failure warns once, training goes on."""
    target = run if run is not None else active_run()
    if target is None:
        return
    values: dict[str, Any] = {
        f"{prefix}/confusion_matrix": ConfusionMatrix(y_true=y_true, y_pred=y_pred, labels=labels)
    }
    if scores is not None:
        values[f"{prefix}/pr_curve"] = Curve.pr(y_true, scores)
        values[f"{prefix}/roc_curve"] = Curve.roc(y_true, scores)
    target.log(values, step=step)


def _numpy(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        value = value.numpy()
    return np.asarray(value)


def classify_outputs(y_true: Any, outputs: Any) -> tuple[Any, Any, Any] | None:
    """``(true class indices, predicted class indices, positive-class scores or None)``
    from targets and a network's outputs, or None when they are not a classification.

    Targets: class indices (any shape ``(n,)``/``(n, 1)``) or one-hot rows ``(n, k)``.
    Outputs: one column of scores (probabilities in [0, 1], else logits: threshold 0.5
    after a sigmoid) for a binary task, or ``(n, k)`` logits or probabilities (the
    predicted class: the argmax; with k = 2 the second column's softmax is the score).
    """
    import numpy as np

    out = _numpy(outputs).astype(float)
    true = _numpy(y_true)
    n = len(out)
    if n == 0 or len(true) != n:
        return None
    if true.ndim == 2 and true.shape[1] > 1:  # one-hot
        true = true.argmax(axis=1)
    true = true.reshape(n, -1)[:, 0] if true.ndim > 1 else true
    if not np.issubdtype(true.dtype, np.integer):
        as_float = true.astype(float)
        if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
            return None  # regression targets
        true = as_float.astype(np.int64)
    if out.ndim > 2 or not np.all(np.isfinite(out)):
        return None
    if out.ndim == 1 or out.shape[1] == 1:
        s = out.reshape(n)
        if s.min() < 0.0 or s.max() > 1.0:
            s = 1.0 / (1.0 + np.exp(-np.clip(s, -60, 60)))  # logits
        if not set(np.unique(true).tolist()) <= {0, 1}:
            return None  # one output column but not a binary target: regression
        return true, (s > 0.5).astype(np.int64), s
    k = out.shape[1]
    if true.min() < 0 or true.max() >= k:
        return None
    pred = out.argmax(axis=1).astype(np.int64)
    if k != 2:
        return true, pred, None
    probs = out
    if out.min() < 0.0 or out.max() > 1.0 or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
        e = np.exp(out - out.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
    return true, pred, probs[:, 1]


@guarded("evaluation")
def log_outputs(
    y_true: Any,
    outputs: Any,
    *,
    labels: Sequence[Any] | None = None,
    prefix: str = "val",
    step: int | None = None,
    run: Run | None = None,
) -> bool:
    """Log the confusion matrix (and, for a binary task, PR and ROC curves) of a
    network's ``outputs`` against ``y_true`` (see :func:`classify_outputs`) as
    ``PREFIX/confusion_matrix``, ``PREFIX/pr_curve``, ``PREFIX/roc_curve``.

    ``labels``: the class names, by class index (default: the indices). Returns whether
    anything was logged (False for regression outputs or without a run). Never raises.
    """
    target = run if run is not None else active_run()
    if target is None:
        return False
    got = classify_outputs(y_true, outputs)
    if got is None:
        return False
    true, pred, scores = got
    names: list[Any] | None = None
    if labels is not None:
        names = list(labels)
        if max(int(true.max()), int(pred.max())) >= len(names):
            names = None  # the names do not cover the classes: indices it is
    if names is None:
        k = max(int(true.max()), int(pred.max())) + 1
        names = list(range(max(k, 2)))
        cm = ConfusionMatrix(y_true=true, y_pred=pred, labels=names)
    else:
        import numpy as np

        table = np.asarray(names, dtype=object)
        cm = ConfusionMatrix(y_true=table[true], y_pred=table[pred], labels=names)
    values: dict[str, Any] = {f"{prefix}/confusion_matrix": cm}
    if scores is not None:
        values[f"{prefix}/pr_curve"] = Curve.pr(true, scores)
        values[f"{prefix}/roc_curve"] = Curve.roc(true, scores)
    target.log(values, step=step)
    return True


@guarded("weight histograms")
def log_weight_histograms(
    named: Iterable[tuple[str, Any]],
    *,
    prefix: str = "weights",
    bins: int = 64,
    step: int | None = None,
    run: Run | None = None,
) -> int:
    """Log one ``PREFIX/<name>`` histogram per ``(name, tensor)`` (torch parameters,
    Keras variables, arrays) at ``step``: at most :data:`MAX_HISTOGRAMS` tensors, each
    sampled down to :data:`MAX_HISTOGRAM_VALUES` values with a stride. The values are
    copied now (the weights move on); the binning happens on the writer thread.
    Returns the number logged. Never raises."""
    target = run if run is not None else active_run()
    if target is None:
        return 0
    values: dict[str, Any] = {}
    for name, tensor in named:
        if len(values) >= MAX_HISTOGRAMS:
            break
        flat = _flat_sample(tensor)
        if flat is not None and len(flat):
            values[f"{prefix}/{name}"] = Histogram(flat, bins=bins)
    if values:
        target.log(values, step=step)
    return len(values)


def _flat_sample(tensor: Any) -> Any:
    """A flat CPU numpy copy of a tensor, strided down to MAX_HISTOGRAM_VALUES values."""
    if hasattr(tensor, "detach") and hasattr(tensor, "cpu"):  # torch
        flat = tensor.detach().reshape(-1)
        size = int(flat.numel())
        if size > MAX_HISTOGRAM_VALUES:
            flat = flat[:: -(-size // MAX_HISTOGRAM_VALUES)]
        return _numpy(flat)
    if hasattr(tensor, "numpy") and not hasattr(tensor, "__array_interface__"):
        try:  # a Keras variable
            tensor = tensor.numpy()
        except Exception:
            pass
    arr = _numpy(tensor).reshape(-1)
    if arr.size > MAX_HISTOGRAM_VALUES:
        arr = arr[:: -(-arr.size // MAX_HISTOGRAM_VALUES)]
    return arr
