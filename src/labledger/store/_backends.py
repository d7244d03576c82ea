"""Which class opens which URI: one table for run stores, one for blob stores.

A back end is named by ``"module:attribute"`` and imported only when a URI of its scheme
is opened. That keeps ``import labledger`` cheap (no SQLAlchemy, httpx or boto3) and lets
the tables name classes in layers above this one (``labledger.remote`` for ``http(s)://``)
without ``store/`` importing them: the layer test in ``tests/test_layers.py`` sees no
upward import, and ``tests/test_backends.py`` checks that every entry resolves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .._exceptions import UsageError

__all__ = ["BLOB_BACKENDS", "STORE_BACKENDS", "blob_scheme", "load_backend", "open_blobs"]

# scheme family (the part before "://", without a "+driver") -> the Store class
STORE_BACKENDS: dict[str, str] = {
    "sqlite": "labledger.store.sql:SqlStore",
    "postgresql": "labledger.store.sql:SqlStore",
    "http": "labledger.remote.http:HttpStore",
    "https": "labledger.remote.http:HttpStore",
}

# artifacts URI scheme ("" for a plain directory) -> the BlobStore class
BLOB_BACKENDS: dict[str, str] = {
    "": "labledger.artifacts._blobstore:LocalBlobStore",
    "file": "labledger.artifacts._blobstore:LocalBlobStore",
    "s3": "labledger.artifacts._s3:S3BlobStore",
    "http": "labledger.remote._http_artifacts:HttpBlobStore",
    "https": "labledger.remote._http_artifacts:HttpBlobStore",
}


def load_backend(spec: str) -> Callable[..., Any]:
    """Import ``"package.module:Name"`` and return ``Name``."""
    module, _, attr = spec.partition(":")
    builder: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return builder


def blob_scheme(uri: str) -> str:
    """The scheme of an artifacts URI (``""`` for a directory); UsageError when no back end has it."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in BLOB_BACKENDS:
        raise UsageError(
            f"unsupported artifacts URI {uri!r}: use a directory or s3://bucket/prefix"
        )
    return scheme


def open_blobs(uri: str) -> Any:
    """The blob store for an artifacts URI (a directory, ``file://``, ``s3://bucket/prefix``):
    the class ``BLOB_BACKENDS`` names for its scheme. The run stores open theirs here for
    the bytes of rich results (``_media_sql.py``); ``artifacts.open_blob_store`` too."""
    scheme = blob_scheme(uri)
    if scheme == "file":
        uri = uri[len("file://") :]
    return load_backend(BLOB_BACKENDS[scheme])(uri)
