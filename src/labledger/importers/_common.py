"""What importers share: the summary they return and the artifact writer."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..artifacts import BlobStore
    from ..store import Store

__all__ = [
    "ImportSummary",
    "Progress",
    "artifact_name",
    "blob_store_for",
    "store_artifact_dir",
    "through_core",
]

# on_progress(done, total, description): importers report through a plain callback
Progress = Callable[[int, int | None, str], None]

_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class ImportSummary:
    """Counts of one import (``skipped``: runs already imported earlier)."""

    source: str
    experiments: int = 0
    runs: int = 0
    skipped: int = 0
    points: int = 0
    params: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    # what the source holds that labledger does not import (yet), by kind: {"images": 3}
    not_imported: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "experiments": self.experiments,
            "runs": self.runs,
            "skipped": self.skipped,
            "points": self.points,
            "params": self.params,
            "artifacts": self.artifacts,
            "artifact_bytes": self.artifact_bytes,
            "seconds": round(self.seconds, 3),
            "errors": list(self.errors),
            "not_imported": dict(self.not_imported),
        }


def artifact_name(text: str) -> str:
    """A labledger artifact name (letters, digits, ``._-``) for an MLflow path component."""
    name = _NAME_BAD.sub("_", text).strip("._-")[:128] or "artifact"
    return name.replace("..", "_")


def store_artifact_dir(
    store: Store,
    blobs: BlobStore,
    project: str,
    run_id: str,
    root: Path,
    metadata: dict[str, Any],
    *,
    skip: Collection[str] = (),
    follow_links: bool = False,
) -> tuple[int, int]:
    """Register every top-level entry under ``root`` as an artifact of the run.

    A file becomes artifact ``<file name>`` (kind ``file``), a directory artifact
    ``<dir name>`` (kind ``model`` when it holds an ``MLmodel``, else ``directory``).
    Bytes go to ``blobs`` content-addressed (a blob already there is not copied again).
    Entries named in ``skip`` are left out; a top-level symbolic link is followed only
    with ``follow_links`` (W&B's ``wandb.save`` links the saved file into ``files/``).
    Returns (files, bytes).
    """
    from ..artifacts import hash_file

    files_n = bytes_n = 0
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name in skip or (entry.is_symlink() and not follow_links):
            continue
        if entry.is_symlink():
            entry = entry.resolve()
            if not entry.exists():
                continue
        paths = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
        if not paths:
            continue
        manifest = []
        for p in paths:
            sha, size = hash_file(p)
            if not blobs.has(sha):
                blobs.put_file(p, sha, size)
            rel = p.name if entry.is_file() else p.relative_to(entry).as_posix()
            manifest.append({"path": rel, "sha256": sha, "size": size})
            files_n += 1
            bytes_n += size
        if entry.is_file():
            kind, typ = "file", "file"
        else:
            kind = "model" if (entry / "MLmodel").exists() else "directory"
            typ = "directory"
        store.create_artifact_version(
            project,
            artifact_name(name),
            kind,
            run_id,
            manifest,
            dict(metadata, type=typ, mlflow_prefix=name if typ == "directory" else ""),
            storage=getattr(blobs, "uri", None),
        )
    return files_n, bytes_n


def blob_store_for(store: Store, artifacts_uri: str | None) -> BlobStore:
    from ..artifacts import open_blob_store

    return open_blob_store(artifacts_uri, store.uri)


class _ThroughCore:
    """A store whose run writes go through the write core as the local user; every other
    method is the store's own (reads, artifacts, MLflow objects)."""

    def __init__(self, store: Any, actor: Any) -> None:
        from ..store import WriteCore

        self._store = store
        self._core = WriteCore(store)
        self._actor = actor

    def create_run(self, run: dict[str, Any]) -> None:
        self._core.create_run(self._actor, run)

    def write_batch(self, batch: Any, *, actor: str | None = None) -> bool:
        return self._core.write_batch(self._actor, batch)[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def through_core(store: Store) -> Store:
    """The importer's target: run writes through the write core (``labledger.store.WriteCore``).

    Into a server the server's core applies the rules, as the token's user (the client
    sends what it imports); into an embedded store the local user's core does (the
    policy at finish; the imported run keeps its MLflow/TensorBoard author, as runs
    made by the local engine keep theirs)."""
    from typing import cast

    from .._author import local_author
    from ..store import Actor, Location

    if Location.of(store.uri).is_remote:
        return store
    return cast("Store", _ThroughCore(store, Actor.local_user(local_author())))
