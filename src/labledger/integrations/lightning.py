"""PyTorch Lightning: a ``Logger`` that records a run.

>>> from labledger.integrations.lightning import LabledgerLogger
>>> trainer = lightning.Trainer(logger=LabledgerLogger(project="mnist"))

Hyperparameters (``save_hyperparameters()``, ``log_hyperparams``) become the run's config,
and the Trainer's settings (``max_epochs``, ``precision``, ``accumulate_grad_batches``,
``gradient_clip_val`` ...) its ``config.trainer``; the seed of ``L.seed_everything``
(``PL_GLOBAL_SEED``, called before or after ``init``) the run's seed; the data behind the
train, validation and test loaders the datasets ``train``, ``validation`` and ``test``
(tensors, arrays, HF datasets, or the file a dataset reads). ``self.log(...)`` metrics
are its series at the trainer's global step (``epoch`` included), and checkpoints saved
by ``ModelCheckpoint`` model artifacts ``<project>-<family>-model`` (the family: the
run's group, else the LightningModule's class). Only global rank zero creates a run. ``finalize()`` flushes but never finishes the run, so
``logger.experiment.log_model(...)`` still works after ``trainer.fit``; the run ends with
the process (or ``logger.finish()``).

Rich results (docs/results.md): the ``LabledgerEvaluation`` callback takes what
``validation_step`` returns (a dict with ``"preds"`` — logits, probabilities or one
column of scores — and ``"target"`` — class indices or one-hot rows; the framework
hands it to callbacks as ``outputs``) and logs, after each validation epoch, the
confusion matrix and, for a binary task, PR and ROC curves (``val/confusion_matrix``,
``val/pr_curve``, ``val/roc_curve``) at the trainer's global step, the step of
``val/*`` metrics. ``log_histograms=True`` logs a histogram of every parameter
(``weights/<name>``) after each training epoch.

>>> def validation_step(self, batch, batch_idx):
...     x, y = batch
...     logits = self(x)
...     self.log("val/loss", F.cross_entropy(logits, y))
...     return {"preds": logits, "target": y}
>>> trainer = L.Trainer(logger=LabledgerLogger(), callbacks=[LabledgerEvaluation()])
"""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Mapping
from typing import Any, Literal

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from .._exceptions import UsageError
from ..tracking import Run, active_run
from ._common import (
    RunSource,
    guarded,
    json_config,
    model_name,
    numeric_items,
    record_data,
    record_seed,
)
from ._evaluation import log_outputs, log_weight_histograms

__all__ = ["LabledgerEvaluation", "LabledgerLogger"]


class LabledgerLogger(Logger):
    """A Lightning logger writing to a labledger run.

    ``run``: log to this run (else the active run, else a new ``labledger.init(**init_kwargs)``).
    ``log_model``: ``True`` logs the best (else last) checkpoint as artifact ``model`` when
    fitting ends, ``"all"`` every checkpoint as it is saved, ``False`` none.
    """

    def __init__(
        self,
        run: Run | None = None,
        *,
        log_model: bool | Literal["all"] = True,
        prefix: str = "",
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        if log_model not in (True, False, "all"):
            raise UsageError(f"log_model must be True, False or 'all', not {log_model!r}")
        self._source = RunSource(run, init_kwargs, {"job_type": "train"})
        self._log_model = log_model
        self._prefix = prefix
        self._logged_ckpts: set[str] = set()
        self._checkpoint_callback: Any = None
        self._trainer: Any = None
        self._family: str | None = None

    # -- Logger interface ------------------------------------------------------------

    @property
    def name(self) -> str | None:
        run = self._source.get()
        return run.project if run is not None else "labledger"

    @property
    def version(self) -> str | None:
        run = self._source.get()
        return run.id[:8] if run is not None else None

    @property
    @rank_zero_experiment
    def experiment(self) -> Run:
        """The labledger run (created on first use, on rank zero only)."""
        run = self._source.get()
        if run is None:  # pragma: no cover - rank_zero_experiment answers other ranks
            raise UsageError("no labledger run on this rank")
        return run

    @rank_zero_only
    @guarded("lightning log_hyperparams")
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        if isinstance(params, Namespace):
            params = vars(params)
        if not isinstance(params, Mapping):
            params = dict(params)
        self.experiment.config.update(json_config(params))

    @rank_zero_only
    @guarded("lightning log_graph")
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Called by Lightning at the start of every fit/validate/test: the Trainer's settings
        and the seed (no graph is drawn)."""
        trainer = getattr(model, "_trainer", None) or getattr(model, "trainer", None)
        self._family = type(model).__name__
        if trainer is None:
            return
        self._trainer = trainer
        run = self.experiment
        settings = _trainer_settings(trainer)
        if settings:
            run.config.update({"trainer": json_config(settings)})
        record_seed(run, os.environ.get("PL_GLOBAL_SEED"), "lightning.seed_everything")

    def _record_data(self, run: Run) -> None:
        trainer = self._trainer
        if trainer is None:
            return
        record_seed(run, os.environ.get("PL_GLOBAL_SEED"), "lightning.seed_everything")
        for name, attr in (
            ("train", "train_dataloader"),
            ("validation", "val_dataloaders"),
            ("test", "test_dataloaders"),
        ):
            try:
                loaders = getattr(trainer, attr, None)
            except Exception:
                continue
            for suffix, loader in _each_loader(loaders):
                record_data(run, name + suffix, loader)

    @rank_zero_only
    @guarded("lightning log_metrics")
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        data = numeric_items(metrics, self._prefix)
        if data:
            self.experiment.log(data, step=step if step is None else max(0, int(step)))

    @rank_zero_only
    @guarded("lightning checkpoints")
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._checkpoint_callback = checkpoint_callback
        if self._log_model != "all":
            return
        for path in _checkpoint_paths(checkpoint_callback):
            if path not in self._logged_ckpts:
                self._logged_ckpts.add(path)
                self.experiment.log_model(path, name=model_name(self.experiment, self._family))

    @rank_zero_only
    @guarded("lightning finalize")
    def finalize(self, status: str) -> None:
        run = self._source.current
        if run is None or run.status != "running":
            return
        self._record_data(run)  # the loaders are known by now (fit, validate or test)
        if self._log_model is True and self._checkpoint_callback is not None:
            cb = self._checkpoint_callback
            best = getattr(cb, "best_model_path", "") or getattr(cb, "last_model_path", "")
            if best and os.path.exists(best) and os.path.abspath(best) not in self._logged_ckpts:
                self._logged_ckpts.add(os.path.abspath(best))
                run.log_model(best, name=model_name(run, self._family))
                score = getattr(cb, "best_model_score", None)
                if score is not None and getattr(cb, "monitor", None):
                    run.summary[f"best_{cb.monitor}"] = float(score)
        # never finish here: Lightning calls finalize after fit *and* after test, and the
        # user may still call logger.experiment.log_model(); flush so readers see it all
        run.flush(timeout=30)

    # -- labledger extras ------------------------------------------------------------

    def finish(self, status: str | None = None) -> None:
        """Finish the run if this logger created it (else the run belongs to its creator)."""
        self._source.finish(status)


_PRED_KEYS = ("preds", "logits", "probs", "scores")
_TARGET_KEYS = ("target", "targets", "labels", "y")


class LabledgerEvaluation(Callback):
    """Rich results from validation: ``validation_step``'s ``{"preds", "target"}``
    outputs become a confusion matrix and PR/ROC curves every ``every_n_epochs``
    validation epochs (at most ``max_predictions`` samples kept per epoch, moved to the
    CPU as each batch ends); ``log_histograms=True`` adds weight histograms per training
    epoch. ``labels``: class names by index. ``run``: the run to log to (default: the
    trainer's ``LabledgerLogger``'s run, else the active run). The sanity check is
    skipped; only global rank zero logs."""

    def __init__(
        self,
        run: Run | None = None,
        *,
        every_n_epochs: int = 1,
        max_predictions: int = 10_000,
        labels: list[Any] | None = None,
        prefix: str = "val",
        log_histograms: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("every_n_epochs", every_n_epochs),
            ("max_predictions", max_predictions),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"{name} must be an int >= 0")
        self._run = run
        self._every = every_n_epochs
        self._max = max_predictions
        self._labels = labels
        self._prefix = prefix
        self._histograms = log_histograms
        self._preds: list[Any] = []
        self._targets: list[Any] = []
        self._kept = 0
        self._collect = False

    def _target_run(self, trainer: Any) -> Run | None:
        if self._run is not None:
            return self._run
        for lg in getattr(trainer, "loggers", None) or []:
            if isinstance(lg, LabledgerLogger):
                run = lg._source.get()
                if run is not None:
                    return run
        return active_run()

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._preds, self._targets, self._kept = [], [], 0
        self._collect = bool(
            self._every
            and self._max
            and not trainer.sanity_checking
            and trainer.is_global_zero
            and (trainer.current_epoch + 1) % self._every == 0
        )

    @guarded("lightning predictions")
    def on_validation_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._collect or self._kept >= self._max or not isinstance(outputs, Mapping):
            return
        preds = next((outputs[k] for k in _PRED_KEYS if k in outputs), None)
        target = next((outputs[k] for k in _TARGET_KEYS if k in outputs), None)
        if preds is None or target is None:
            return
        take = self._max - self._kept
        preds, target = preds[:take], target[:take]
        self._preds.append(preds.detach().cpu() if hasattr(preds, "detach") else preds)
        self._targets.append(target.detach().cpu() if hasattr(target, "detach") else target)
        self._kept += len(preds)

    @guarded("lightning predictions")
    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._collect or not self._preds:
            return
        import numpy as np

        from ._evaluation import _numpy

        preds = np.concatenate([_numpy(p) for p in self._preds])
        target = np.concatenate([_numpy(t) for t in self._targets])
        self._preds, self._targets, self._collect = [], [], False
        run = self._target_run(trainer)
        if run is not None:
            log_outputs(
                target,
                preds,
                labels=self._labels,
                prefix=self._prefix,
                step=_logger_step(trainer),
                run=run,
            )

    @guarded("lightning histograms")
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._histograms or not trainer.is_global_zero:
            return
        run = self._target_run(trainer)
        if run is not None:
            log_weight_histograms(pl_module.named_parameters(), step=_logger_step(trainer), run=run)


def _logger_step(trainer: Any) -> int:
    """The step Lightning gives loggers for metrics logged now (``val/*`` included)."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    stepped = getattr(loop, "_batches_that_stepped", None)
    return int(stepped) if isinstance(stepped, int) else int(trainer.global_step)


_TRAINER_SETTINGS = (
    "max_epochs",
    "min_epochs",
    "max_steps",
    "min_steps",
    "max_time",
    "precision",
    "accumulate_grad_batches",
    "gradient_clip_val",
    "gradient_clip_algorithm",
    "check_val_every_n_epoch",
    "val_check_interval",
    "log_every_n_steps",
    "limit_train_batches",
    "limit_val_batches",
    "limit_test_batches",
    "num_sanity_val_steps",
    "num_nodes",
    "num_devices",
    "deterministic",
    "benchmark",
    "reload_dataloaders_every_n_epochs",
)


def _trainer_settings(trainer: Any) -> dict[str, Any]:
    """What the Trainer was built with: epochs, steps, precision, accumulation, clipping ..."""
    out: dict[str, Any] = {}
    fit_loop = getattr(trainer, "fit_loop", None)
    sources = {
        "max_epochs": getattr(fit_loop, "max_epochs", None),
        "min_epochs": getattr(fit_loop, "min_epochs", None),
        "max_steps": getattr(fit_loop, "max_steps", None),
        "min_steps": getattr(fit_loop, "min_steps", None),
    }
    conn = getattr(trainer, "_accelerator_connector", None)
    for key in _TRAINER_SETTINGS:
        if key in sources:
            value = sources[key]
        elif key == "precision":
            value = getattr(trainer, "precision", None)
        elif key == "deterministic":
            value = getattr(conn, "deterministic", None)
        elif key == "benchmark":
            value = getattr(conn, "benchmark", None)
        else:
            try:
                value = getattr(trainer, key, None)
            except Exception:
                value = None
        if value is not None:
            out[key] = value
    for key, obj in (
        ("strategy", getattr(trainer, "strategy", None)),
        ("accelerator", getattr(trainer, "accelerator", None)),
    ):
        if obj is not None:
            out[key] = type(obj).__name__
    return out


def _each_loader(loaders: Any) -> list[tuple[str, Any]]:
    """(suffix, loader) for one loader, a list of them (``_1``...) or a dict (``_<key>``)."""
    if loaders is None:
        return []
    if isinstance(loaders, Mapping):
        return [(f"_{k}", v) for k, v in loaders.items()]
    if isinstance(loaders, (list, tuple)):
        return [("" if i == 0 else f"_{i}", v) for i, v in enumerate(loaders)]
    return [("", loaders)]


def _checkpoint_paths(cb: Any) -> list[str]:
    """Checkpoint files the callback knows of, plus those in its folder (the one just saved
    is not in ``best_k_models`` yet when Lightning calls ``after_save_checkpoint``)."""
    paths = list(getattr(cb, "best_k_models", {}) or {})
    for attr in ("best_model_path", "last_model_path"):
        if getattr(cb, attr, ""):
            paths.append(getattr(cb, attr))
    folder = getattr(cb, "dirpath", None)
    ext = getattr(cb, "FILE_EXTENSION", ".ckpt")
    if folder and os.path.isdir(folder):
        found = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(ext)]
        paths.extend(sorted(found, key=os.path.getmtime))
    seen: dict[str, None] = {}
    for p in paths:
        if p and os.path.isfile(p):
            seen.setdefault(os.path.abspath(p), None)
    return list(seen)


def _patch() -> None:
    """autolog: add a LabledgerLogger and a LabledgerEvaluation to every Trainer built
    from now on."""
    import lightning.pytorch as pl

    from ._autolog import log_models, patch_method

    def after_init(trainer: Any, *args: Any, **kwargs: Any) -> None:
        # what validation_step returns ({"preds", "target"}) becomes rich results too
        if not any(isinstance(cb, LabledgerEvaluation) for cb in trainer.callbacks):
            trainer.callbacks.append(LabledgerEvaluation())
        if any(isinstance(lg, LabledgerLogger) for lg in trainer.loggers):
            return
        trainer.loggers = [*trainer.loggers, LabledgerLogger(log_model=log_models("lightning"))]

    patch_method(pl.Trainer, "__init__", after=after_init, framework="lightning")
