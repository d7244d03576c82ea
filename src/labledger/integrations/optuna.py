"""Optuna: one parent run for the study, one child run per trial.

>>> from labledger.integrations.optuna import LabledgerCallback
>>> cb = LabledgerCallback(project="tune")
>>> study.optimize(cb.track(objective), n_trials=20, callbacks=[cb])
>>> cb.finish()

The parent run (``job_type="study"``, ``group`` = the study name) holds the study's
settings and, after every trial, ``best_value``, ``best_trial`` and ``best_run_id``. Each
trial is a child run (``parent_run_id`` = the parent, ``job_type="trial"``) with the
trial's params as config and its
result as ``summary.value``; its status is ``finished``, ``pruned`` or ``failed``. The
best trial so far gets the tag ``best``; intermediate values are the ``intermediate_value`` series. ``track(objective)`` makes the child run active
while the objective runs (so a Lightning or Keras integration inside logs to it);
without it, children are recorded when each trial ends.

The sampler's seed (``TPESampler(seed=0)``, any sampler built after this module is
imported) is the seed of the study's run and of every trial's run. Datasets flow both
ways: a trial's run starts with the study's datasets, and what a trial records (a
scikit-learn fit inside the objective) is added to the study's run. Pruned trials are
``pruned`` runs, which ``labledger best`` leaves out unless asked (``--include-pruned``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .._exceptions import UsageError
from ..tracking import Run, active_run, init
from ._common import RunSource, guarded, json_config, record_data, record_seed

__all__ = ["LabledgerCallback"]

_STATUS = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed"}


class LabledgerCallback:
    """An Optuna study callback (``study.optimize(..., callbacks=[cb])``).

    ``run``: the parent run (else the active run, else a new
    ``labledger.init(job_type="study", **init_kwargs)`` on the first trial).
    ``metric_name``: the summary key of a trial's value (``value``).
    """

    def __init__(
        self, run: Run | None = None, *, metric_name: str = "value", **init_kwargs: Any
    ) -> None:
        if not isinstance(metric_name, str) or not metric_name:
            raise UsageError("metric_name must be a non-empty string")
        self._source = RunSource(run, init_kwargs, {"job_type": "study"})
        self._init_kwargs = {k: v for k, v in init_kwargs.items() if k in ("project", "store")}
        self.metric_name = metric_name
        self._live: dict[int, Run] = {}
        self._lock = threading.Lock()
        self._best: float | None = None

    def _parent(self, study: Any) -> Run | None:
        first = self._source.current is None
        if first:  # the study's run: named and grouped after the study unless told otherwise
            self._source.defaults.update({"name": study.study_name, "group": study.study_name})
        parent = self._source.get()
        if parent is not None and first:
            record_seed(parent, sampler_seed(study.sampler), "optuna.sampler")
        if parent is not None and first and self._source.owned:
            directions = [d.name.lower() for d in study.directions]
            parent.config.update(
                json_config(
                    {
                        "study_name": study.study_name,
                        "direction": directions[0] if len(directions) == 1 else directions,
                        "metric": self.metric_name,
                        "sampler": type(study.sampler).__name__,
                        "pruner": type(getattr(study, "pruner", None)).__name__,
                    }
                )
            )
        return parent

    def _child(self, study: Any, number: int, parent: Run) -> Run:
        kwargs: dict[str, Any] = {
            **self._init_kwargs,
            "project": parent.project,
            "name": f"{study.study_name}-trial-{number}",
            "parent_run_id": parent.id,
            "group": parent.group or study.study_name,
            "job_type": "trial",
            "capture": False,  # the study's run holds the environment
            "system_metrics": False,
            "console": False,
        }
        child = init(**kwargs)
        record_seed(child, sampler_seed(study.sampler), "optuna.sampler")
        for data in parent.datasets:
            record_data(child, str(data.get("name") or "data"), data)
        return child

    def _merge_datasets(self, child: Run, parent: Run) -> None:
        """What a trial recorded (its fit's data) becomes the study's data too."""
        have = {d.get("name") for d in parent.datasets}
        for data in child.datasets:
            if data.get("name") not in have:
                record_data(parent, str(data.get("name") or "data"), data)

    def track(self, objective: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Wrap ``objective`` so each trial's child run exists (and is active) while it runs."""

        def tracked(trial: Any) -> Any:
            child = self._start_live(trial)
            try:
                return objective(trial)
            except Exception as exc:
                import optuna

                if child is not None and not isinstance(exc, optuna.TrialPruned):
                    self._end_live(trial.number, "failed", f"{type(exc).__name__}: {exc}")
                raise

        return tracked

    @guarded("optuna trial start")
    def _start_live(self, trial: Any) -> Run | None:
        parent = self._parent(trial.study)
        if parent is None:
            return None
        child = self._child(trial.study, trial.number, parent)
        with self._lock:
            self._live[trial.number] = child
        return child

    @guarded("optuna trial end")
    def _end_live(self, number: int, status: str, error: str | None = None) -> None:
        with self._lock:
            child = self._live.pop(number, None)
        if child is not None:
            parent = self._source.current
            if parent is not None and parent.status == "running":
                self._merge_datasets(child, parent)
            child.finish(status, error=error)

    @guarded("optuna")
    def __call__(self, study: Any, trial: Any) -> None:
        parent = self._parent(study)
        if parent is None:
            return
        with self._lock:
            child = self._live.pop(trial.number, None)
        if child is None:
            child = self._child(study, trial.number, parent)
        if child.status != "running":
            return
        child.config.update(json_config(trial.params))
        for step, value in sorted((trial.intermediate_values or {}).items()):
            child.log({f"intermediate_{self.metric_name}": float(value)}, step=int(step))
        values = trial.values
        if values is not None:
            if len(values) == 1:
                child.summary[self.metric_name] = float(values[0])
            else:
                for i, v in enumerate(values):
                    child.summary[f"{self.metric_name}_{i}"] = float(v)
        child.summary["trial_number"] = trial.number
        if trial.duration is not None:
            child.summary["duration_s"] = trial.duration.total_seconds()
        state = trial.state.name
        if state == "COMPLETE" and len(study.directions) == 1 and values is not None:
            best = study.best_trial
            if best.number == trial.number:
                child.add_tags("best")
                parent.summary["best_value"] = float(values[0])
                parent.summary["best_trial"] = trial.number
                parent.summary["best_run_id"] = child.id
                parent.config.update({"best_params": json_config(trial.params)})
        counts = parent.summary.get("trials") if "trials" in parent.summary else 0
        parent.summary["trials"] = int(counts or 0) + 1
        if state == "PRUNED":
            pruned = parent.summary.get("pruned_trials") if "pruned_trials" in parent.summary else 0
            parent.summary["pruned_trials"] = int(pruned or 0) + 1
        self._merge_datasets(child, parent)
        child.finish(_STATUS.get(state, "failed"))

    def finish(self, status: str | None = None) -> None:
        """Finish the study's parent run if this callback created it."""
        with self._lock:
            live = list(self._live.values())
            self._live.clear()
        for child in live:
            child.finish("killed")
        self._source.finish(status)

    @property
    def run(self) -> Run | None:
        """The study's parent run (None before the first trial)."""
        return self._source.current


def sampler_seed(sampler: Any, depth: int = 0) -> int | None:
    """The seed a sampler was built with (noted by ``_note_seeds``), its inner samplers' too."""
    if sampler is None or depth > 3:
        return None
    for value in vars(sampler).values() if hasattr(sampler, "__dict__") else ():
        seed = getattr(value, "_labledger_seed", None)
        if isinstance(seed, int):
            return seed
    for value in vars(sampler).values() if hasattr(sampler, "__dict__") else ():
        if type(value).__module__.startswith("optuna.samplers") and hasattr(
            value, "sample_relative"
        ):
            seed = sampler_seed(value, depth + 1)
            if seed is not None:
                return seed
    return None


def _note_seeds() -> None:
    """Optuna keeps no sampler's seed, only a random state made from it: note the seed on
    the random state every sampler builds (``LazyRandomState(seed)``) from now on."""
    try:
        from optuna.samplers import _lazy_random_state as lazy
    except ImportError:
        return
    cls = lazy.LazyRandomState
    original = cls.__init__
    if getattr(original, "__labledger_patched__", False):
        return

    def __init__(self: Any, seed: int | None = None) -> None:
        original(self, seed)
        if seed is not None:
            self._labledger_seed = seed

    __init__.__labledger_patched__ = True  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[method-assign]


_note_seeds()


def _patch() -> None:
    """autolog: every ``Study.optimize`` gets a parent run and live child runs."""
    import optuna

    from ._autolog import autolog_scope, enabled

    original = optuna.study.Study.optimize
    if getattr(original, "__labledger_patched__", False):
        return

    def optimize(self: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
        if not enabled("optuna"):
            return original(self, func, *args, **kwargs)
        with autolog_scope("optuna") as outer:
            if not outer:
                return original(self, func, *args, **kwargs)
            try:
                active = active_run()
                cb = (
                    LabledgerCallback(run=active)
                    if active is not None
                    else LabledgerCallback(name=self.study_name, group=self.study_name)
                )
                kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), cb]
                func = cb.track(func)
            except Exception:
                return original(self, func, *args, **kwargs)
            try:
                return original(self, func, *args, **kwargs)
            finally:
                cb.finish()

    optimize.__labledger_patched__ = True  # type: ignore[attr-defined]
    optimize.__wrapped__ = original  # type: ignore[attr-defined]
    optuna.study.Study.optimize = optimize  # type: ignore[method-assign]
