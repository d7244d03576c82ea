"""Artifact store: content-addressed files and models with versions, aliases and lineage."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._run import Run

__all__ = ["log_artifact", "use_artifact"]


def log_artifact(run: Run, path: str | os.PathLike[str], *, name: str | None = None, kind: str | None = None) -> Any:
    raise NotImplementedError("artifact logging is being built (issue 4)")


def use_artifact(run: Run, ref: str) -> Any:
    raise NotImplementedError("artifact lineage is being built (issue 4)")
