"""Finding a run's datasets by content: the same bytes anywhere are the same data.

A dataset is recorded with its absolute path and sha256 fingerprint
(:func:`labledger.capture.data.fingerprint`). On another machine, or in a fresh clone
after the author's clone was deleted, that path is gone while the same bytes are
elsewhere. :func:`find_datasets` looks, in order, at

1. the recorded path;
2. the recorded path relative to the recorded repository root, under each repository
   root given (the one ``repro`` runs from, the recorded one when it still exists);
3. each ``--data DIR``: the relative path, the file or folder name, the folder itself,
   then any file in it with the recorded size and sha256;
4. the artifact store: a blob with the recorded sha256 (a single-file dataset logged as
   an artifact), fetched into the cache.

A fingerprint match is enough; where it was found is reported with the check.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DataCheck", "find_datasets"]

_MAX_SCAN = 20_000  # files looked at per --data folder when searching by content


@dataclass
class DataCheck:
    name: str
    path: str  # the recorded path
    recorded: str | None
    actual: str | None  # the fingerprint at the recorded path (None: missing there)
    status: str  # "ok" | "changed" | "missing"
    found: str | None = None  # where the recorded bytes are (None: nowhere)
    source: str | None = None  # "recorded path" | "repository" | "--data" | "artifact store"
    rel: str | None = None  # the recorded path relative to the recorded repository root


def _fp(path: Path) -> str | None:
    from ..capture.data import fingerprint

    try:
        return str(fingerprint(path)["sha256"]) if path.exists() else None
    except (FileNotFoundError, OSError):
        return None


def _relative(path: str, root: str | None) -> str | None:
    if not root or not path:
        return None
    try:
        rel = Path(os.path.normpath(path)).relative_to(Path(os.path.normpath(root)))
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else None


def _scan(folder: Path, size: int | None, sha: str) -> Path | None:
    from ..capture.data import fingerprint

    seen = 0
    for dirpath, _dirs, files in os.walk(folder):
        for f in sorted(files):
            seen += 1
            if seen > _MAX_SCAN:
                return None
            p = Path(dirpath) / f
            try:
                if size is not None and p.stat().st_size != size:
                    continue
                if fingerprint(p)["sha256"] == sha:
                    return p
            except OSError:
                continue
    return None


def _from_artifacts(
    fetch: Callable[[str, str], Path | None] | None, sha: str, name: str
) -> Path | None:
    if fetch is None:
        return None
    try:
        return fetch(sha, name)
    except Exception:  # an unreachable artifact store only means "not found there"
        return None


def find_datasets(
    datasets: Sequence[dict[str, Any]],
    *,
    recorded_root: str | None = None,
    roots: Iterable[str | os.PathLike[str]] = (),
    data_dirs: Iterable[str | os.PathLike[str]] = (),
    artifact: Callable[[str, str], Path | None] | None = None,
) -> list[DataCheck]:
    """One :class:`DataCheck` per recorded dataset, with where its recorded bytes were found.

    ``artifact(sha256, name)`` returns a local path holding a blob of the artifact
    store with that sha256, or None.
    """
    root_list = [Path(r) for r in roots]
    dir_list = [Path(d).expanduser().resolve() for d in data_dirs]
    out = []
    for d in datasets:
        path = str(d.get("path") or "")
        name = str(d.get("name") or path)
        recorded = d.get("sha256")
        rel = _relative(path, recorded_root)
        actual = _fp(Path(path)) if path else None
        check = DataCheck(name, path, recorded, actual, "missing", rel=rel)
        out.append(check)
        if recorded is None:
            check.status = "missing" if actual is None else "changed"
            continue
        if actual == recorded:
            check.status, check.found, check.source = "ok", path, "recorded path"
            continue
        seen_other = actual is not None
        candidates: list[tuple[Path, str]] = []
        if rel:
            candidates += [(r / rel, "repository") for r in root_list]
        base = Path(path).name
        for folder in dir_list:
            if rel:
                candidates.append((folder / rel, "--data"))
            if base:
                candidates.append((folder / base, "--data"))
            candidates.append((folder, "--data"))
        hit: tuple[Path, str] | None = None
        for cand, source in candidates:
            fp = _fp(cand)
            if fp == recorded:
                hit = (cand, source)
                break
            seen_other = seen_other or (fp is not None and source == "repository")
        if hit is None and int(d.get("files") or 1) == 1:
            size = d.get("size") if isinstance(d.get("size"), int) else None
            for folder in dir_list:
                if folder.is_dir() and (p := _scan(folder, size, str(recorded))) is not None:
                    hit = (p, "--data")
                    break
            if hit is None and (p := _from_artifacts(artifact, str(recorded), base or name)):
                hit = (p, "artifact store")
        if hit is not None:
            check.status, check.found, check.source = "ok", str(hit[0]), hit[1]
        else:
            check.status = "changed" if seen_other else "missing"
    return out
