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

The config's ``seed`` (``cfg.seed``, else ``cfg.random_seed``, else the first ``seed`` of
a nested group such as ``cfg.trainer.seed``) becomes the job's seed, and files or
folders the config points to under a data-like key (``data``, ``dataset``, ``train``,
``val``, ``test``, ``*_path``, ``*_dir``, ``*_file`` inside a data group) are
fingerprinted as the job's datasets (``train``, ``validation``, ``test`` when the key
says so). The sweep's run gets the first job's seed and datasets.
"""

from __future__ import annotations

import os
from typing import Any

from hydra.experimental.callback import Callback

from .._exceptions import UsageError
from ..tracking import Run, init
from ._common import RunSource, guarded, is_rank_zero, json_config, record_data, record_seed

__all__ = ["LabledgerCallback"]


class LabledgerCallback(Callback):
    """A Hydra ``Callback`` (``run=None, **init_kwargs``; ``run`` becomes every job's parent)."""

    def __init__(self, run: Run | None = None, **init_kwargs: Any) -> None:
        if run is not None and not isinstance(run, Run):
            raise UsageError("run must be a labledger.Run")
        self._given = run
        self._init_kwargs = dict(init_kwargs)
        self._sweep: RunSource | None = None
        self._group: str | None = None
        self._job: Run | None = None

    @property
    def run(self) -> Run | None:
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
            self._job = init(**kwargs_init)
            plain = {str(k): v for k, v in data.items()}
            record_seed(self._job, config_seed(plain), "hydra.cfg.seed")
            for name, path in data_paths(plain):
                record_data(self._job, name, path)

    @guarded("hydra job end")
    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        run, self._job = self._job, None
        if run is None or run.status != "running":
            return
        sweep = self._sweep.current if self._sweep is not None else None
        if sweep is not None and sweep.status == "running":
            if run.seed is not None and sweep.seed is None:
                record_seed(sweep, run.seed, "hydra.cfg.seed")
            have = {d.get("name") for d in sweep.datasets}
            for d in run.datasets:
                if d.get("name") not in have:
                    record_data(sweep, str(d.get("name")), d)
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


def config_seed(cfg: dict[str, Any]) -> Any:
    """``cfg.seed``, else ``cfg.random_seed``, else the first nested ``seed`` (breadth first)."""
    level: list[dict[str, Any]] = [cfg]
    for _ in range(4):
        for d in level:
            for key in ("seed", "random_seed", "random_state"):
                value = d.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
        level = [v for d in level for v in d.values() if isinstance(v, dict)]
    return None


_DATA_WORDS = ("data", "dataset", "train", "val", "valid", "validation", "test", "corpus")


def data_paths(cfg: dict[str, Any], limit: int = 8) -> list[tuple[str, str]]:
    """(dataset name, path) for config values naming an existing file or folder under a
    data-like key; relative paths are read from where the app was started."""
    try:
        from hydra.utils import to_absolute_path
    except ImportError:  # pragma: no cover - hydra is imported by this module
        to_absolute_path = os.path.abspath
    out: list[tuple[str, str]] = []

    def visit(node: Any, keys: tuple[str, ...]) -> None:
        if len(out) >= limit:
            return
        if isinstance(node, dict):
            for k, v in node.items():
                visit(v, (*keys, str(k)))
            return
        if not isinstance(node, str) or not node or not keys:
            return
        words = [w for k in keys for w in k.lower().replace("-", "_").split("_")]
        if not any(w in _DATA_WORDS for w in words):
            return
        try:
            path = to_absolute_path(node)
        except Exception:
            return
        if not os.path.exists(path) or os.path.abspath(path) == os.path.abspath(os.sep):
            return
        last = keys[-1].lower()
        name = (
            "train"
            if "train" in last
            else "test"
            if "test" in last
            else "validation"
            if "val" in last
            else ".".join(keys)
        )
        out.append((name, path))

    visit(cfg, ())
    return out


def _patch() -> None:
    """autolog: every Hydra app gets a LabledgerCallback unless its config has one."""
    from hydra._internal import callbacks

    from ._autolog import patch_method

    def after_init(self: Any, *args: Any, **kwargs: Any) -> None:
        if not any(isinstance(c, LabledgerCallback) for c in self.callbacks):
            self.callbacks.append(LabledgerCallback())

    patch_method(callbacks.Callbacks, "__init__", after=after_init, framework="hydra")
