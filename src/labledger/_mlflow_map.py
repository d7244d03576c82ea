"""How MLflow's values map onto labledger's (shared by the server's MLflow API and the importer)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "CAPTURE_PREFIX",
    "GIT_TAGS",
    "STATUS_FROM_MLFLOW",
    "STATUS_TO_MLFLOW",
    "capture_tags",
    "env_from_tags",
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
    if not key or key.startswith(("mlflow.", "labledger.")) or "\x00" in key or "\x00" in value:
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


# -- labledger's capture carried as MLflow tags (the mlflow.run_context_provider plugin) --
#
# A run started with the unchanged ``mlflow`` client gets labledger's capture from the
# plugin (integrations/mlflow_context.py) as tags; the server folds them back into the
# run's ``env`` (and the patch into its blobs). MLflow caps a tag value at 8,000
# characters, so each JSON part is cut into numbered tags ``labledger.env.<part>.<n>``
# and the patch (zlib, base64) into ``labledger.patch.<n>``.

CAPTURE_PREFIX = "labledger."
_CHUNK = 7000
_MAX_PATCH_TAGS = 60  # about 420 kB of compressed patch; a bigger one is left out


def _chunks(prefix: str, text: str) -> dict[str, str]:
    return {
        f"{prefix}.{i}": text[o : o + _CHUNK] for i, o in enumerate(range(0, len(text), _CHUNK))
    }


def capture_tags(env: dict[str, Any], patch: bytes | None) -> dict[str, str]:
    """The tags that carry ``env`` (its JSON-able parts) and the uncommitted ``patch``."""
    import base64
    import zlib

    tags: dict[str, str] = {}
    for part, value in env.items():
        if value is None or not re.fullmatch(r"[a-z_]+", part):
            continue
        tags.update(_chunks(f"{CAPTURE_PREFIX}env.{part}", json.dumps(value, default=str)))
    if patch:
        text = base64.b64encode(zlib.compress(patch, 6)).decode()
        if len(text) <= _CHUNK * _MAX_PATCH_TAGS:
            tags.update(_chunks(f"{CAPTURE_PREFIX}patch", text))
    return tags


def env_from_tags(tags: dict[str, str]) -> tuple[dict[str, Any], bytes | None, list[str]]:
    """``(env parts, patch bytes or None, tag keys used)`` of :func:`capture_tags`'s tags;
    a part whose chunks are incomplete or not JSON is skipped."""
    import base64
    import binascii
    import zlib

    pieces: dict[str, dict[int, str]] = {}
    used = []
    for key, value in tags.items():
        m = re.fullmatch(r"labledger\.(env\.[a-z_]+|patch)\.(\d+)", key)
        if m is None:
            continue
        used.append(key)
        pieces.setdefault(m.group(1), {})[int(m.group(2))] = value
    env: dict[str, Any] = {}
    patch = None
    for name, parts in pieces.items():
        if sorted(parts) != list(range(len(parts))):
            continue
        text = "".join(parts[i] for i in range(len(parts)))
        try:
            if name == "patch":
                patch = zlib.decompress(base64.b64decode(text.encode()))
            else:
                env[name[4:]] = json.loads(text)
        except (ValueError, zlib.error, binascii.Error):
            continue
    return env, patch, used
