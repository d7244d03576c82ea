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
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

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

__all__ = ["LabledgerCallback"]

_SKIP_ARGS = ("hub_token", "push_to_hub_token", "push_to_hub_organization")


class LabledgerCallback(TrainerCallback):
    """Log a ``Trainer`` to a labledger run (``run=None, **init_kwargs`` as everywhere)."""

    def __init__(
        self, run: Run | None = None, *, log_model: bool = True, **init_kwargs: Any
    ) -> None:
        self._source = RunSource(run, init_kwargs, {"job_type": "train"})
        self._log_model = log_model
        self._eval_recorded = False

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
        if self._eval_recorded:
            return
        run = self._run(state)
        if run is not None and kw.get("eval_dataloader") is not None:
            self._eval_recorded = record_data(run, "validation", kw["eval_dataloader"])

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
        if not any(isinstance(c, LabledgerCallback) for c in handler.callbacks):
            trainer.add_callback(LabledgerCallback(log_model=log_models("transformers")))

    patch_method(Trainer, "__init__", after=after_init, framework="transformers")
