"""Framework integrations: one module per framework, over labledger's public API.

=============================  =============================================
``integrations.lightning``     ``LabledgerLogger`` (a ``Logger``), ``LabledgerEvaluation``
``integrations.keras``         ``LabledgerCallback`` (a Keras ``Callback``)
``integrations.transformers``  ``LabledgerCallback`` (a ``TrainerCallback``)
``integrations.xgboost``       ``LabledgerCallback`` (a ``TrainingCallback``)
``integrations.lightgbm``      ``labledger_callback()`` (a LightGBM callback)
``integrations.sklearn``       ``fit()`` / ``log_estimator()``
``integrations.optuna``        ``LabledgerCallback`` (a study callback)
``integrations.hydra``         ``LabledgerCallback`` (a Hydra ``Callback``)
=============================  =============================================

Each takes ``run=None, **init_kwargs``: the run to log to, else the active run, else a
new ``labledger.init(**init_kwargs)``. ``labledger.autolog()`` patches them all in.
The framework modules are imported only when used, so ``import labledger`` stays cheap.
``log_predictions(y_true, y_pred, scores=None)`` is the evaluation hook: it logs a
confusion matrix and, for a binary task, PR and ROC curves (docs/results.md);
``log_outputs(y_true, logits_or_probabilities)`` does the same from a network's outputs
(the Keras, Lightning and Hugging Face integrations call it on the validation
predictions their framework hands over), ``log_weight_histograms(named_tensors)`` logs
one histogram per weight tensor.
"""

from __future__ import annotations

from ._autolog import FRAMEWORKS, autolog
from ._common import is_rank_zero
from ._evaluation import log_outputs, log_predictions, log_weight_histograms

__all__ = [
    "FRAMEWORKS",
    "autolog",
    "is_rank_zero",
    "log_outputs",
    "log_predictions",
    "log_weight_histograms",
]
