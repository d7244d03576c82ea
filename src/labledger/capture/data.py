"""Dataset fingerprints: sha256 over the sorted per-file hashes of a file or directory tree.

The fingerprint of a directory is ``sha256("\\n".join(sorted(f"{relpath}\\0{file_sha256}")))``;
of a single file, the file's sha256. Per-file hashes are cached, keyed by the file's
relative path, size, mtime (ns) and inode, in one small JSON file per dataset root under
the user cache directory (``$LABLEDGER_CACHE_DIR/fingerprints``, default
``~/.cache/labledger/fingerprints``), so re-fingerprinting unchanged data costs one
``stat`` per file. A file modified less than two seconds before it is hashed is not
cached (its mtime could still change within the filesystem's timestamp granularity
without the size changing).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from .._settings import setting

__all__ = ["cache_dir", "fingerprint", "fingerprint_data"]

_CHUNK = 1 << 20
_RACY_S = 2.0
_CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where fingerprint caches live: $LABLEDGER_CACHE_DIR/fingerprints, else the user cache dir."""
    base = setting("LABLEDGER_CACHE_DIR")
    if base:
        return Path(base).expanduser() / "fingerprints"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "labledger" / "fingerprints"


def _file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class _Cache:
    """``{relpath: [size, mtime_ns, inode, sha256]}`` for one dataset root."""

    def __init__(self, root: Path) -> None:
        key = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:32]
        self.file = cache_dir() / f"{key}.json"
        self.root = str(root)
        self.entries: dict[str, list[Any]] = {}
        self.dirty = False
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            if data.get("version") == _CACHE_VERSION and data.get("root") == self.root:
                self.entries = data["files"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.entries = {}

    def sha(self, rel: str, full: str, st: os.stat_result) -> str:
        hit = self.entries.get(rel)
        if (
            hit is not None
            and hit[0] == st.st_size
            and hit[1] == st.st_mtime_ns
            and hit[2] == st.st_ino
        ):
            return str(hit[3])
        digest = _file_sha256(full)
        if time.time() - st.st_mtime >= _RACY_S:
            self.entries[rel] = [st.st_size, st.st_mtime_ns, st.st_ino, digest]
            self.dirty = True
        elif rel in self.entries:
            del self.entries[rel]
            self.dirty = True
        return digest

    def save(self, seen: set[str] | None = None) -> None:
        if seen is not None and len(seen) != len(self.entries):
            gone = [k for k in self.entries if k not in seen]
            for k in gone:
                del self.entries[k]
            self.dirty = self.dirty or bool(gone)
        if not self.dirty:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".fp-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": _CACHE_VERSION, "root": self.root, "files": self.entries}, fh)
            os.replace(tmp, self.file)
        except OSError:
            pass  # a read-only cache directory only costs speed


def _walk(top: str, prefix: str, out: list[tuple[str, str, os.stat_result]]) -> None:
    try:
        it = os.scandir(top)
    except OSError:
        return
    with it:
        for e in it:
            rel = prefix + e.name
            try:
                if e.is_dir(follow_symlinks=False):
                    _walk(e.path, rel + "/", out)
                elif e.is_file():  # follows file symlinks, as the hash does
                    out.append((rel, e.path, e.stat()))
            except OSError:
                continue


def fingerprint(path: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
    """``{name, path, sha256, size, files}`` of a file or directory tree."""
    p = Path(path).resolve()
    if not p.exists():
        raise FileNotFoundError(f"dataset path {str(p)!r} does not exist")
    cache = _Cache(p)
    if p.is_file():
        st = p.stat()
        digest = cache.sha("", str(p), st)
        cache.save()
        return {
            "name": name or p.name,
            "path": str(p),
            "sha256": digest,
            "size": st.st_size,
            "files": 1,
        }
    found: list[tuple[str, str, os.stat_result]] = []
    _walk(str(p), "", found)
    entries = []
    size = 0
    for rel, full, st in found:
        entries.append(f"{rel}\0{cache.sha(rel, full, st)}")
        size += st.st_size
    cache.save({rel for rel, _, _ in found})
    h = hashlib.sha256("\n".join(sorted(entries)).encode("utf-8", "surrogateescape"))
    return {
        "name": name or p.name,
        "path": str(p),
        "sha256": h.hexdigest(),
        "size": size,
        "files": len(entries),
    }


# -- data in memory -------------------------------------------------------------------
#
# A training sees arrays, frames and tensors more often than files. Their fingerprint is
# a sha256 over each object's kind, dtype, shape and bytes (pandas: its per-row hashes,
# which cover object columns too), combined for a (X, y) pair; Hugging Face ``datasets``
# already carry a content fingerprint (``_fingerprint``) that is used as is. Each object
# is hashed once: the result is kept by id() while the object lives (a weak reference
# tells a reused id apart), so a callback that sees the same arrays every epoch pays once.
# An array changed in place after its first fingerprint keeps the old one.

_MEMO: dict[int, tuple[Any, dict[str, Any]]] = {}
_MEMO_LOCK = threading.Lock()
_PATH_ATTRS = ("root", "path", "file", "filename", "data_dir", "data_path", "csv_file")


def _memo_get(obj: Any) -> dict[str, Any] | None:
    with _MEMO_LOCK:
        hit = _MEMO.get(id(obj))
    if hit is not None and hit[0]() is obj:
        return hit[1]
    return None


def _memo_put(obj: Any, info: dict[str, Any]) -> None:
    try:
        ref = weakref.ref(obj)
    except TypeError:  # lists, tuples: not weakly referenceable, hashed each time
        return
    key = id(obj)
    with _MEMO_LOCK:
        _MEMO[key] = (ref, info)
    try:
        weakref.finalize(obj, _MEMO.pop, key, None)
    except TypeError:
        pass


# Above this size an object's digest is over 64 evenly spaced 1 MiB windows (and its
# length), not every byte: sha256 runs at a few hundred MB/s on a busy CPU, and a
# callback must not stall training for seconds on a 10 GB array. Such entries say
# ``"digest": "sampled"`` (MLflow's dataset digests sample too, more coarsely).
FULL_DIGEST_MAX = 256 * _CHUNK
_WINDOWS = 64


def _hash_bytes(h: Any, buf: Any) -> str:
    view = memoryview(buf).cast("B")
    n = len(view)
    if n <= FULL_DIGEST_MAX:
        for i in range(0, n, 16 * _CHUNK):  # hashlib releases the GIL on large updates
            h.update(view[i : i + 16 * _CHUNK])
        return "full"
    h.update(f"sampled\0{n}\0".encode())
    step = (n - _CHUNK) // (_WINDOWS - 1)
    for k in range(_WINDOWS):
        h.update(view[k * step : k * step + _CHUNK])
    return "sampled"


def _one(obj: Any) -> dict[str, Any] | None:
    """``{kind, sha256, shape, dtype, size}`` of one in-memory object, None when unknown."""
    cached = _memo_get(obj)
    if cached is not None:
        return cached
    info = _describe(obj)
    if info is not None:
        _memo_put(obj, info)
    return info


def _describe(obj: Any) -> dict[str, Any] | None:
    hook = getattr(obj, "__labledger_fingerprint__", None)
    if callable(hook):  # an object that knows its own fingerprint (an integration's)
        found = hook()
        return dict(found) if isinstance(found, dict) and found.get("sha256") else None
    mod = type(obj).__module__.split(".")[0]
    h = hashlib.sha256()
    if mod == "numpy" and hasattr(obj, "dtype") and hasattr(obj, "shape"):
        import numpy as np

        arr = np.asarray(obj)
        h.update(f"numpy\0{arr.dtype.str}\0{arr.shape}\0".encode())
        digest = "full"
        if arr.dtype.hasobject:
            h.update("\0".join(map(repr, arr.ravel().tolist())).encode("utf-8", "replace"))
        else:
            digest = _hash_bytes(h, np.ascontiguousarray(arr).view(np.uint8).ravel())
        return {
            "kind": "numpy",
            "sha256": h.hexdigest(),
            "shape": list(arr.shape),
            "dtype": str(arr.dtype),
            "size": int(arr.nbytes),
            "digest": digest,
        }
    if mod == "pandas" and hasattr(obj, "shape"):
        import numpy as np
        import pandas as pd

        shape = tuple(obj.shape)
        size = (
            int(obj.memory_usage(index=True, deep=False).sum())
            if hasattr(obj, "columns")
            else int(obj.memory_usage(index=True))
        )
        digest = "full"
        part = obj
        if len(obj) > 4_000_000:  # row hashes cost ~0.1 us a cell: sample rows beyond this
            part = obj.iloc[:: len(obj) // 1_000_000 + 1]
            digest = "sampled"
        rows = pd.util.hash_pandas_object(part, index=True).to_numpy()
        cols = list(map(str, getattr(obj, "columns", [getattr(obj, "name", "")])))
        dtypes = list(map(str, obj.dtypes)) if hasattr(obj, "columns") else [str(obj.dtype)]
        h.update(f"pandas\0{shape}\0{cols}\0{dtypes}\0".encode("utf-8", "replace"))
        _hash_bytes(h, np.ascontiguousarray(rows).view(np.uint8))
        return {
            "kind": "pandas",
            "sha256": h.hexdigest(),
            "shape": list(shape),
            "dtype": ",".join(sorted(set(dtypes))),
            "size": size,
            "digest": digest,
        }
    if mod == "torch" and hasattr(obj, "detach") and hasattr(obj, "dtype"):
        import torch

        t = obj.detach()
        if t.is_sparse or getattr(t, "layout", torch.strided) != torch.strided:
            t = t.to_dense()
        t = t.cpu().contiguous()
        h.update(f"torch\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest = "full"
        if t.numel():
            digest = _hash_bytes(h, t.reshape(-1).view(torch.uint8).numpy())
        return {
            "kind": "torch",
            "sha256": h.hexdigest(),
            "shape": list(t.shape),
            "dtype": str(t.dtype).replace("torch.", ""),
            "size": int(t.numel() * t.element_size()),
            "digest": digest,
        }
    if mod == "scipy" and hasattr(obj, "tocsr"):
        csr = obj.tocsr()
        parts = [_one(csr.data), _one(csr.indices), _one(csr.indptr)]
        h.update(f"scipy.sparse\0{csr.shape}\0".encode())
        for p in parts:
            h.update((p or {}).get("sha256", "").encode())
        return {
            "kind": "scipy.sparse",
            "sha256": h.hexdigest(),
            "shape": list(csr.shape),
            "dtype": str(csr.dtype),
            "size": int(csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes),
        }
    fp = getattr(obj, "_fingerprint", None)
    if mod == "datasets" and isinstance(fp, str):  # a Hugging Face datasets.Dataset
        h.update(f"hf-dataset\0{fp}".encode())
        info: dict[str, Any] = {
            "kind": "hf-dataset",
            "sha256": h.hexdigest(),
            "fingerprint": fp,
            "rows": int(getattr(obj, "num_rows", 0) or 0),
        }
        try:
            files = [f["filename"] for f in obj.cache_files]
            if files:
                info["path"] = os.path.dirname(files[0])
            info["size"] = int(obj.data.nbytes)
        except Exception:
            pass
        return info
    return None


def _parts(obj: Any, depth: int = 0) -> list[dict[str, Any]] | None:
    """Fingerprints of ``obj``: one object, or a pair/tuple of them, or what a loader wraps."""
    if obj is None or depth > 4:
        return None
    if isinstance(obj, (str, os.PathLike)):
        try:
            return [{"kind": "file", **fingerprint(obj)}]
        except (OSError, ValueError):
            return None
    if isinstance(obj, (list, tuple)) and 0 < len(obj) <= 8:
        out: list[dict[str, Any]] = []
        for item in obj:
            got = _parts(item, depth + 1)
            if got is None:
                return None
            out.extend(got)
        return out
    info = _one(obj)
    if info is not None:
        return [info]
    # what a loader or dataset object wraps: a torch DataLoader's dataset, TensorDataset's
    # tensors, a Subset's indices, torchvision's data/targets, a DMatrix's CSR data
    inner = getattr(obj, "dataset", None)
    if inner is not None and inner is not obj:
        got = _parts(inner, depth + 1)
        if got is not None:
            idx = getattr(obj, "indices", None)
            if idx is not None:  # torch Subset
                sub = _parts(list(idx) if isinstance(idx, range) else idx, depth + 1)
                got = got + (sub or [{"kind": "indices", "sha256": _text_sha(repr(idx))}])
            return got
    tensors = getattr(obj, "tensors", None)
    if isinstance(tensors, tuple) and tensors:
        return _parts(tensors, depth + 1)
    data = getattr(obj, "data", None)
    if data is not None and not callable(data):
        got = _parts(data, depth + 1)
        if got is not None:
            targets = getattr(obj, "targets", None)
            extra = _parts(targets, depth + 1) if targets is not None else None
            return got + (extra or [])
    # a custom Dataset keeping its arrays as attributes (self.ids, self.labels, self.df)
    members = getattr(obj, "__dict__", None)
    if isinstance(members, dict):
        found = [
            info
            for key in sorted(members)
            if not key.startswith("__") and _maybe_data(members[key])
            for info in [_one(members[key])]
            if info is not None
        ]
        if found:
            return found[:16]
    for attr in _PATH_ATTRS:
        value = getattr(obj, attr, None)
        if isinstance(value, (str, os.PathLike)) and os.path.exists(value):
            return _parts(value, depth + 1)
    return None


def _maybe_data(value: Any) -> bool:
    mod = type(value).__module__.split(".")[0]
    return mod in ("numpy", "pandas", "torch", "scipy", "datasets") and hasattr(value, "shape")


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def fingerprint_data(data: Any, name: str) -> dict[str, Any] | None:
    """``{name, kind, sha256, shape, dtype, size, parts}`` of data in memory, or None.

    ``data``: a numpy array, pandas frame or series, torch tensor, scipy sparse matrix,
    Hugging Face ``datasets.Dataset``, a path, a torch ``DataLoader``/``Dataset`` wrapping
    any of those (or a file behind it), or a tuple of them (``(X, y)``). Several parts
    combine into one sha256 (over the parts' sha256 in order).
    """
    parts = _parts(data)
    if not parts:
        return None
    if len(parts) == 1:
        one = dict(parts[0])
        one.pop("name", None)
        return {"name": name, **one}
    h = hashlib.sha256(b"parts\0")
    for p in parts:
        h.update(str(p.get("sha256", "")).encode() + b"\0")
    size = sum(int(p.get("size") or 0) for p in parts)
    kinds = sorted({str(p.get("kind")) for p in parts})
    return {
        "name": name,
        "kind": kinds[0] if len(kinds) == 1 else "+".join(kinds),
        "sha256": h.hexdigest(),
        "shape": [p.get("shape") for p in parts],
        "size": size,
        "parts": [
            {k: v for k, v in p.items() if k in ("kind", "sha256", "shape", "dtype", "path")}
            for p in parts
        ],
    }
