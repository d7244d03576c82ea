"""Where the store lives, decided without importing SQLAlchemy (init() must be fast)."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import NamedTuple

from .._exceptions import (
    NoStoreError,
    NotAStoreError,
    SchemaTooNewError,
    StoreUnwritableError,
    UsageError,
)
from .._settings import setting

__all__ = [
    "DEFAULT_DIRNAME",
    "Location",
    "artifacts_uri_for",
    "code_revisions",
    "default_root",
    "default_store_uri",
    "existing_store_uri",
    "precheck_sqlite",
    "readonly_uri",
    "resolve_store_uri",
    "sqlite_path",
    "sqlite_readonly",
]

DEFAULT_DIRNAME = ".labledger"
DB_FILENAME = "ledger.db"
SQLITE_HEADER = b"SQLite format 3\x00"
_VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"
_REV_RE = re.compile(r"^(\d{4})_\w+\.py$")


def code_revisions() -> set[str]:
    """Migration revisions this code knows, read from file names (no Alembic import)."""
    return {m.group(1) for f in os.listdir(_VERSIONS_DIR) if (m := _REV_RE.match(f))}


def default_root(cwd: str | os.PathLike[str] | None = None) -> Path:
    """The `.labledger/` folder at the root of the current git repository, else in cwd."""
    here = Path(cwd or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if (d / ".git").exists():
            return d / DEFAULT_DIRNAME
    return here / DEFAULT_DIRNAME


def default_store_uri(cwd: str | os.PathLike[str] | None = None) -> str:
    return "sqlite:///" + str(default_root(cwd) / DB_FILENAME)


def resolve_store_uri(store: str | os.PathLike[str] | None = None) -> str:
    """Argument, else env LABLEDGER_URI, else the embedded default. Plain paths mean SQLite."""
    uri = os.fspath(store) if store is not None else setting("LABLEDGER_URI") or ""
    if not uri:
        return default_store_uri()
    if "://" not in uri:
        p = Path(uri).expanduser()
        if p.is_dir() or (p.suffix == "" and not p.exists()):
            p = p / DB_FILENAME
        return "sqlite:///" + str(p.resolve())
    scheme = uri.split("://", 1)[0].lower()
    # the family, without a "+driver": a misspelt one (postgress://) fails here, in init()
    if scheme.split("+", 1)[0] in ("sqlite", "postgresql", "postgres", "http", "https"):
        if scheme == "postgres":
            uri = "postgresql" + uri[len("postgres") :]
        return uri
    raise UsageError(
        f"unsupported store URI {uri!r}: use sqlite:///PATH, postgresql://… or http(s)://HOST:PORT"
    )


def existing_store_uri(store: str | os.PathLike[str] | None = None) -> str:
    """:func:`resolve_store_uri` for reading: NoStoreError when an SQLite file is not there.

    Read-only commands use it so that looking never creates ``.labledger/``;
    PostgreSQL and server URIs are returned as they are."""
    uri = resolve_store_uri(store)
    if scheme_family(uri) == "sqlite" and ":memory:" not in uri:
        path = sqlite_path(uri)
        if str(path) and not path.exists():
            raise NoStoreError(str(path))
    return uri


def sqlite_path(uri: str) -> Path:
    """The file of a ``sqlite:///PATH`` URI."""
    rest = uri.split(":///", 1)[1] if ":///" in uri else uri.split("://", 1)[1]
    rest = rest.split("?", 1)[0]
    return Path(rest)


def readonly_uri(uri: str) -> bool:
    """``mode=ro`` or ``immutable=1`` in an ``sqlite:///PATH?…`` URI."""
    query = uri.split("?", 1)[1] if "?" in uri else ""
    opts = dict(p.partition("=")[::2] for p in query.split("&") if p)
    return opts.get("mode") == "ro" or opts.get("immutable") == "1"


def sqlite_readonly(uri: str, path: Path) -> bool:
    """Open read-only: ``mode=ro`` or ``immutable=1`` in the URI, or an existing store
    whose file or folder this process may not write (a colleague's shared folder, a
    read-only volume)."""
    if readonly_uri(uri):
        return True
    if not path.is_file():
        return False
    return not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK))


def precheck_sqlite(path: Path, *, uri: str | None = None) -> None:
    """Fail fast, with a clear message and without modifying anything, when ``path`` can't be our store.

    Checks: the folder can be created and written; an existing file is SQLite and either
    empty or carries labledger's marker table, with no schema revision newer than this code.
    """
    if uri is not None and readonly_uri(uri):
        raise StoreUnwritableError(str(path), "the URI opens it read-only (mode=ro or immutable=1)")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnwritableError(str(folder), exc.strerror or str(exc)) from exc
    if folder.name == DEFAULT_DIRNAME and not (folder / ".gitignore").exists():
        # like .venv/: the embedded store never shows up in `git status`
        try:
            (folder / ".gitignore").write_text("# created by labledger\n*\n")
        except OSError:
            pass
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreUnwritableError(str(folder), "permission denied")
    if not path.exists():
        return
    if path.is_dir():
        raise NotAStoreError(str(path), "it is a directory")
    if not os.access(path, os.R_OK | os.W_OK):
        raise StoreUnwritableError(str(path), "permission denied")
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head != SQLITE_HEADER:
        # a file labledger itself made (its folder, its WAL beside it) that lost its
        # header is damaged, not someone else's file
        ours = path.parent.name == DEFAULT_DIRNAME or Path(f"{path}-wal").exists()
        if ours:
            raise NotAStoreError(str(path), "its SQLite header is gone", damaged=True)
        raise NotAStoreError(str(path), "not an SQLite database")
    revisions: set[str] = set()
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            # one read transaction: a store being created by another process is seen
            # either empty or complete (its migration commits in one transaction)
            names = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
            if "labledger_meta" in names:
                row = con.execute(
                    "select value from labledger_meta where key = 'revisions'"
                ).fetchone()
                revisions = set(row[0].split(",")) if row and row[0] else set()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:  # an SQLite file that cannot be read: damaged
        raise NotAStoreError(str(path), str(exc), damaged=True) from exc
    if names and "labledger_meta" not in names:
        raise NotAStoreError(str(path), "an SQLite database without labledger's tables")
    known = code_revisions()
    if revisions - known:
        raise SchemaTooNewError(str(path), ",".join(sorted(revisions)), ",".join(sorted(known)))


def scheme_family(uri: str) -> str:
    """``sqlite``, ``postgresql``, ``http``, ``https``...: the scheme without a ``+driver``."""
    family = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    return "postgresql" if family == "postgres" else family


class Location(NamedTuple):  # not a dataclass: init() imports this module and must stay fast
    """A store URI resolved and parsed once: what it is, where its SQLite file and artifacts live.

    ``Location.of(store)`` applies the same rules as :func:`resolve_store_uri` (argument,
    else LABLEDGER_URI, else the embedded default); the scheme picks the back end in
    ``store/_backends.py``.
    """

    uri: str
    scheme: str  # sqlite | postgresql | http | https

    @classmethod
    def of(cls, store: str | os.PathLike[str] | None = None) -> Location:
        uri = resolve_store_uri(store)
        return cls(uri, scheme_family(uri))

    @property
    def is_sqlite(self) -> bool:
        return self.scheme == "sqlite"

    @property
    def is_remote(self) -> bool:
        """A tracking server (``http(s)://``) rather than a database."""
        return self.scheme in ("http", "https")

    @property
    def sqlite_file(self) -> Path | None:
        """The database file of an SQLite store, else None."""
        return sqlite_path(self.uri) if self.is_sqlite else None

    def default_artifacts_uri(self) -> str:
        """Where artifacts go without an explicit location: beside an SQLite file, the server
        for an http(s) store, else ``.labledger/artifacts``."""
        if self.is_sqlite:
            return str(sqlite_path(self.uri).parent / "artifacts")
        if self.is_remote:
            return self.uri
        return str(default_root() / "artifacts")


def artifacts_uri_for(artifacts_uri: str | os.PathLike[str] | None, store_uri: str | None) -> str:
    """The artifacts location: explicit, else env LABLEDGER_ARTIFACTS_URI, else beside the store."""
    if artifacts_uri is not None and os.fspath(artifacts_uri):
        return os.fspath(artifacts_uri)
    env = setting("LABLEDGER_ARTIFACTS_URI")
    if env:
        return env
    if store_uri:
        return Location(store_uri, scheme_family(store_uri)).default_artifacts_uri()
    return str(default_root() / "artifacts")
