"""How MLflow's values map onto labledger's (shared by the server's MLflow API and the importer)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "GIT_TAGS",
    "STATUS_FROM_MLFLOW",
    "STATUS_TO_MLFLOW",
    "param_text",
    "run_tag",
    "run_tags",
    "type_param",
]

STATUS_TO_MLFLOW = {
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "crashed": "FAILED",
    "killed": "KILLED",
    "pruned": "KILLED",
}
STATUS_FROM_MLFLOW = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "killed",
}
# MLflow tag -> key of labledger's env.git
GIT_TAGS = {
    "mlflow.source.git.commit": "commit",
    "mlflow.source.git.branch": "branch",
    "mlflow.source.git.repoURL": "remote",
}


def run_tag(key: str, value: str) -> str | None:
    """The run tag an MLflow tag becomes: a custom tag ``owner=ada`` is the run's tag
    ``owner=ada`` (``key`` alone when the value is empty); MLflow's own ``mlflow.*``
    tags and ones too long for a run tag (250 characters) stay in ``env.mlflow.tags`` only."""
    if not key or key.startswith("mlflow.") or "\x00" in key or "\x00" in value:
        return None
    text = f"{key}={value}" if value else key
    return text if len(text) <= 250 else None


def run_tags(current: list[str], key: str, value: str | None) -> list[str]:
    """``current`` run tags with MLflow tag ``key`` set to ``value`` (None: removed)."""
    kept = [t for t in current if t != key and not t.startswith(key + "=")]
    new = None if value is None else run_tag(key, value)
    if new is not None:
        kept.append(new)
    return kept if len(kept) <= 1000 else current


_INT_RE = re.compile(r"[+-]?\d+\Z")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")


def type_param(text: str) -> Any:
    """A param string as labledger stores it in ``config``: a number when it parses as one
    (``"0.001"`` -> 0.001, ``"64"`` -> 64); anything else stays the string it was."""
    s = text.strip()
    if _INT_RE.match(s):
        n = int(s)
        if -(2**63) <= n < 2**63:
            return n
    if _FLOAT_RE.match(s):
        f = float(s)
        if math.isfinite(f):
            return f
    return text


def param_text(value: Any) -> str:
    """A config value as an MLflow param string."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)
