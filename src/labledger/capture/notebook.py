"""The code of a run started from Jupyter or IPython, where there is no entry script.

The code is a re-runnable export of the cells executed so far in this session, in the
order they ran (IPython's input history; line and cell magics and shell escapes are
commented out), stored as a blob like a code snapshot: ``{"notebook.py": source}``; it is
the run's entry point (``env.command.entry_point = "notebook.py"``). The notebook's own
path is recorded when the kernel knows it (``JPY_SESSION_NAME``, set by Jupyter Server 2;
``__vsc_ipynb_file__`` in VS Code); when no cell was executed through the history (a
kernel without one), the notebook file's code cells are the code instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["export_cells", "in_notebook", "notebook_path", "notebook_snapshot"]

MAX_SOURCE = 2_000_000


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:
        return None


def in_notebook() -> bool:
    """True inside an IPython shell or Jupyter kernel (and no entry script is running)."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if isinstance(script, str) and os.path.isfile(script):
        return False
    return _shell() is not None


def notebook_path() -> Path | None:
    """The notebook file the kernel runs, when it says (VS Code, Jupyter Server 2)."""
    shell = _shell()
    return _notebook_path(shell) if shell is not None else None


def _notebook_path(shell: Any) -> Path | None:
    ns = getattr(shell, "user_ns", {}) or {}
    for candidate in (ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")):
        if (
            isinstance(candidate, str)
            and candidate.endswith(".ipynb")
            and os.path.isfile(candidate)
        ):
            return Path(candidate).resolve()
    return None


def _cells_from_file(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            cells.append("".join(src) if isinstance(src, list) else str(src))
    return cells


def _cells_from_history(shell: Any) -> list[str]:
    hist = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    cells: list[Any] = hist if isinstance(hist, list) else []
    if not isinstance(hist, list):
        ns = getattr(shell, "user_ns", {}) or {}
        given = ns.get("In")
        cells = given if isinstance(given, list) else []
    return [c for c in cells if isinstance(c, str) and c.strip()]


def export_cells(cells: list[str]) -> str:
    """The cells as one Python script, in order: ``%magic``, ``%%cell magic`` and ``!shell``
    lines commented out so ``python notebook.py`` runs the notebook's Python."""
    out = []
    for i, cell in enumerate(cells, 1):
        lines = cell.rstrip().splitlines()
        if lines and lines[0].lstrip().startswith("%%"):
            lines = [f"# {ln}" for ln in lines]
        else:
            lines = [f"# {ln}" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines]
        out.append(f"# %% [{i}]\n" + "\n".join(lines))
    return "\n\n".join(out) + "\n"


def notebook_snapshot(put_blob: Callable[[bytes], str] | None) -> dict[str, Any] | None:
    """``env.notebook``: where the code came from, its cells and the sha256 of the stored source."""
    shell = _shell()
    if shell is None:
        return None
    path = _notebook_path(shell)
    cells, origin = _cells_from_history(shell), "history"
    if not cells and path is not None:
        cells, origin = _cells_from_file(path), "file"
    source = export_cells(cells)
    data = source.encode("utf-8")[:MAX_SOURCE]
    files = {"notebook.py": data.decode("utf-8", "ignore")}
    blob = json.dumps(files, sort_keys=True, ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256(blob).hexdigest()
    if put_blob is not None:
        digest = put_blob(blob)
    return {
        "origin": origin,
        "path": str(path) if path is not None else None,
        "cells": len(cells),
        "sha256": digest,
        "files": [
            {"path": "notebook.py", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        ],
        "shell": type(shell).__name__,
    }
