"""Manifests: the list of ``{path, sha256, size}`` that makes one artifact version."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from .._exceptions import InvalidArtifactError
from ._artifact_paths import validate_relpath

__all__ = ["check_manifest", "is_sha256", "manifest_digest"]

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
