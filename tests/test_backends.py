"""One table from URI scheme to store class, one to blob-store class, and a Location parsed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from labledger import UsageError
from labledger.artifacts import LocalBlobStore, open_blob_store
from labledger.store import (
    ArtifactCatalog,
    Location,
    ReproVerdicts,
    RunStore,
    Store,
    open_store,
)
from labledger.store._backends import BLOB_BACKENDS, STORE_BACKENDS, blob_scheme, load_backend


@pytest.mark.parametrize("spec", sorted(set(STORE_BACKENDS.values()) | set(BLOB_BACKENDS.values())))
def test_every_table_entry_names_an_importable_class(spec: str) -> None:
    assert isinstance(load_backend(spec), type)


def test_open_store_picks_the_class_from_the_scheme(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/ledger.db")
    try:
        assert type(store).__name__ == "SqlStore"
        for role in (RunStore, ArtifactCatalog, ReproVerdicts, Store):
            assert isinstance(store, role), role
        assert store.uri == f"sqlite:///{tmp_path}/ledger.db"
    finally:
        store.close()
    remote = open_store("http://127.0.0.1:9", spool_dir=tmp_path / "spool")
    try:
        assert type(remote).__module__ == "labledger.remote.http"
        for role in (RunStore, ArtifactCatalog, ReproVerdicts, Store):
            assert isinstance(remote, role), role
    finally:
        remote.close()


def test_open_store_refuses_a_scheme_no_back_end_serves() -> None:
    with pytest.raises(UsageError, match="unsupported store URI"):
        open_store("mysql://db/ledger")


def test_location_is_parsed_once_with_its_scheme_and_file(tmp_path: Path) -> None:
    loc = Location.of(tmp_path / "exp")
    assert loc.scheme == "sqlite" and loc.is_sqlite and not loc.is_remote
    assert loc.sqlite_file == (tmp_path / "exp" / "ledger.db").resolve()
    assert loc.default_artifacts_uri() == str((tmp_path / "exp" / "artifacts").resolve())
    pg = Location.of("postgres+psycopg://u@h/db")
    assert pg.scheme == "postgresql" and pg.sqlite_file is None
    server = Location.of("https://ledger.example:8080")
    assert server.is_remote and server.default_artifacts_uri() == "https://ledger.example:8080"


def test_blob_store_from_the_table(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(str(tmp_path / "a")), LocalBlobStore)
    assert isinstance(open_blob_store(f"file://{tmp_path}/b"), LocalBlobStore)
    assert blob_scheme("s3://bucket/prefix") == "s3"
    with pytest.raises(UsageError, match="unsupported artifacts URI"):
        open_blob_store("ftp://host/x")
