"""What every integration shares: which run to log to, rank zero, and never raising.

Integrations use the tracking engine's public names only (``labledger.tracking``: ``init``,
``Run``, ``active_run``), not the package root, which re-exports ``autolog`` from here. A
framework hook that fails is reported once as a ``RuntimeWarning`` and training goes on:
tracking must never crash or stall training.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .._exceptions import UsageError
from .._settings import setting
from ..tracking import Run, active_run, init

__all__ = [
    "RunSource",
    "caller_locals",
    "finish_kept",
    "guarded",
    "is_rank_zero",
    "json_config",
    "keep_open",
    "model_name",
    "numeric_items",
    "record_data",
    "record_seed",
    "temp_dir",
    "warn_once",
    "write_json",
]

F = TypeVar("F", bound=Callable[..., Any])
_warned: set[str] = set()
_warn_lock = threading.Lock()
_RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID")


def is_rank_zero() -> bool:
    """False in every process of a distributed job but global rank 0.

    Reads ``torch.distributed`` when it is initialised (never imports torch), else the
    rank variables launchers set (torchrun and Lightning: ``RANK``; MPI; SLURM). A
    ``LOCAL_RANK`` alone counts too: Lightning's DDP children start with it before the
    process group exists.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is not None:
        try:
            if dist.is_available() and dist.is_initialized():
                return int(dist.get_rank()) == 0
        except Exception:  # a half-initialised group: fall back to the environment
            pass
    for var in _RANK_VARS:
        value = os.environ.get(var)
        if value not in (None, ""):
            try:
                return int(value) == 0
            except ValueError:
                continue
    local = os.environ.get("LOCAL_RANK")
    if local not in (None, ""):
        try:
            return int(local) == 0
        except ValueError:
            pass
    return True


def guarded(what: str) -> Callable[[F], F]:
    """Decorate a framework hook so an exception in it warns once and returns None."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                warn_once(what, f"{type(exc).__name__}: {exc}")
                return None

        return wrapper  # type: ignore[return-value]

    return deco


def warn_once(what: str, message: str) -> None:
    with _warn_lock:
        if what in _warned:
            return
        _warned.add(what)
    warnings.warn(
        f"labledger: {what} tracking failed and was skipped ({message}); training goes on",
        RuntimeWarning,
        stacklevel=3,
    )


class RunSource:
    """The run an integration logs to: the one given, the active one, or one it creates.

    ``run`` given: that run, never finished by the integration. Else, without
    ``init_kwargs``, the run already active in this process (``labledger.active_run()``);
    else a new ``labledger.init(**defaults, **init_kwargs)``, created on first use and
    only on rank zero (other ranks get ``None``).
    """

    def __init__(
        self,
        run: Run | None,
        init_kwargs: Mapping[str, Any],
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        if run is not None and not isinstance(run, Run):
            raise UsageError(
                f"run must be a labledger.Run (from labledger.init()), not {type(run).__name__}"
            )
        self._run = run
        self._init_kwargs = dict(init_kwargs)
        self.defaults = dict(defaults or {})
        self.owned = False
        self._lock = threading.Lock()

    def get(self) -> Run | None:
        """The run to log to, created if needed; None on ranks other than zero."""
        if self._run is not None and not (self.owned and self._run.status != "running"):
            return self._run
        if not is_rank_zero():
            return None
        with self._lock:
            if self._run is not None and not (self.owned and self._run.status != "running"):
                return self._run
            finish_kept()  # a run an autologged fit left open for score() ends here
            if not self._init_kwargs:
                active = active_run()
                if active is not None:
                    self._run = active
                    return active
            kwargs = {**self.defaults, **self._init_kwargs}
            if "project" not in kwargs and AUTOLOG_STATE["on"]:
                project = autolog_project()
                if project:
                    kwargs["project"] = project
            self._run = init(**kwargs)
            self.owned = True
            return self._run

    @property
    def current(self) -> Run | None:
        """The run if one was given or created already (never creates one)."""
        return self._run

    def finish(self, status: str | None = None) -> None:
        """Finish the run if this integration created it (a given run is the caller's)."""
        if self._run is not None and self.owned and self._run.status == "running":
            self._run.finish(status)


AUTOLOG_STATE: dict[str, Any] = {"on": False}  # set by labledger.autolog()
_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


def autolog_project() -> str | None:
    """The project of a run ``autolog()`` makes: ``LABLEDGER_PROJECT``, else the entry
    script's name (``train.py`` -> ``train``), else the notebook's, else None (``init``'s
    default: the git folder)."""
    if setting("LABLEDGER_PROJECT"):
        return None  # init() reads it
    candidates: list[str] = []
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if isinstance(script, str) and os.path.isfile(script):
        candidates.append(script)
    ns = getattr(main, "__dict__", {})
    candidates += [
        str(c)
        for c in (ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME"))
        if isinstance(c, str) and c.endswith(".ipynb")
    ]
    for path in candidates:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in ("__main__", "ipykernel_launcher", "-c", ""):
            continue
        name = _NAME_RE.sub("-", stem).strip("-._")
        if name and name[0].isalnum():
            return name[:200]
    return None


_kept: list[RunSource] = []
_kept_lock = threading.Lock()


def keep_open(source: RunSource) -> None:
    """Leave the run ``source`` made open (for a ``score()`` after an autologged fit) until
    the next integration needs a run (``finish_kept``) or the process ends."""
    with _kept_lock:
        _kept.append(source)


def finish_kept() -> None:
    with _kept_lock:
        kept = list(_kept)
        _kept.clear()
    for source in kept:
        try:
            source.finish()
        except Exception as exc:
            warn_once("finish", f"{type(exc).__name__}: {exc}")


def _jsonable(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > 8:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)  # numpy and torch scalars
    if callable(item):
        try:
            return _jsonable(item(), depth + 1)
        except Exception:
            pass
    enum_value = getattr(value, "value", None)
    if enum_value is not None and type(value).__module__ != "builtins" and hasattr(value, "name"):
        return _jsonable(enum_value, depth + 1)
    return repr(value) if callable(value) else str(value)


def json_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with every value made JSON-representable (str() for the rest), keys checked."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        key = str(k).strip("/") or "_"
        out[key.replace("//", "/")] = _jsonable(v)
    return out


def numeric_items(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The entries of ``data`` that are numbers (tensors and numpy scalars included)."""
    out: dict[str, float] = {}
    for k, v in data.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            out[prefix + str(k)] = float(v)
            continue
        item = getattr(v, "item", None)
        if callable(item):
            try:
                x = item()
            except Exception:
                continue
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                out[prefix + str(k)] = float(x)
    return out


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"labledger-{prefix}-"))


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(_jsonable(data), indent=1, sort_keys=True), encoding="utf-8")
    return path


# -- seeds, data and model names: what every integration records the same way -----------

SPLITS = ("train", "validation", "test")


def record_seed(run: Run | None, seed: Any, source: str) -> bool:
    """Record the framework's ``seed`` (already applied by it) as the run's seed; never raises."""
    if run is None or seed is None or run.status != "running":
        return False
    if isinstance(seed, str):  # PL_GLOBAL_SEED and saved configs hold it as text
        if not seed.strip().isdigit():
            return False
        seed = int(seed)
    try:
        return run.record_seed(seed, source=source)
    except Exception:
        return False


def record_data(run: Run | None, name: str, data: Any) -> bool:
    """Fingerprint ``data`` (arrays, frames, tensors, HF datasets, loaders, paths, ``(X, y)``)
    as the run's dataset ``name``; False when there is nothing it can fingerprint.

    The same data under the same name is recorded once (each object is hashed once anyway)."""
    if run is None or data is None or run.status != "running":
        return False
    try:
        info = run.log_dataset(data, name=name)
    except Exception:  # an unknown kind of data: nothing to record, training goes on
        return False
    return bool(info.get("sha256"))


def caller_locals(
    match: Callable[[Any], bool], *, self_is: Any = None, limit: int = 60
) -> dict[str, Any] | None:
    """The local variables of the nearest calling frame whose code ``match``es (and, with
    ``self_is``, whose ``self`` is that object).

    How a callback handed no data (XGBoost's ``TrainingCallback``, Keras's ``Callback``)
    finds what the framework's ``train``/``fit`` was called with. None when not found."""
    frame = sys._getframe(1)
    for _ in range(limit):
        if frame is None:
            return None
        if match(frame.f_code):
            local = dict(frame.f_locals)
            if self_is is None or local.get("self") is self_is:
                return local
        frame = frame.f_back  # type: ignore[assignment]
    return None


_FAMILY_RE = re.compile(r"[^A-Za-z0-9._-]+")


def model_name(run: Run, family: str | None, suffix: str = "model") -> str:
    """``<project>-<family>-model``: model artifacts per run family (the run's group, else
    the model's kind), so ``latest`` of one family is not whichever run ended last.
    ``suffix`` names other per-family artifacts (``cv-results``)."""
    fam = run.group or family or "run"
    name = _FAMILY_RE.sub("-", f"{run.project}-{fam}").strip("-._")
    return f"{name[:180] or 'run'}-{suffix}"
