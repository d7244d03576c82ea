"""Hydra: a callback that records each job as a run, and a multirun as a group.

Add it to the primary config (or pass ``+hydra.callbacks.labledger._target_=...``)::

    hydra:
      callbacks:
        labledger:
          _target_: labledger.integrations.hydra.LabledgerCallback
          project: my-project

Each job is a run (active while the task function runs, so ``labledger.active_run()``
and the other integrations log to it) with the composed config (without ``hydra``) as
config and the command-line overrides as ``config.hydra_overrides``; a numeric return value becomes ``summary.return_value``; a failed
job is a ``failed`` run. A multirun (``-m``) adds one parent run for the sweep
(``job_type="sweep"``) and puts every job in the group named after the sweep directory.
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback

import labledger

from ._common import RunSource, guarded, is_rank_zero, json_config

__all__ = ["LabledgerCallback"]


class LabledgerCallback(Callback):
    """A Hydra ``Callback`` (``run=None, **init_kwargs``; ``run`` becomes every job's parent)."""

    def __init__(self, run: labledger.Run | None = None, **init_kwargs: Any) -> None:
        if run is not None and not isinstance(run, labledger.Run):
            raise labledger.UsageError("run must be a labledger.Run")
        self._given = run
        self._init_kwargs = dict(init_kwargs)
        self._sweep: RunSource | None = None
        self._group: str | None = None
        self._job: labledger.Run | None = None

    @property
    def run(self) -> labledger.Run | None:
        """The current job's run."""
        return self._job

    @guarded("hydra multirun start")
    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        from omegaconf import OmegaConf

        h = config.hydra
        self._group = str(h.sweep.dir)
        name = f"{h.job.name}-sweep"
        overrides = list(OmegaConf.to_container(h.overrides.task, resolve=True) or [])
        self._sweep = RunSource(
            self._given,
            {
                **self._init_kwargs,
                "name": name,
                "group": self._group,
                "job_type": "sweep",
                "config": {
                    "hydra_overrides": overrides,
                    "sweeper": str(h.sweeper.get("_target_", "")),
                },
            },
        )
        self._sweep.get()

    @guarded("hydra job start")
    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        data = OmegaConf.to_container(config, resolve=True, throw_on_missing=False)
        assert isinstance(data, dict)
        data.pop("hydra", None)
        h = HydraConfig.get()
        overrides = list(h.overrides.task)
        parent = self._sweep.current if self._sweep is not None else self._given
        num = getattr(h.job, "num", None)
        name = h.job.name if num is None else f"{h.job.name}-{num}"
        kwargs_init: dict[str, Any] = {"name": name, "job_type": "hydra-job", **self._init_kwargs}
        if parent is not None:
            kwargs_init.setdefault("project", parent.project)
            kwargs_init["parent_run_id"] = parent.id
        if self._group is not None:
            kwargs_init["group"] = self._group
        config_in = {
            **json_config({str(k): v for k, v in data.items()}),
            "hydra_overrides": overrides,
        }
        kwargs_init["config"] = {**config_in, **dict(kwargs_init.get("config") or {})}
        if is_rank_zero():
            self._job = labledger.init(**kwargs_init)

    @guarded("hydra job end")
    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        run, self._job = self._job, None
        if run is None or run.status != "running":
            return
        value = getattr(job_return, "_return_value", None)
        status = getattr(getattr(job_return, "status", None), "name", "COMPLETED")
        if status == "COMPLETED":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                run.summary["return_value"] = float(value)
            run.finish("finished")
        else:
            run.finish("failed", exit_code=1, error=f"{type(value).__name__}: {value}")

    @guarded("hydra multirun end")
    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self._sweep is not None:
            self._sweep.finish()


def _patch() -> None:
    """autolog: every Hydra app gets a LabledgerCallback unless its config has one."""
    from hydra._internal import callbacks

    from ._autolog import patch_method

    def after_init(self: Any, *args: Any, **kwargs: Any) -> None:
        if not any(isinstance(c, LabledgerCallback) for c in self.callbacks):
            self.callbacks.append(LabledgerCallback())

    patch_method(callbacks.Callbacks, "__init__", after=after_init, framework="hydra")
