"""The evaluation hook every integration shares: predictions on evaluation data become
rich results (a confusion matrix; PR and ROC curves for a binary task).

>>> from labledger.integrations import log_predictions
>>> log_predictions(y_val, model.predict(X_val), scores=model.predict_proba(X_val)[:, 1],
...                 labels=[0, 1], step=epoch)

Keras, Lightning and the Hugging Face Trainer hand their callbacks no predictions, so
call it from your evaluation loop (``on_validation_epoch_end``, ``compute_metrics``, a
Keras callback's ``on_epoch_end`` with your validation data); the scikit-learn
integration calls it itself on ``X_test``/``y_test``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._media import ConfusionMatrix, Curve
from ..tracking import Run, active_run
from ._common import guarded

__all__ = ["log_predictions"]


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
