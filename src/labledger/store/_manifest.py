"""Manifests: the list of ``{path, sha256, size}`` that makes one artifact version."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from .._exceptions import InvalidArtifactError
from ._artifact_paths import validate_relpath

__all__ = [
    "blob_problems",
    "check_blobs",
    "check_manifest",
    "describe_problems",
    "is_sha256",
    "manifest_digest",
    "root_type",
]

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(value: str) -> bool:
    """A lowercase hex sha256 digest (how blobs are named)."""
    return bool(_SHA_RE.match(value))


def manifest_digest(root_type: str, manifest: Sequence[dict[str, Any]]) -> str:
    """sha256 of the canonical JSON ``{"type": "file"|"directory", "files": [sorted entries]}``."""
    entries: list[dict[str, Any]] = [
        {"path": str(m["path"]), "sha256": str(m["sha256"]), "size": int(m["size"])}
        for m in manifest
    ]
    entries.sort(key=lambda m: str(m["path"]))
    doc = json.dumps({"type": root_type, "files": entries}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def root_type(metadata: Any, files: Sequence[Any]) -> str:
    """The ``type`` a version's digest was computed with: its metadata's, else ``file`` for
    one file and ``directory`` otherwise (as ``create_artifact_version`` decides)."""
    meta = metadata if isinstance(metadata, dict) else {}
    if "type" in meta:
        return str(meta["type"])
    return "directory" if len(files) != 1 else "file"


def check_manifest(manifest: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validated, sorted copy of a manifest (paths, hex digests, sizes, no duplicates)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for m in manifest:
        path = validate_relpath(m.get("path"))
        sha = str(m.get("sha256", ""))
        if not is_sha256(sha):
            raise InvalidArtifactError(path, "a manifest entry needs a lowercase hex sha256")
        size = m.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidArtifactError(path, "a manifest entry needs a size >= 0")
        if path in seen:
            raise InvalidArtifactError(path, "the path appears twice in the manifest")
        seen.add(path)
        out.append({"path": path, "sha256": sha, "size": size})
    out.sort(key=lambda m: m["path"])
    return out


def blob_problems(blobs: Any, manifest: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Manifest entries whose blob is absent or holds another number of bytes.

    Each problem is ``{path, sha256, size, actual}`` (``actual`` None: no such blob).
    ``blobs`` is a blob store; one with a ``size(sha)`` method (local, S3) is checked
    for sizes, one without (over HTTP: the server checks) only for existence.
    """
    size_of = getattr(blobs, "size", None)
    out: list[dict[str, Any]] = []
    seen: dict[str, int | None] = {}
    for m in manifest:
        sha, declared = str(m["sha256"]), int(m["size"])
        if sha not in seen:
            if size_of is not None:
                seen[sha] = size_of(sha)
            else:
                seen[sha] = declared if blobs.has(sha) else None
        actual = seen[sha]
        if actual != declared:
            out.append({"path": m.get("path"), "sha256": sha, "size": declared, "actual": actual})
    return out


def describe_problems(problems: Sequence[dict[str, Any]]) -> str:
    """One line for :func:`blob_problems`' answer (the first few entries)."""
    parts = []
    for p in problems[:3]:
        if p["actual"] is None:
            parts.append(f"{p['path']}: blob {p['sha256'][:12]} is not in the artifact store")
        else:
            parts.append(
                f"{p['path']}: the manifest says {p['size']} bytes, "
                f"blob {p['sha256'][:12]} holds {p['actual']}"
            )
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(parts) + more


def check_blobs(blobs: Any, manifest: Iterable[dict[str, Any]], name: str) -> None:
    """Raise InvalidArtifactError unless every blob of ``manifest`` is there with its declared size."""
    problems = blob_problems(blobs, manifest)
    if problems:
        raise InvalidArtifactError(name, describe_problems(problems))
