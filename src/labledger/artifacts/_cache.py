"""Putting artifact versions on local disk: into a chosen directory, or into the verified cache.

Every file is verified against its sha256 while it downloads, and every manifest path
is validated again before anything is written (a manifest is data from a database or
a server, not something to trust).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import IntegrityError
from .._settings import setting
from ..store import safe_destination
from ._blobstore import hash_file, reporting_copied_bytes

if TYPE_CHECKING:
    from ._blobstore import BlobStore

__all__ = ["cache_dir", "cached_path", "check_manifest_digest", "materialize"]


def cache_dir() -> Path:
    """LABLEDGER_CACHE_DIR, else ``$XDG_CACHE_HOME/labledger/artifacts`` (``~/.cache/...``)."""
    env = setting("LABLEDGER_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "labledger" / "artifacts"


def materialize(
    version: dict[str, Any],
    blobs: BlobStore,
    dest: str | os.PathLike[str],
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write every file of ``version`` under ``dest`` (verified); return the written paths.

    ``on_progress(bytes_done, bytes_total)`` follows the transfer (a progress bar).
    """
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    targets = [
        (f, safe_destination(root, f["path"])) for f in version["files"]
    ]  # validate all first
    check_manifest_digest(version)  # then the files must be the version's
    written: list[Path] = []
    total = sum(int(f["size"]) for f, _ in targets)
    done = 0
    for f, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        safe_destination(root, f["path"])  # again: a directory created above must not be a link
        if on_progress is None:
            blobs.download(f["sha256"], target)
        else:
            size = int(f["size"])

            def report(n: int, base: int = done, size: int = size) -> None:
                on_progress(base + min(n, size), total)

            with reporting_copied_bytes(report):
                blobs.download(f["sha256"], target)
            done += size
            on_progress(done, total)
        written.append(target)
    return written


def check_manifest_digest(version: dict[str, Any]) -> None:
    """IntegrityError unless ``version``'s files hash to its digest: a file row pointed at
    other bytes is refused before anything is downloaded, not reported as verified."""
    from ..store import manifest_digest, root_type

    got = manifest_digest(root_type(version.get("metadata"), version["files"]), version["files"])
    if got != version["sha256"]:
        raise IntegrityError(
            f"the manifest of artifact {version.get('uri') or version['sha256'][:16]}",
            str(version["sha256"]),
            got,
            reason=f"its files hash to {got[:16]}…, not to its version digest "
            f"{str(version['sha256'])[:16]}… (a file row was changed)",
        )


def _result_path(version: dict[str, Any], root: Path) -> Path:
    files = version["files"]
    if version.get("metadata", {}).get("type") == "file" and len(files) == 1:
        return root.joinpath(*files[0]["path"].split("/"))
    return root


def _marker_ok(version: dict[str, Any], root: Path, marker: Path) -> bool:
    """True when the cached copy still matches the manifest (re-hashing files whose mtime moved)."""
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    for f in version["files"]:
        p = root.joinpath(*f["path"].split("/"))
        try:
            st = p.stat()
        except OSError:
            return False
        if st.st_size != f["size"]:
            return False
        if recorded.get(f["path"]) != st.st_mtime_ns:
            sha, _ = hash_file(p)
            if sha != f["sha256"]:
                return False
    return True


def cached_path(version: dict[str, Any], blobs: BlobStore, cache: Path | None = None) -> Path:
    """A verified local copy of ``version`` in the cache; downloads it when missing or damaged.

    Layout: ``CACHE/<manifest sha256>/`` holds the files, ``CACHE/<sha>.ok`` records
    each file's mtime at download so later hits are checked cheaply (a file touched
    since is re-hashed; a damaged copy is downloaded again).
    """
    check_manifest_digest(version)
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    sha = version["sha256"]
    root = cache / sha
    marker = cache / f"{sha}.ok"
    if root.is_dir() and marker.is_file() and _marker_ok(version, root, marker):
        return _result_path(version, root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=cache))
    try:
        materialize(version, blobs, tmp)
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()
        if root.exists():
            shutil.rmtree(root)
        try:
            os.rename(tmp, root)
        except OSError:
            # another process put a copy there first: use theirs when it is good
            if not (root.is_dir() and _marker_ok(version, root, marker)):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    stamps = {
        f["path"]: root.joinpath(*f["path"].split("/")).stat().st_mtime_ns for f in version["files"]
    }
    fd, tmp_marker = tempfile.mkstemp(dir=cache, prefix=".marker-")
    with os.fdopen(fd, "w") as fh:
        json.dump(stamps, fh)
    os.replace(tmp_marker, marker)
    return _result_path(version, root)
