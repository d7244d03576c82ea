"""Keras 3: a ``Callback`` that records a run.

>>> from labledger.integrations.keras import LabledgerCallback
>>> model.fit(x, y, epochs=5, callbacks=[LabledgerCallback(project="mnist")])

The fit parameters (epochs, steps, ``batch_size``, ``validation_split``, ``shuffle``), the
optimizer's config and the model's size become the config; the seed of
``keras.utils.set_random_seed`` (called before or after ``init``) the run's seed; the
arrays or tensors ``fit`` trains and validates on the datasets ``train`` and
``validation``; ``model.summary()`` the text artifact ``<project>-<family>-model-summary``
(with ``log_model``).
Epoch metrics (``loss``, ``val_*``) are logged at step = epoch, and with
``log_every_n_batches=N`` the batch metrics too (as ``batch/loss`` ...). When training
ends the model is saved (``model.keras``) as artifact ``<project>-<family>-model`` (the
family: the run's group, else the model's name). The run is not finished when ``fit``
returns: a later ``model.evaluate(...)`` reaches the summary (``test/*``, its data the
dataset ``test``) without passing the callback again; the run ends with the process or
``finish()``.

Rich results (docs/results.md): with ``validation_data`` (or ``validation_split``) of
arrays or tensors, a classifier's predictions on (the first ``max_predictions`` rows of)
it become ``val/confusion_matrix`` and, for a binary task, ``val/pr_curve`` and
``val/roc_curve`` at step = epoch, every ``predictions_every`` epochs (one
``model.predict`` at epoch end: 0 turns it off; regression outputs are skipped).
``log_histograms=True`` logs a histogram of every weight (``weights/<path>``) per epoch.
"""

from __future__ import annotations

from typing import Any

import keras

from .._exceptions import UsageError
from ..tracking import Run
from ._common import (
    RunSource,
    caller_locals,
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


class LabledgerCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Log a Keras ``fit`` (and ``evaluate``) to a labledger run.

    ``run``: log to this run (else the active run, else ``labledger.init(**init_kwargs)``).
    """

    def __init__(
        self,
        run: Run | None = None,
        *,
        log_model: bool = True,
        log_every_n_batches: int | None = None,
        predictions_every: int = 1,
        max_predictions: int = 10_000,
        labels: list[Any] | None = None,
        log_histograms: bool = False,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        for name, value in (
            ("predictions_every", predictions_every),
            ("max_predictions", max_predictions),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"{name} must be an int >= 0")
        if log_every_n_batches is not None and (
            not isinstance(log_every_n_batches, int) or log_every_n_batches < 1
        ):
            raise UsageError("log_every_n_batches must be a positive int or None")
        self._source = RunSource(run, init_kwargs, {"job_type": "train"})
        self._log_model = log_model
        self._every = log_every_n_batches
        self._batch_step = 0
        self._epoch = 0
        self._pred_every = predictions_every
        self._max_pred = max_predictions
        self._labels = labels
        self._histograms = log_histograms
        self._val: tuple[Any, Any] | None = None
        # run.log only appends to a buffer: safe to call from Keras's async dispatch thread
        self.async_safe = True
        if log_every_n_batches is None:  # no batch hook at all: Keras skips calling it
            self.on_train_batch_end = keras.callbacks.Callback.on_train_batch_end.__get__(self)  # type: ignore[method-assign]

    @property
    def run(self) -> Run | None:
        return self._source.current

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._in_fit = True
        self._train_begin()

    @guarded("keras on_train_begin")
    def _train_begin(self) -> None:
        run = self._source.get()
        if run is None:
            return
        call = caller_locals(_is_keras_fit, self_is=self.model) or {}
        fit = dict(self.params or {})
        fit["batch_size"] = call.get("batch_size") or (32 if _is_array(call.get("x")) else None)
        for key in ("validation_split", "shuffle", "initial_epoch", "validation_freq"):
            if key in call:
                fit[key] = call[key]
        cfg: dict[str, Any] = {"fit": json_config(fit)}
        opt = getattr(self.model, "optimizer", None)
        if opt is not None:
            try:
                cfg["optimizer"] = json_config(opt.get_config())
            except Exception:
                cfg["optimizer"] = {"name": type(opt).__name__}
        cfg["model"] = {"class": type(self.model).__name__, "name": getattr(self.model, "name", "")}
        try:
            cfg["model"]["params"] = int(self.model.count_params())
        except Exception:
            pass
        run.config.update(cfg)
        record_seed(run, _keras_seed(), "keras.set_random_seed")
        x, y = call.get("x"), call.get("y")
        if x is not None:
            record_data(run, "train", (x, y) if y is not None else x)
        if "val_x" in call:
            val = (
                (call["val_x"], call.get("val_y"))
                if call.get("val_y") is not None
                else call["val_x"]
            )
            record_data(run, "validation", val)
            self._val = _first_rows(call["val_x"], call.get("val_y"), self._max_pred)
        self._hook_evaluate()
        if self._log_model:
            self._log_summary(run)

    def _hook_evaluate(self) -> None:
        """``model.evaluate(...)`` after ``fit`` reaches this callback without being passed."""
        model = self.model
        if getattr(model, "_labledger_evaluate", None) is self:
            return
        original = type(model).evaluate
        cb = self

        def evaluate(*args: Any, **kwargs: Any) -> Any:
            given = kwargs.get("callbacks")
            # fit's own validation passes its CallbackList: only a user's evaluate() is hooked
            if (
                not getattr(cb, "_in_fit", False)
                and cb._source.current is not None
                and (given is None or isinstance(given, (list, tuple)))
                and len(args) < 7  # callbacks not passed positionally
                and not any(c is cb for c in given or [])
            ):
                kwargs["callbacks"] = [*(given or []), cb]
                x = args[0] if args else kwargs.get("x")
                y = args[1] if len(args) > 1 else kwargs.get("y")
                if x is not None:
                    record_data(cb._source.current, "test", (x, y) if y is not None else x)
            return original(model, *args, **kwargs)

        object.__setattr__(model, "evaluate", evaluate)
        object.__setattr__(model, "_labledger_evaluate", self)

    def _log_summary(self, run: Run) -> None:
        lines: list[str] = []
        try:
            self.model.summary(print_fn=lambda line, *a, **k: lines.append(str(line)))
        except Exception:
            return
        if not lines:
            return
        path = temp_dir("keras-summary") / "model_summary.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        run.log_artifact(path, name=model_name(run, self._family(), "model-summary"), kind="text")

    def _family(self) -> str:
        return str(getattr(self.model, "name", "") or type(self.model).__name__)

    @guarded("keras on_train_batch_end")
    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self._batch_step
        self._batch_step = step + 1
        if self._every is None or step % self._every or not logs:
            return
        run = self._source.get()
        if run is not None:
            run.log(numeric_items(logs, "batch/"), step=step)

    @guarded("keras on_epoch_end")
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        run = self._source.get()
        if run is None or not logs:
            return
        self._epoch = epoch
        data = numeric_items(logs)
        data["epoch"] = float(epoch)
        run.log(data, step=epoch)
        if self._val is not None and self._pred_every and (epoch + 1) % self._pred_every == 0:
            self._log_predictions(run, epoch)
        if self._histograms:
            self._log_histograms(run, epoch)

    @guarded("keras predictions")
    def _log_predictions(self, run: Run, epoch: int) -> None:
        assert self._val is not None
        x, y = self._val
        outputs = self.model.predict(x, verbose=0)
        if isinstance(outputs, (list, tuple)):  # several outputs: the first one
            outputs = outputs[0]
        if not log_outputs(y, outputs, labels=self._labels, prefix="val", step=epoch, run=run):
            self._val = None  # not a classification: do not predict again

    @guarded("keras histograms")
    def _log_histograms(self, run: Run, epoch: int) -> None:
        named = [
            (str(getattr(w, "path", None) or w.name), keras.ops.convert_to_numpy(w))
            for w in self.model.weights
        ]
        log_weight_histograms(named, step=epoch, run=run)

    @guarded("keras on_test_end")
    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        # evaluate() after fit: the final test metrics go to the summary
        if getattr(self, "_in_fit", False) or not logs:
            return
        run = self._source.current
        if run is not None and run.status == "running":
            for k, v in numeric_items(logs, "test/").items():
                run.summary[k] = v

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._in_fit = False
        self._save_model()

    @guarded("keras model")
    def _save_model(self) -> None:
        run = self._source.current
        if not self._log_model or run is None or run.status != "running":
            return
        path = temp_dir("keras") / "model.keras"
        self.model.save(path)
        run.log_model(path, name=model_name(run, self._family()))

    def finish(self, status: str | None = None) -> None:
        """Finish the run if this callback created it."""
        self._source.finish(status)


def _is_keras_fit(code: Any) -> bool:
    return bool(code.co_name == "fit" and "keras" in code.co_filename)


def _first_rows(x: Any, y: Any, n: int) -> tuple[Any, Any] | None:
    """The first ``n`` rows of array/tensor validation data with its targets, or None
    (datasets, generators, dicts of inputs: their predictions are not taken)."""
    if y is None or not _is_array(x) or not _is_array(y) or n <= 0:
        return None
    if len(x) != len(y):
        return None
    return x[:n], y[:n]


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _keras_seed() -> Any:
    """The seed of the last ``keras.utils.set_random_seed`` (Keras keeps it in its global state)."""
    try:
        from keras.src.backend.common import global_state

        return global_state.get_global_attribute("global_random_seed")
    except Exception:
        return None


def _patch() -> None:
    """autolog: every ``Model.fit`` gets a LabledgerCallback."""
    from ._autolog import enabled, log_models

    original = keras.Model.fit
    if getattr(original, "__labledger_patched__", False):
        return

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if enabled("keras"):
            try:
                cb = LabledgerCallback(log_model=log_models("keras"))
                if (
                    len(args) >= 6
                ):  # callbacks passed positionally (x, y, batch_size, epochs, verbose, callbacks)
                    args = (*args[:5], [*(args[5] or []), cb], *args[6:])
                elif not any(
                    isinstance(c, LabledgerCallback) for c in kwargs.get("callbacks") or []
                ):
                    kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), cb]
            except Exception:
                pass
        return original(self, *args, **kwargs)

    fit.__labledger_patched__ = True  # type: ignore[attr-defined]
    fit.__wrapped__ = original  # type: ignore[attr-defined]
    keras.Model.fit = fit
