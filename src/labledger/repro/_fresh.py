"""``--env fresh``: a virtual environment with the recorded exact package versions.

Environments are cached by a hash of (Python minor version, pinned requirements) under
``$LABLEDGER_CACHE_DIR/envs`` (default ``~/.cache/labledger/envs``). Packages are
installed with ``--no-deps``: the recorded set is already the full closure, pinned.

labledger itself is the tracker, not part of the experiment: when it is not among what
can be installed, it (and its own dependencies) are made importable from the host
environment through a ``.pth`` file placed *after* the venv's own packages, so every
recorded version wins over the host's. Only labledger's dependency closure is bridged,
never the rest of the host environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .._exceptions import ReproError
from .._settings import setting

__all__ = ["FreshEnv", "FreshSpec", "build_fresh_env", "cache_root", "fresh_spec"]

_SKIP = {"pip"}  # the venv brings its own installer
_TRACKER = {"labledger"}
_MARKER = "labledger-env.json"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def cache_root() -> Path:
    base = setting("LABLEDGER_CACHE_DIR")
    if base:
        return Path(base).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "labledger"


@dataclass
class FreshSpec:
    """What a fresh environment would contain, decided from the record alone."""

    python_version: str | None
    requirements: list[str] = field(default_factory=list)  # pip requirement strings
    from_checkout: dict[str, str] = field(
        default_factory=dict
    )  # name -> path inside the repository
    not_installable: dict[str, str] = field(default_factory=dict)  # name -> reason
    key: str = ""

    @property
    def python_minor(self) -> str:
        return ".".join((self.python_version or "").split(".")[:2])


@dataclass
class FreshEnv:
    path: Path
    python: Path
    cached: bool
    installed: list[str]
    failed: dict[str, str]  # requirement -> reason
    bridged: list[str]
    build_s: float


def fresh_spec(env: Mapping[str, Any], git_root: str | None) -> FreshSpec:
    packages: dict[str, str] = dict(env.get("packages") or {})
    sources: dict[str, Any] = dict(env.get("package_sources") or {})
    spec = FreshSpec(python_version=(env.get("python") or {}).get("version"))
    for name in sorted(packages, key=str.lower):
        version = packages[name]
        n = _norm(name)
        if n in _SKIP or n in _TRACKER:
            continue
        src = sources.get(name) or {}
        url = src.get("url")
        if src.get("editable") or src.get("local"):
            local = _file_path(url)
            if local and git_root and _inside(local, git_root):
                spec.from_checkout[name] = os.path.relpath(local, git_root)
            else:
                spec.not_installable[name] = (
                    f"{'editable' if src.get('editable') else 'local'} install from {url or 'an unknown path'}"
                    f" (version {version} may not exist on any index)"
                )
            continue
        if src.get("vcs") and url:
            ref = src.get("commit") or src.get("requested_revision")
            spec.requirements.append(f"{name} @ {src['vcs']}+{url}" + (f"@{ref}" if ref else ""))
            continue
        spec.requirements.append(f"{name}=={version}")
    blob = json.dumps(
        {"python": spec.python_minor, "requirements": sorted(spec.requirements)}, sort_keys=True
    )
    spec.key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return spec


def _file_path(url: Any) -> str | None:
    if isinstance(url, str) and url.startswith("file://"):
        return unquote(urlparse(url).path)
    return None


def _inside(path: str, root: str) -> bool:
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


def _base_python(minor: str) -> tuple[str, str | None]:
    """An interpreter of the recorded minor version, else this one (with a note)."""
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not minor or minor == here:
        return sys.executable, None
    other = shutil.which(f"python{minor}")
    if other:
        return other, None
    return sys.executable, f"no python{minor} on PATH: the environment uses Python {here} instead"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _venv_python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pip(venv_py: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(venv_py),
        "--disable-pip-version-check",
        "--no-input",
        *args,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_REQUIRE")}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def _pip_reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip().startswith("ERROR")]
    return (lines[0] if lines else (stderr.strip().splitlines() or ["pip failed"])[-1])[:300]


def build_fresh_env(
    spec: FreshSpec,
    *,
    find_links: Sequence[str] = (),
    no_index: bool = False,
    index_url: str | None = None,
    echo: Callable[[str], None] = lambda _m: None,
) -> FreshEnv:
    """Create (or reuse from the cache) the environment of ``spec``."""
    root = cache_root() / "envs"
    path = root / spec.key
    t0 = time.perf_counter()
    with _locked(root / f"{spec.key}.lock"):
        marker = path / _MARKER
        if marker.is_file():
            info = json.loads(marker.read_text())
            if info.get("complete"):
                return FreshEnv(
                    path,
                    _venv_python(path),
                    True,
                    info["installed"],
                    {},
                    info.get("bridged", []),
                    time.perf_counter() - t0,
                )
        if path.exists():
            shutil.rmtree(path)
        base, note = _base_python(spec.python_minor)
        if note:
            echo(f"  note: {note}")
        echo(f"  creating virtual environment {path}")
        res = subprocess.run(
            [base, "-m", "venv", "--without-pip", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            raise ReproError("environment", f"python -m venv failed: {res.stderr.strip()}")
        venv_py = _venv_python(path)
        opts: list[str] = ["install", "--no-deps"]
        if no_index:
            opts.append("--no-index")
        if index_url:
            opts += ["--index-url", index_url]
        for fl in find_links:
            opts += ["--find-links", str(fl)]
        failed: dict[str, str] = {}
        installed: list[str] = []
        if spec.requirements:
            echo(f"  installing {len(spec.requirements)} pinned package(s)")
            res = _pip(venv_py, [*opts, *spec.requirements])
            if res.returncode == 0:
                installed = list(spec.requirements)
            else:  # find out which ones: one at a time
                for req in spec.requirements:
                    r1 = _pip(venv_py, [*opts, req])
                    if r1.returncode == 0:
                        installed.append(req)
                    else:
                        failed[req] = _pip_reason(r1.stderr)
        bridged = _bridge_tracker(venv_py, path) if not note else []
        info = {
            "python": spec.python_minor,
            "requirements": spec.requirements,
            "installed": installed,
            "failed": failed,
            "bridged": bridged,
            "complete": not failed,
            "created_at": time.time(),
        }
        marker.write_text(json.dumps(info, indent=2))
    return FreshEnv(path, venv_py, False, installed, failed, bridged, time.perf_counter() - t0)


def _site_packages(venv_py: Path) -> Path:
    out = subprocess.run(
        [str(venv_py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _requirement_names(dist: md.Distribution) -> list[str]:
    names = []
    for req in dist.requires or []:
        if "extra ==" in req.replace('"', "").replace("'", ""):
            continue
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        if m:
            names.append(m.group(1))
    return names


def _tracker_closure() -> list[md.Distribution]:
    seen: dict[str, md.Distribution] = {}
    todo = ["labledger"]
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[name] = dist
        todo.extend(_requirement_names(dist))
    return list(seen.values())


def _bridge_tracker(venv_py: Path, venv: Path) -> list[str]:
    """Make labledger and its dependency closure importable in the venv, behind its own packages."""
    bridge = venv / "labledger-bridge"
    bridge.mkdir(exist_ok=True)
    linked: list[str] = []
    # the labledger package folder (this file is labledger/repro/_fresh.py)
    targets: dict[str, Path] = {"labledger": Path(__file__).resolve().parent.parent}
    for dist in _tracker_closure():
        dist_name = str(dist.metadata["Name"])
        for f in dist.files or []:
            top = f.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".data") or top.endswith(".pth"):
                continue
            if len(f.parts) == 1 and not top.endswith((".py", ".so", ".pyd")):
                continue
            if top not in targets:
                targets[top] = Path(str(dist.locate_file(top))).resolve()
        if _norm(dist_name) != "labledger":
            linked.append(dist_name)
    for name, target in targets.items():
        if target.exists() and not (bridge / name).exists():
            (bridge / name).symlink_to(target, target_is_directory=target.is_dir())
    (_site_packages(venv_py) / "zz_labledger_bridge.pth").write_text(str(bridge) + "\n")
    return sorted(["labledger", *linked], key=str.lower)
