"""Code snapshot outside git: the entry script and the local modules it imported.

"Local" means a module whose ``__file__`` lies under the entry script's directory and
not inside a virtual environment or ``site-packages``. The files are stored as one
blob, a JSON object ``{relative_path: text}``; ``env.code_snapshot`` keeps its sha256
and a per-file list of ``{path, sha256, size}``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "SNAPSHOT_FILE_MAX",
    "SNAPSHOT_TOTAL_MAX",
    "capture_snapshot",
    "is_installed",
    "local_module_files",
]

SNAPSHOT_FILE_MAX = 1 << 20
SNAPSHOT_TOTAL_MAX = 10 << 20
_SKIP_PARTS = frozenset(
    {"site-packages", "dist-packages", ".venv", "venv", "__pycache__", ".tox", "node_modules"}
)


def is_installed(script: Path) -> bool:
    """True for an entry point inside an environment (``python -m pytest``, console scripts):
    installed code is identified by ``env.packages``, not snapshotted."""
    if _SKIP_PARTS.intersection(script.parts):
        return True
    import sysconfig

    paths = sysconfig.get_paths()
    for key in ("scripts", "purelib", "platlib", "stdlib"):
        p = paths.get(key)
        if p and script.is_relative_to(Path(p).resolve()):
            return True
    return False


def local_module_files(base: Path) -> list[Path]:
    """Source files of imported modules that live under ``base`` (outside environments)."""
    out: set[Path] = set()
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not isinstance(f, str) or not f.endswith(".py"):
            continue
        try:
            p = Path(f).resolve()
            rel = p.relative_to(base)
        except (ValueError, OSError):
            continue
        if _SKIP_PARTS.intersection(rel.parts) or not p.is_file():
            continue
        out.add(p)
    return sorted(out)


def capture_snapshot(script: Path, put_blob: Callable[[bytes], str] | None) -> dict[str, Any]:
    base = script.parent
    files: dict[str, str] = {}
    listing: list[dict[str, Any]] = []
    excluded: list[dict[str, Any]] = []
    total = 0
    for p in [script, *(f for f in local_module_files(base) if f != script)]:
        rel = p.relative_to(base).as_posix()
        try:
            data = p.read_bytes()
        except OSError as exc:
            excluded.append(
                {"path": rel, "reason": f"unreadable: {exc.strerror or exc}", "size": None}
            )
            continue
        if len(data) > SNAPSHOT_FILE_MAX:
            excluded.append({"path": rel, "reason": "file cap", "size": len(data)})
            continue
        if total + len(data) > SNAPSHOT_TOTAL_MAX:
            excluded.append({"path": rel, "reason": "total cap", "size": len(data)})
            continue
        total += len(data)
        files[rel] = data.decode("utf-8", "replace")
        listing.append({"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    blob = json.dumps(files, sort_keys=True, ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256(blob).hexdigest()
    if put_blob is not None:
        digest = put_blob(blob)
    return {"sha256": digest, "root": str(base), "files": listing, "excluded": excluded}
