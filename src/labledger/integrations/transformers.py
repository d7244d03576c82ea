"""Hugging Face Transformers: a ``TrainerCallback`` that records a run.

>>> from labledger.integrations.transformers import LabledgerCallback
>>> trainer = Trainer(model, args, train_dataset=ds, callbacks=[LabledgerCallback(project="nlp")])

``TrainingArguments`` (as ``args.*``) and the model's config (as ``model.*``) become the
config; ``TrainingArguments(seed=...)`` the run's seed; the data behind the train and
evaluation loaders the datasets ``train`` and ``validation`` (a ``datasets.Dataset`` by
its fingerprint, tensors and arrays by their bytes); every ``on_log`` record is logged at
the global step (``train/loss``, ``train/learning_rate``, ``eval/loss`` ...); the final
model is saved with ``save_pretrained`` and logged as artifact ``<project>-<family>-model``
(the family: the run's group, else the model's ``model_type``) when training ends. Only the world
process zero records. Set ``report_to="none"`` to keep Transformers' own integrations off.

Rich results (docs/results.md): the Trainer hands its evaluation predictions only to
``compute_metrics``; wrap yours (or none) with the callback's ``compute_metrics`` and
each evaluation logs the confusion matrix and, for a binary task, PR and ROC curves of
the ``EvalPrediction`` (``eval/confusion_matrix``, ``eval/pr_curve``,
``eval/roc_curve``; ``test/*`` after ``trainer.predict``) at the global step, the step
of ``eval/*`` metrics. Under ``labledger.autolog()`` a Trainer's own ``compute_metrics``
is wrapped for you. ``log_histograms=True`` logs a histogram of every parameter
(``weights/<name>``) at each epoch's end.

>>> cb = LabledgerCallback(labels=["neg", "pos"])
>>> trainer = Trainer(model, args, compute_metrics=cb.compute_metrics(my_metrics),
...                   callbacks=[cb])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from .._exceptions import UsageError
from ..tracking import Run
from ._common import (
    RunSource,
    guarded,
    json_config,
    model_name,
    numeric_items,
    record_data,
    record_seed,
    temp_dir,
)
from ._evaluation import log_outputs, log_weight_histograms

__all__ = ["LabledgerCallback"]

_SKIP_ARGS = ("hub_token", "push_to_hub_token", "push_to_hub_organization")


class LabledgerCallback(TrainerCallback):
    """Log a ``Trainer`` to a labledger run (``run=None, **init_kwargs`` as everywhere)."""

    def __init__(
        self,
        run: Run | None = None,
        *,
        log_model: bool = True,
        labels: list[Any] | None = None,
        max_predictions: int = 10_000,
        log_histograms: bool = False,
        **init_kwargs: Any,
    ) -> None:
        if (
            isinstance(max_predictions, bool)
            or not isinstance(max_predictions, int)
            or max_predictions < 0
        ):
            raise UsageError("max_predictions must be an int >= 0")
        self._source = RunSource(run, init_kwargs, {"job_type": "train"})
        self._log_model = log_model
        self._eval_recorded = False
        self._labels = labels
        self._max_pred = max_predictions
        self._histograms = log_histograms
        self._parts: list[tuple[Any, Any]] = []  # (targets, outputs) kept for on_evaluate
        self._kept = 0

    def compute_metrics(
        self, fn: Callable[..., dict[str, Any]] | None = None
    ) -> Callable[..., dict[str, Any]]:
        """A ``compute_metrics`` for the Trainer that keeps the evaluation predictions
        (at most ``max_predictions``) for this callback, logged when
        ``on_evaluate``/``on_predict`` fires, and returns ``fn(eval_prediction)`` (``{}``
        without ``fn``). With ``batch_eval_metrics=True`` (one batch a call, with
        ``compute_result=``) the batches are gathered."""
        if getattr(fn, "__labledger_callback__", None) is self:
            return fn  # type: ignore[return-value]

        def compute(pred: Any, **kwargs: Any) -> dict[str, Any]:
            self._keep(pred, batch="compute_result" in kwargs)
            return fn(pred, **kwargs) if fn is not None else {}

        compute.__labledger_callback__ = self  # type: ignore[attr-defined]
        compute.__wrapped__ = fn  # type: ignore[attr-defined]
        return compute

    @guarded("transformers predictions")
    def _keep(self, pred: Any, *, batch: bool = False) -> None:
        if not batch:  # the whole evaluation at once
            self._parts, self._kept = [], 0
        outputs = getattr(pred, "predictions", None)
        target = getattr(pred, "label_ids", None)
        if isinstance(outputs, (list, tuple)):  # (logits, hidden states ...): the logits
            outputs = outputs[0] if outputs else None
        if isinstance(target, (list, tuple)):
            target = target[0] if target else None
        take = self._max_pred - self._kept
        if outputs is None or target is None or take <= 0:
            return
        if hasattr(outputs, "detach"):  # batch_eval_metrics hands over tensors
            outputs, target = outputs.detach().cpu(), target.detach().cpu()
        self._parts.append((target[:take], outputs[:take]))
        self._kept += len(outputs[:take])

    def _log_pending(self, state: Any, prefix: str) -> None:
        parts, self._parts, self._kept = self._parts, [], 0
        run = self._run(state)
        if parts and run is not None:
            import numpy as np

            from ._evaluation import _numpy

            log_outputs(
                np.concatenate([_numpy(t) for t, _ in parts]),
                np.concatenate([_numpy(o) for _, o in parts]),
                labels=self._labels,
                prefix=prefix,
                step=int(state.global_step),
                run=run,
            )

    @property
    def run(self) -> Run | None:
        return self._source.current

    def _run(self, state: Any) -> Run | None:
        if not getattr(state, "is_world_process_zero", True):
            return None
        return self._source.get()

    @guarded("transformers on_train_begin")
    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        run = self._run(state)
        if run is None:
            return
        targs = {k: v for k, v in args.to_dict().items() if k not in _SKIP_ARGS}
        cfg: dict[str, Any] = {"args": json_config(targs)}
        mcfg = getattr(model, "config", None)
        if mcfg is not None and hasattr(mcfg, "to_dict"):
            cfg["model"] = json_config(mcfg.to_dict())
        if model is not None and hasattr(model, "num_parameters"):
            cfg.setdefault("model", {})["num_parameters"] = int(model.num_parameters())
        run.config.update(cfg)
        record_seed(run, getattr(args, "seed", None), "transformers.TrainingArguments.seed")
        record_data(run, "train", kw.get("train_dataloader"))
        self._eval_recorded = record_data(run, "validation", kw.get("eval_dataloader"))

    @guarded("transformers on_evaluate")
    def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._log_pending(state, "eval")
        if self._eval_recorded:
            return
        run = self._run(state)
        if run is not None and kw.get("eval_dataloader") is not None:
            self._eval_recorded = record_data(run, "validation", kw["eval_dataloader"])

    @guarded("transformers on_predict")
    def on_predict(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any
    ) -> None:
        self._log_pending(state, "test")

    @guarded("transformers histograms")
    def on_epoch_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        if not self._histograms or model is None:
            return
        run = self._run(state)
        if run is not None:
            log_weight_histograms(model.named_parameters(), step=int(state.global_step), run=run)

    @guarded("transformers on_log")
    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        run = self._run(state)
        if run is None or not logs:
            return
        data: dict[str, float] = {}
        for k, v in numeric_items(logs).items():
            if k.startswith("eval_"):
                data[f"eval/{k[5:]}"] = v
            elif k.startswith("test_"):
                data[f"test/{k[5:]}"] = v
            elif k.startswith("train_"):  # the end-of-training record: mean loss, runtime
                run.summary[k] = v
            elif k in ("epoch", "total_flos"):
                data[k] = v
            else:
                data[f"train/{k}"] = v
        if data:
            run.log(data, step=int(state.global_step))

    @guarded("transformers on_train_end")
    def on_train_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        run = self._run(state)
        if run is None:
            return
        run.summary["global_step"] = int(state.global_step)
        best = getattr(state, "best_metric", None)
        if best is not None:
            run.summary["best_metric"] = float(best)
        if self._log_model and model is not None and hasattr(model, "save_pretrained"):
            folder = temp_dir("transformers") / "model"
            model.save_pretrained(folder)
            family = getattr(getattr(model, "config", None), "model_type", None)
            run.log_model(folder, name=model_name(run, family or type(model).__name__))

    def finish(self, status: str | None = None) -> None:
        """Finish the run if this callback created it."""
        self._source.finish(status)


def _patch() -> None:
    """autolog: every ``Trainer`` built from now on gets a LabledgerCallback."""
    from transformers import Trainer

    from ._autolog import log_models, patch_method

    def after_init(trainer: Any, *args: Any, **kwargs: Any) -> None:
        handler = trainer.callback_handler
        cb = next((c for c in handler.callbacks if isinstance(c, LabledgerCallback)), None)
        if cb is None:
            cb = LabledgerCallback(log_model=log_models("transformers"))
            trainer.add_callback(cb)
        # only a Trainer that gathers predictions anyway (it has compute_metrics) is wrapped
        if getattr(trainer, "compute_metrics", None) is not None:
            trainer.compute_metrics = cb.compute_metrics(trainer.compute_metrics)

    patch_method(Trainer, "__init__", after=after_init, framework="transformers")
