"""Installed distributions (``importlib.metadata``, never a pip subprocess) and their sources.

``packages()`` returns ``{name: version}`` for every distribution visible on
``sys.path`` (the first one wins when a name appears twice, as for imports), and
``package_sources`` describes editable and VCS installs from PEP 610
``direct_url.json``. ``requirements()`` turns them back into a pip requirements file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from .secrets import strip_url_credentials

__all__ = ["capture_packages", "normalize_name", "requirements"]

_NAME_RE = re.compile(r"^Name:\s*(.+?)\s*$", re.MULTILINE)
_VERSION_RE = re.compile(r"^Version:\s*(.+?)\s*$", re.MULTILINE)


def normalize_name(name: str) -> str:
    """PEP 503 normalisation (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _name_version(dist: Any) -> tuple[str | None, str | None]:
    # Reading two header fields by hand is ~10x faster than the email parser behind
    # ``dist.metadata`` (which matters with hundreds of distributions).
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if text:
        head = text.split("\n\n", 1)[0]
        n, v = _NAME_RE.search(head), _VERSION_RE.search(head)
        if n and v:
            return n.group(1), v.group(1)
    try:
        return dist.metadata["Name"], dist.version
    except Exception:  # a broken dist-info must not stop capture
        return None, None


def _source(dist: Any) -> dict[str, Any] | None:
    raw = dist.read_text("direct_url.json")
    if not raw:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    url = info.get("url")
    src: dict[str, Any] = {
        "editable": bool((info.get("dir_info") or {}).get("editable", False)),
        "url": strip_url_credentials(url) if isinstance(url, str) else None,
        "vcs": None,
        "commit": None,
    }
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict):
        src["vcs"] = vcs.get("vcs")
        src["commit"] = vcs.get("commit_id")
        if vcs.get("requested_revision"):
            src["requested_revision"] = vcs["requested_revision"]
    if not src["editable"] and src["vcs"] is None and "archive_info" not in info:
        # a plain local directory install: still worth recording where it came from
        src["local"] = True
    return src


class _InfoDir:
    """A ``*.dist-info``/``*.egg-info`` folder (or egg-info file), read like a Distribution."""

    def __init__(self, path: str, is_file: bool) -> None:
        self.path = path
        self.is_file = is_file

    def read_text(self, name: str) -> str | None:
        if self.is_file:
            target = self.path if name in ("PKG-INFO", "METADATA") else None
        else:
            target = os.path.join(self.path, name)
        if target is None:
            return None
        try:
            with open(target, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return None

    @property
    def metadata(self) -> Any:
        import importlib.metadata as md
        from pathlib import Path

        return md.PathDistribution(Path(self.path)).metadata

    @property
    def version(self) -> str:
        return str(self.metadata["Version"])


def _distributions() -> Iterator[Any]:
    """What ``importlib.metadata.distributions()`` yields, found with ``os.scandir``.

    importlib.metadata costs ~50 ms to import and is slower to walk; this reads the
    same ``*.dist-info``/``*.egg-info`` entries of every sys.path folder, in order.
    Anything unusual on sys.path (a zip file, an ``.egg``) falls back to it.
    """
    found: list[Any] = []
    for entry in sys.path:
        folder = entry or "."
        try:
            with os.scandir(folder) as it:
                names = [(e.name, e.is_file()) for e in it]
        except (NotADirectoryError, FileNotFoundError):
            if os.path.isfile(folder):
                return _md_distributions()
            continue
        except OSError:
            continue
        for name, is_file in names:
            low = name.lower()
            if low.endswith(".egg"):
                return _md_distributions()
            if low.endswith((".dist-info", ".egg-info")):
                found.append(_InfoDir(os.path.join(folder, name), is_file))
    return iter(found)


def _md_distributions() -> Iterator[Any]:
    import importlib.metadata as md

    return iter(md.distributions())


def capture_packages() -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(``{name: version}``, ``{name: source}`` for direct-URL installs)."""
    packages: dict[str, str] = {}
    sources: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for dist in _distributions():
        name, version = _name_version(dist)
        if not name or version is None:
            continue
        key = normalize_name(name)
        if key in seen:
            continue
        seen.add(key)
        packages[name] = version
        src = _source(dist)
        if src is not None:
            sources[name] = src
    return dict(sorted(packages.items(), key=lambda kv: kv[0].lower())), sources


def requirements(
    packages: Mapping[str, str], sources: Mapping[str, Mapping[str, Any]] | None = None
) -> str:
    """A pip requirements file: ``name==version``, VCS installs as ``name @ git+url@commit``.

    Editable and local-directory installs cannot be pinned to an index version; they
    become a comment with their path so that the file stays installable.
    """
    lines: list[str] = []
    srcs = sources or {}
    for name in sorted(packages, key=str.lower):
        version = packages[name]
        src = srcs.get(name) or {}
        url = src.get("url")
        if src.get("vcs") and url:
            ref = src.get("commit") or src.get("requested_revision")
            lines.append(f"{name} @ {src['vcs']}+{url}" + (f"@{ref}" if ref else ""))
        elif src.get("editable") or src.get("local"):
            where = f" from {url}" if url else ""
            lines.append(
                f"# {name}=={version} (editable/local install{where}; install it from source)"
            )
        elif url and not src.get("editable"):
            lines.append(f"{name} @ {url}")
        else:
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"
