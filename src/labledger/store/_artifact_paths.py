"""Validation of artifact names, aliases, references and the paths inside artifacts.

Everything a user or a manifest hands us is checked here, in one place, before a byte
is read or written: names use a small charset, manifest paths are relative POSIX paths
without ``..``, and a directory walk refuses symlinks that leave the logged directory
and special files (devices, FIFOs, sockets).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .._exceptions import InvalidArtifactError

__all__ = [
    "MAX_NAME",
    "MAX_PATH",
    "ArtifactRefParts",
    "ScannedFile",
    "default_name",
    "parse_ref",
    "safe_destination",
    "scan",
    "validate_alias",
    "validate_kind",
    "validate_name",
    "validate_relpath",
]

MAX_NAME = 128
MAX_PATH = 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSION_RE = re.compile(r"^v?(\d+)$")
_RESERVED_ALIASES = frozenset({"latest"})


def validate_name(name: object, what: str = "name") -> str:
    """An artifact (or project) name: letters, digits, ``._-``, at most 128 characters, no ``..``."""
    if not isinstance(name, str):
        raise InvalidArtifactError(name, f"the {what} must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidArtifactError(name, f"the {what} is empty")
    if len(name) > MAX_NAME:
        raise InvalidArtifactError(name, f"the {what} is longer than {MAX_NAME} characters")
    if ".." in name:
        raise InvalidArtifactError(name, f"the {what} must not contain '..'")
    if not _NAME_RE.match(name):
        raise InvalidArtifactError(
            name,
            f"the {what} may only hold letters, digits, '.', '_' and '-' and must start with a letter or digit",
        )
    return name


def validate_kind(kind: object) -> str:
    return validate_name(kind, "kind")


def validate_alias(alias: object, *, user: bool = True) -> str:
    """An alias: a name that does not look like a version; ``latest`` is kept for labledger."""
    validate_name(alias, "alias")
    assert isinstance(alias, str)
    if _VERSION_RE.match(alias):
        raise InvalidArtifactError(alias, "an alias must not look like a version (v0, v1, ...)")
    if user and alias in _RESERVED_ALIASES:
        raise InvalidArtifactError(
            alias, "'latest' always names the newest version and cannot be set by hand"
        )
    return alias


def default_name(path: Path) -> str:
    """A valid artifact name derived from a file or directory name."""
    base = path.name or "artifact"
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", base).replace("..", "-").strip("-._") or "artifact"
    return clean[:MAX_NAME]


@dataclass(frozen=True)
class ArtifactRefParts:
    """A parsed reference ``[project/]name[:vN|:alias]``; ``version`` or ``alias`` is set."""

    project: str | None
    name: str
    version: int | None
    alias: str | None

    def __str__(self) -> str:
        sel = f"v{self.version}" if self.version is not None else self.alias
        head = f"{self.project}/" if self.project else ""
        return f"{head}{self.name}:{sel}"


def parse_ref(ref: object) -> ArtifactRefParts:
    """Parse ``name``, ``name:v3``, ``name:3``, ``name:alias`` or ``project/name:alias``.

    A reference without a selector means ``latest``.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidArtifactError(
            ref, "an artifact reference looks like name, name:v3 or project/name:alias"
        )
    text = ref.strip()
    project: str | None = None
    if "/" in text:
        project, text = text.split("/", 1)
        validate_name(project, "project")
    name, sep, selector = text.partition(":")
    validate_name(name)
    if not sep or selector == "":
        return ArtifactRefParts(project, name, None, "latest")
    m = _VERSION_RE.match(selector)
    if m:
        return ArtifactRefParts(project, name, int(m.group(1)), None)
    validate_alias(selector, user=False)
    return ArtifactRefParts(project, name, None, selector)


def validate_relpath(path: object) -> str:
    """A path inside an artifact: relative, ``/``-separated, no ``.``/``..``/empty parts, no control chars."""
    if not isinstance(path, str) or not path:
        raise InvalidArtifactError(path, "a path inside an artifact must be a non-empty string")
    if len(path) > MAX_PATH:
        raise InvalidArtifactError(path, f"the path is longer than {MAX_PATH} characters")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise InvalidArtifactError(path, "absolute paths are not allowed inside an artifact")
    if "\\" in path:
        raise InvalidArtifactError(path, "backslashes are not allowed in paths inside an artifact")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise InvalidArtifactError(path, "control characters are not allowed in paths")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise InvalidArtifactError(
                path, "'..', '.' and empty parts are not allowed in paths inside an artifact"
            )
    return path


@dataclass(frozen=True)
class ScannedFile:
    relpath: str  # validated, '/'-separated
    source: str  # where to read the bytes from


def _check_regular(p: str, st: os.stat_result, shown: object) -> None:
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        kind = "a device file"
    elif stat.S_ISFIFO(st.st_mode):
        kind = "a FIFO"
    elif stat.S_ISSOCK(st.st_mode):
        kind = "a socket"
    else:
        kind = "not a regular file"
    raise InvalidArtifactError(shown, f"{kind} cannot be stored as an artifact")


def scan(path: str | os.PathLike[str]) -> tuple[str, list[ScannedFile]]:
    """The files of ``path``: ``("file", [one])`` or ``("directory", [... sorted by path])``.

    Inside a directory, a symlink is followed only when its target stays inside the
    directory (its content is stored under the link's path); one that points outside
    raises, as do device files, FIFOs and sockets.
    """
    p = Path(os.fspath(path)).expanduser()
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InvalidArtifactError(str(p), "no such file or directory") from None
    except OSError as exc:
        raise InvalidArtifactError(str(p), exc.strerror or str(exc)) from exc
    if stat.S_ISDIR(st.st_mode):
        return "directory", _walk(p)
    _check_regular(str(p), st, str(p))
    return "file", [ScannedFile(validate_relpath(_clean_part(p.name, p)), str(p))]


def _clean_part(part: str, shown: object) -> str:
    if "/" in part or part in ("", ".", ".."):
        raise InvalidArtifactError(shown, "unusable file name")
    return part


def _walk(root: Path) -> list[ScannedFile]:
    real_root = os.path.realpath(root)
    out: list[ScannedFile] = []
    visited: set[str] = {real_root}

    def inside(target: str) -> bool:
        return target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            shown = os.path.join(str(root), rel)
            validate_relpath(rel)
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not inside(target):
                    raise InvalidArtifactError(
                        shown, "a symlink that points outside the logged directory"
                    )
                try:
                    st = os.stat(target)
                except OSError:
                    raise InvalidArtifactError(shown, "a dangling symlink") from None
                if stat.S_ISDIR(st.st_mode):
                    if target in visited:
                        continue  # a link back to a directory already stored: no loop
                    visited.add(target)
                    walk(target, rel + "/")
                    continue
                _check_regular(target, st, shown)
                out.append(ScannedFile(rel, target))
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                visited.add(os.path.realpath(entry.path))
                walk(entry.path, rel + "/")
                continue
            _check_regular(entry.path, st, shown)
            out.append(ScannedFile(rel, entry.path))

    walk(str(root), "")
    out.sort(key=lambda f: f.relpath)
    return out


def safe_destination(root: str | os.PathLike[str], relpath: str) -> Path:
    """Where ``relpath`` from a manifest goes under ``root``; refuses anything that would land outside.

    The path is validated again (a manifest may come from a hostile server or a
    tampered database), and existing symlinks under ``root`` cannot redirect it.
    """
    validate_relpath(relpath)
    base = os.path.realpath(root)
    dest = os.path.join(base, *relpath.split("/"))
    parent = os.path.realpath(os.path.dirname(dest))
    if not (parent == base or parent.startswith(base.rstrip(os.sep) + os.sep)):
        raise InvalidArtifactError(
            relpath, "the path would be written outside the target directory"
        )
    if os.path.islink(dest):
        raise InvalidArtifactError(relpath, "the target path is an existing symlink")
    return Path(dest)
