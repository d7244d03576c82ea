"""Which class opens which URI: one table for run stores, one for blob stores.

A back end is named by ``"module:attribute"``, a public module and a name in its ``__all__``,
and imported only when a URI of its scheme is opened. That keeps ``import labledger`` cheap
(no SQLAlchemy, httpx or boto3). ``tests/test_layers.py`` reads these names as imports of
this module: the entries in layers above this one (``labledger.remote`` for ``http(s)://``,
``labledger.artifacts``) are listed there as allowed upward edges, and the circle they close
(``store`` opens ``remote``'s HttpStore, which is written over ``store``) is listed there
too. ``tests/test_backends.py`` checks that every entry resolves.
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
    "http": "labledger.remote:HttpStore",
    "https": "labledger.remote:HttpStore",
}

# artifacts URI scheme ("" for a plain directory) -> the BlobStore class
BLOB_BACKENDS: dict[str, str] = {
    "": "labledger.artifacts:LocalBlobStore",
    "file": "labledger.artifacts:LocalBlobStore",
    "s3": "labledger.artifacts:S3BlobStore",
    "http": "labledger.remote:HttpBlobStore",
    "https": "labledger.remote:HttpBlobStore",
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
