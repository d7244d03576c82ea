"""``labledger.autolog()``: patch the frameworks in use, now or when they are imported.

A framework already imported is patched at once; the others through an import hook (a
``sys.meta_path`` finder) that patches each right after its module has run. Patches
only add a labledger callback or logger; they never change arguments the framework
uses to train, and a failing patch or hook warns once instead of raising.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from .._exceptions import UsageError
from ._common import AUTOLOG_STATE, warn_once

__all__ = ["FRAMEWORKS", "autolog", "autolog_scope", "enabled", "log_models", "patch_method"]

# framework -> (module whose import triggers the patch, labledger module with _patch)
FRAMEWORKS: dict[str, str] = {
    "lightning": "lightning.pytorch",
    "keras": "keras",
    "transformers": "transformers.trainer",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "sklearn": "sklearn",
    "optuna": "optuna",
    "hydra": "hydra",
}

_state_lock = threading.RLock()
_pending: dict[str, list[str]] = {}  # watched module -> frameworks waiting for it
_patched: set[str] = set()  # frameworks patched
_log_models: dict[str, bool] = {}  # framework -> autolog(log_models=) (read at call time)
_enabled: dict[str, bool] = {}  # framework -> on/off (autolog(disable=True) turns off)
_local = threading.local()


def autolog(
    frameworks: Sequence[str] | str | None = None,
    log_models: bool = True,
    *,
    disable: bool = False,
) -> list[str]:
    """Track every supported framework this process uses, with one line.

    Patches ``frameworks`` (default: all of lightning, keras, transformers, xgboost,
    lightgbm, sklearn, optuna, hydra) when they are imported, or at once if they
    already are. Each training call then logs to the active run, or to a new run it
    creates, in the project ``LABLEDGER_PROJECT``, else named after the entry script
    (``train.py`` -> ``train``) or the notebook. ``log_models=False`` skips model artifacts. ``disable=True`` turns
    autologging off again (patches stay in place and do nothing). Returns the
    frameworks patched so far.
    """
    if isinstance(frameworks, str):
        frameworks = [frameworks]
    names = list(FRAMEWORKS) if frameworks is None else list(frameworks)
    unknown = [n for n in names if n not in FRAMEWORKS]
    if unknown:
        raise UsageError(
            f"autolog: unknown framework {', '.join(map(repr, unknown))}; "
            f"one of {', '.join(FRAMEWORKS)}"
        )
    if not isinstance(log_models, bool):
        raise UsageError(f"log_models must be True or False, not {log_models!r}")
    with _state_lock:
        for name in names:
            _enabled[name] = not disable
        AUTOLOG_STATE["on"] = any(_enabled.values())
        for name in names:
            if disable:
                continue
            _log_models[name] = log_models
            target = FRAMEWORKS[name]
            if target in sys.modules:
                _apply(name)
            else:
                _pending.setdefault(target, [])
                if name not in _pending[target]:
                    _pending[target].append(name)
                _install_finder()
        return sorted(_patched)


def enabled(framework: str) -> bool:
    """Whether autolog is on for ``framework`` (patches check it on every call)."""
    return _enabled.get(framework, False)


def log_models(framework: str) -> bool:
    """The ``log_models`` of the last ``autolog()`` that named ``framework``."""
    return _log_models.get(framework, True)


def _apply(name: str) -> None:
    if name in _patched:
        return
    try:
        module = importlib.import_module(f"labledger.integrations.{name}")
        module._patch()
        _patched.add(name)
    except Exception as exc:
        warn_once(f"autolog {name}", f"{type(exc).__name__}: {exc}")


@contextmanager
def autolog_scope(*frameworks: str) -> Iterator[bool]:
    """Yield True when no autologged call of ``frameworks`` is already running in this thread.

    The first name is the framework entering. A grid search fitting many estimators
    (or an XGBoost model inside it) logs once, from the outermost call.
    """
    depths: dict[str, int] = _local.__dict__.setdefault("depths", {})
    outer = all(depths.get(f, 0) == 0 for f in frameworks)
    depths[frameworks[0]] = depths.get(frameworks[0], 0) + 1
    try:
        yield outer
    finally:
        depths[frameworks[0]] -= 1


def patch_method(
    owner: type,
    attr: str,
    *,
    framework: str,
    before: Callable[..., Any] | None = None,
    after: Callable[..., Any] | None = None,
    wrap_kwargs: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Wrap ``owner.attr`` once: ``before(self, *args, **kwargs)`` may return new kwargs,
    ``after(self, *args, **kwargs)`` runs after it. Hook failures warn once; the
    original call's result and exceptions pass through untouched."""
    original = owner.__dict__.get(attr) or getattr(owner, attr)
    if getattr(original, "__labledger_patched__", False):
        return

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not enabled(framework):
            return original(self, *args, **kwargs)
        if before is not None:
            try:
                new = before(self, *args, **kwargs)
                if new is not None:
                    kwargs = new
            except Exception as exc:
                warn_once(f"autolog {framework}", f"{type(exc).__name__}: {exc}")
        result = original(self, *args, **kwargs)
        if after is not None:
            try:
                after(self, *args, **kwargs)
            except Exception as exc:
                warn_once(f"autolog {framework}", f"{type(exc).__name__}: {exc}")
        return result

    wrapper.__labledger_patched__ = True  # type: ignore[attr-defined]
    setattr(owner, attr, wrapper)


# -- the import hook -------------------------------------------------------------------


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of a watched module so the
    framework is patched as soon as its module has been executed."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _pending or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname
        try:
            spec = _find_real_spec(self, fullname, path, target)
        finally:
            self._busy.name = None
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return None
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _on_imported(fullname)

        try:
            loader.exec_module = exec_module
        except Exception:  # a loader we cannot wrap: patch at the next autolog() instead
            return None
        return spec


def _find_real_spec(
    me: _Finder, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> importlib.machinery.ModuleSpec | None:
    for finder in list(sys.meta_path):
        if finder is me:
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _on_imported(module_name: str) -> None:
    with _state_lock:
        names = _pending.pop(module_name, [])
        for name in names:
            if _enabled.get(name):
                _apply(name)


_finder: _Finder | None = None


def _install_finder() -> None:
    global _finder
    if _finder is None:
        _finder = _Finder()
        sys.meta_path.insert(0, _finder)
