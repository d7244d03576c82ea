"""seed_everything: one call that seeds every random number generator a training uses."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from typing import Any

from .._settings import setting

__all__ = ["current_seed_info", "on_seed", "seed_everything"]

_STATE: dict[str, Any] = {}


def seed_everything(
    seed: int | None = None, deterministic: bool = False, *, _target: Any = None
) -> int:
    """Seed ``random``, numpy and torch (+CUDA) when importable; return the seed used.

    With ``seed=None`` a fresh seed is drawn from the OS and returned, so the run can
    still be repeated. Sets ``PYTHONHASHSEED`` for child processes (the current
    interpreter's hash seed cannot change after start-up). ``deterministic=True`` also
    asks torch for deterministic algorithms (and sets ``CUBLAS_WORKSPACE_CONFIG``).
    The seed is recorded on the newest active run (and on active runs that have no seed
    yet), and on runs started later; a run that already has a seed keeps it, so a child
    run's seed never changes its parent's. ``_target`` (used by ``init(seed=...)``) names
    the one run the seed belongs to.
    """
    if (setting("LABLEDGER_SEED_OVERRIDE") or "").isdigit():
        seed = int(setting("LABLEDGER_SEED_OVERRIDE") or "")  # `labledger replicate`: a new seed
    if seed is None and (setting("LABLEDGER_REPRO_SEED") or "").isdigit():
        seed = int(setting("LABLEDGER_REPRO_SEED") or "")  # `labledger repro` replays a drawn seed
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    if isinstance(seed, bool) or not isinstance(seed, int):
        try:
            seed = int(seed.__index__())  # numpy integers
        except AttributeError:
            raise TypeError(f"seed must be an int, not {type(seed).__name__}") from None
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    seeded = ["random"]
    try:
        import numpy as np

        np.random.seed(seed)
        seeded.append("numpy")
    except ImportError:
        pass
    if "torch" in sys.modules:
        if _seed_torch(sys.modules["torch"], seed, deterministic):
            seeded.append("torch")
            if _cuda_seeded(sys.modules["torch"], seed):
                seeded.append("torch.cuda")
    elif _install_torch_hook():
        # torch is installed but not imported: importing it here would cost seconds, so
        # it is seeded the moment the script imports it (see _TorchSeedHook)
        seeded.append("torch (on import)")
    _STATE.clear()
    _STATE.update({"seed": seed, "deterministic": deterministic, "seeded": seeded})
    _notify(seed, deterministic, seeded, _target)
    return seed


# Called with (seed, deterministic, seeded, target) after every seeding: the tracking
# engine registers one that records the seed on the run that was seeded (``target``,
# when ``init(seed=...)`` seeded it, else the newest active run); capture sits below
# the engine, so it calls back instead of importing it.
SeedListener = Callable[[int, bool, list[str], Any], None]
_LISTENERS: list[SeedListener] = []


def on_seed(listener: SeedListener) -> None:
    """Call ``listener(seed, deterministic, seeded, target)`` after each seeding (registered once).

    ``target`` is the run the seeding was for (``init(seed=...)``), or None for a plain
    ``seed_everything`` call or torch being seeded on import.
    """
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def _notify(seed: int, deterministic: bool, seeded: list[str], target: Any = None) -> None:
    for listener in list(_LISTENERS):
        listener(seed, deterministic, list(seeded), target)


def current_seed_info() -> dict[str, Any]:
    """The last ``seed_everything`` call: ``{"seed", "deterministic", "seeded"}``, or ``{}``."""
    return {**_STATE, "seeded": list(_STATE.get("seeded", []))} if _STATE else {}


def _seed_torch(torch: Any, seed: int, deterministic: bool) -> bool:
    try:
        torch.manual_seed(seed)  # also seeds every CUDA device (lazily, when CUDA initialises)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        return True
    except Exception:  # a broken torch install must not stop training
        return False


def _cuda_seeded(torch: Any, seed: int) -> bool:
    try:
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
            return True
    except Exception:
        pass
    return False


class _TorchSeedHook:
    """Seeds torch right after its first import, with the latest ``seed_everything`` seed.

    A meta-path finder that answers only for ``torch``: it asks the other finders for
    the real spec and wraps that spec's loader so that ``exec_module`` seeds torch once
    the package has finished initialising. It removes itself after firing. Duck-typed:
    subclassing ``importlib.abc.MetaPathFinder`` would make ``import labledger`` import
    importlib.resources, tempfile and shutil (a third of its import time).
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "torch":
            return None
        _remove_hook()
        import importlib.util

        spec = importlib.util.find_spec("torch")
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        inner = loader.exec_module

        def exec_module(module: Any) -> None:
            inner(module)
            _after_torch_import(module)

        try:
            loader.exec_module = exec_module
        except (AttributeError, TypeError):
            pass
        return spec


def _after_torch_import(torch: Any) -> None:
    if not _STATE:
        return
    seed, det = int(_STATE["seed"]), bool(_STATE["deterministic"])
    seeded = [s for s in _STATE["seeded"] if s != "torch (on import)"]
    if _seed_torch(torch, seed, det):
        seeded.append("torch")
        if _cuda_seeded(torch, seed):
            seeded.append("torch.cuda")
    _STATE["seeded"] = seeded
    _notify(seed, det, list(seeded))


_HOOK: _TorchSeedHook | None = None


def _install_torch_hook() -> bool:
    global _HOOK
    if _HOOK is not None and _HOOK in sys.meta_path:
        return True
    import importlib.util

    try:
        if importlib.util.find_spec("torch") is None:
            return False
    except (ImportError, ValueError):
        return False
    _HOOK = _TorchSeedHook()
    sys.meta_path.insert(0, _HOOK)
    return True


def _remove_hook() -> None:
    global _HOOK
    if _HOOK is not None:
        try:
            sys.meta_path.remove(_HOOK)
        except ValueError:
            pass
        _HOOK = None
