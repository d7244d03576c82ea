"""seed_everything: one call that seeds every random number generator a training uses."""

from __future__ import annotations

import os
import random
import sys
from typing import Any

__all__ = ["current_seed_info", "seed_everything"]

_STATE: dict[str, Any] = {}


def seed_everything(seed: int | None = None, deterministic: bool = False) -> int:
    """Seed ``random``, numpy and torch (+CUDA) when importable; return the seed used.

    With ``seed=None`` a fresh seed is drawn from the OS and returned, so the run can
    still be repeated. Sets ``PYTHONHASHSEED`` for child processes (the current
    interpreter's hash seed cannot change after start-up). ``deterministic=True`` also
    asks torch for deterministic algorithms (and sets ``CUBLAS_WORKSPACE_CONFIG``).
    The seed is recorded on the active run, if any, and on runs started later.
    """
    if seed is None and os.environ.get("LABLEDGER_REPRO_SEED", "").isdigit():
        seed = int(os.environ["LABLEDGER_REPRO_SEED"])  # `labledger repro` replays a drawn seed
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
        try:
            import torch

            torch.manual_seed(seed)
            seeded.append("torch")
            if torch.cuda.is_available():
                torch.cuda.manual_seed_all(seed)
                seeded.append("torch.cuda")
            if deterministic:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True)
                torch.backends.cudnn.deterministic = True
                torch.backends.cudnn.benchmark = False
        except Exception:  # a broken torch install must not stop training
            pass
    _STATE.clear()
    _STATE.update({"seed": seed, "deterministic": deterministic, "seeded": seeded})
    from ._run import _active_runs

    for run in _active_runs():
        run._record_seed(seed, deterministic, seeded)
    return seed


def current_seed_info() -> dict[str, Any]:
    return dict(_STATE)
