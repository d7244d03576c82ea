"""The one exception tree of labledger.

    LabledgerError
     ├── UsageError                 bad input from the caller (also a ValueError)
     │    ├── InvalidKeyError        a metric/config key that is empty, too long, or has control chars
     │    ├── LimitExceededError     a value over one of the limits of ``_limits.py`` (name, size, depth...)
     │    ├── InvalidFilterError     the filter language could not be parsed or type-checked
     │    │    └── InvalidSortKeyError  a sort key (``--sort``, ``order_by``) names no sortable field
     │    ├── InvalidArtifactError   an artifact name or path that is unsafe or malformed
     │    ├── RunIdTakenError        a new run's id is already another run's
     │    ├── ValueRejectedError     the database refused a value (out of range, a NUL byte, ...)
     │    └── VerdictRefusedError    a repro verdict without its reproduction run, or not what its runs give
     ├── RunFinishedError           logging to a run after ``finish()``; changing a finished run's record
     ├── NotFoundError
     │    ├── RunNotFoundError       no run matches an id or prefix
     │    ├── AmbiguousRunError      a prefix matches several runs
     │    ├── ArtifactNotFoundError  no artifact version matches a reference
     │    └── NoStoreError           a read found no store file (reading never creates one)
     ├── StoreError                 the store cannot be used
     │    ├── StoreUnwritableError   the store location cannot be created or written
     │    ├── NotAStoreError         the file exists but is not a labledger store
     │    ├── SchemaTooNewError      the store was written by a newer labledger
     │    ├── StoreUnavailableError  a remote store cannot be reached (transient: retried, outbox)
     │    └── StoreConfigError       the store is configured wrongly (a missing database, a refused
     │                               login): permanent, never retried; the message names the fix
     ├── IntegrityError             stored content does not match its recorded hash
     ├── AuthError                  missing/invalid token (401) or missing permission (403)
     ├── PolicyViolationError       a run created finished without what its project's policy requires
     ├── ReproError                 ``labledger repro`` could not prepare a step (checkout, environment)
     ├── MissingDependencyError     an optional dependency (an extra) is not installed
     └── StrictModeError            strict mode refused to start a run

Each subclass builds its message from its fields, so the CLI can print ``str(exc)``
as a one-line message. Non-numeric metric values raise the built-in ``TypeError`` at
the call site, as the contract asks.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AmbiguousRunError",
    "ArtifactNotFoundError",
    "AuthError",
    "IntegrityError",
    "InvalidArtifactError",
    "InvalidFilterError",
    "InvalidKeyError",
    "InvalidSortKeyError",
    "LabledgerError",
    "LimitExceededError",
    "MissingDependencyError",
    "NoActiveRunError",
    "NoStoreError",
    "NotAStoreError",
    "NotFoundError",
    "PolicyViolationError",
    "ReproError",
    "RunFinishedError",
    "RunIdTakenError",
    "RunNotFoundError",
    "SchemaTooNewError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "StoreUnwritableError",
    "StrictModeError",
    "UsageError",
    "ValueRejectedError",
    "VerdictRefusedError",
    "WriteRejectedError",
    "configuration_error",
    "error_from_wire",
    "error_to_wire",
]


class LabledgerError(Exception):
    """Root of every error labledger raises on purpose."""


class UsageError(LabledgerError, ValueError):
    """The caller passed something labledger cannot accept."""


class NoActiveRunError(UsageError, AttributeError):
    """A module-level call (``labledger.log``, ``labledger.config``, ...) with no run going.

    Also an ``AttributeError``, so ``hasattr(labledger, "config")`` answers False before
    ``init()`` instead of raising."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(
            f"labledger.{what} needs an active run: call labledger.init(...) first "
            "(or use the run it returns)"
        )


class InvalidKeyError(UsageError):
    def __init__(self, key: object, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"invalid key {key!r}: {reason}")


class LimitExceededError(UsageError):
    """A value labledger cannot store in every back end (see ``labledger._limits``)."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"{what} {reason}")


class InvalidFilterError(UsageError):
    """A filter expression could not be parsed or type-checked.

    ``position`` is the 0-based character offset of the problem, when known; the
    message then shows the expression with a caret under that position.
    """

    def __init__(self, message: str, expression: str = "", position: int | None = None) -> None:
        self.message = message
        self.expression = expression
        self.position = position
        text = f"invalid filter: {message}"
        if expression and position is not None:
            text += f"\n  {expression}\n  {' ' * position}^"
        super().__init__(text)


class InvalidSortKeyError(InvalidFilterError):
    """A sort key is not a sortable field (an InvalidFilterError, so existing handlers apply)."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        self.message = f"invalid sort key {key!r}: {reason}"
        self.expression = key
        self.position = None
        UsageError.__init__(self, self.message)


class InvalidArtifactError(UsageError):
    def __init__(self, what: object, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"invalid artifact {what!r}: {reason}")


class RunIdTakenError(UsageError):
    """A run created with an id another run already has (the project is not named)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"the run id {run_id} is already taken")


class ValueRejectedError(UsageError):
    """The database refused a value of the request (PostgreSQL's "data exception": a number
    out of range, a NUL byte in text, ...). Raised by the SQL store in place of the driver's
    error, so no caller needs to know SQLAlchemy; a bad request (400) on the server."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the database rejected a value in the request: {reason}")


class VerdictRefusedError(UsageError):
    """A reproduction verdict the store will not keep: it names no reproduction run of the
    original, or claims what the two stored runs do not give (400 on the server)."""

    def __init__(self, original_run_id: str, reason: str) -> None:
        self.original_run_id = original_run_id
        self.reason = reason
        run = f" for run {original_run_id[:8]}" if original_run_id else ""
        super().__init__(f"verdict refused{run}: {reason}")


class RunFinishedError(LabledgerError):
    """Writing to a run that has ended (``detail`` says what the store refused)."""

    def __init__(self, run_id: str, status: str, detail: str = "") -> None:
        self.run_id = run_id
        self.status = status
        self.detail = detail
        tail = detail or "start a new run with labledger.init() to log more"
        super().__init__(f"run {run_id[:8]} is already {status}; {tail}")


class NotFoundError(LabledgerError, LookupError):
    """Something that was asked for does not exist."""


class RunNotFoundError(NotFoundError):
    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no run matches {ref!r}")


class AmbiguousRunError(NotFoundError):
    def __init__(self, ref: str, matches: list[str]) -> None:
        self.ref = ref
        self.matches = matches
        shown = ", ".join(m[:12] for m in matches[:5])
        more = "" if len(matches) <= 5 else f" and {len(matches) - 5} more"
        super().__init__(
            f"run prefix {ref!r} is ambiguous: matches {shown}{more}; give more characters"
        )


class ArtifactNotFoundError(NotFoundError):
    def __init__(self, ref: str, detail: str = "") -> None:
        self.ref = ref
        self.detail = detail
        super().__init__(f"no artifact matches {ref!r}" + (f": {detail}" if detail else ""))


class NoStoreError(NotFoundError):
    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(
            f"no labledger store at {location} yet: start a run with labledger.init(), "
            "or set LABLEDGER_URI"
        )


class StoreError(LabledgerError):
    """The store cannot be used."""


class StoreUnwritableError(StoreError):
    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"cannot write the store at {location}: {reason}")


class NotAStoreError(StoreError):
    """The file is not a labledger store, or (``damaged=True``) is one that cannot be read."""

    def __init__(self, location: str, reason: str = "", *, damaged: bool = False) -> None:
        self.location = location
        self.reason = reason
        self.damaged = damaged
        detail = f" ({reason})" if reason else ""
        if damaged:
            super().__init__(
                f"the store {location} is damaged{detail}; it was left untouched. To recover: "
                f"keep {location}-wal beside it if there is one (it holds the latest writes) "
                "and close every process using it, then try again; or put back a backup copy; "
                f"or salvage what is readable: sqlite3 {location} .recover | sqlite3 "
                "recovered.db, and use LABLEDGER_URI=sqlite:///recovered.db"
            )
            return
        super().__init__(
            f"{location} is not a labledger store{detail}; it was left untouched. "
            "Choose another path with LABLEDGER_URI or store="
        )


class SchemaTooNewError(StoreError):
    def __init__(self, location: str, found: str, known: str) -> None:
        self.location = location
        self.found = found
        self.known = known
        super().__init__(
            f"the store at {location} has schema revision(s) {found}, newer than this "
            f"labledger knows ({known}); upgrade labledger. The store was left untouched"
        )


class StoreUnavailableError(StoreError):
    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"store {location} is unavailable: {reason}")


class WriteRejectedError(UsageError):
    """The tracking server refused a write for good (a 4xx other than 401/403/408/425/429:
    a run it never heard of, someone else's run, a malformed request). Retrying cannot
    help; the writer keeps the refused record in the outbox's ``rejected/`` folder."""

    def __init__(self, location: str, reason: str, status_code: int) -> None:
        self.location = location
        self.reason = reason
        self.status_code = status_code
        super().__init__(f"{location} refused the write: {reason}")


class StoreConfigError(StoreError):
    """The store answered, and refused how it is addressed: retrying cannot help."""

    def __init__(self, location: str, reason: str, fix: str) -> None:
        self.location = location
        self.reason = reason
        self.fix = fix
        super().__init__(f"the store {location} cannot be used as configured: {reason}; {fix}")


class IntegrityError(LabledgerError):
    """``reason`` (optional) says how, when it is more than two digests that differ (an
    artifact's files that no longer match the run's sealed record)."""

    def __init__(self, what: str, expected: str, actual: str, reason: str | None = None) -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        self.reason = reason
        super().__init__(
            f"{what} is damaged: {reason}"
            if reason
            else f"{what} is damaged: expected sha256 {expected[:16]}…, found {actual[:16]}…"
        )


class AuthError(LabledgerError):
    """``code`` refines a 403: ``not_owner`` when the run belongs to someone else."""

    def __init__(self, message: str, status_code: int = 401, code: str | None = None) -> None:
        self.message = message
        self.status_code = status_code
        self.code = code
        super().__init__(message)


class PolicyViolationError(LabledgerError):
    """A run recorded as finished misses what its project's policy requires (``missing``:
    requirement names such as ``git``, ``seed``, ``dataset``)."""

    def __init__(self, project: str, missing: list[str], message: str = "") -> None:
        self.project = project
        self.missing = list(missing)
        self.message = message or (
            f"refused by the policy of project {project!r}: missing " + ", ".join(self.missing)
        )
        super().__init__(self.message)


class ReproError(LabledgerError):
    """A step of ``labledger repro`` (code checkout, environment build, run) could not be done."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"repro {step}: {reason}")


class MissingDependencyError(LabledgerError, ImportError):
    """A feature needs an optional dependency that is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"this needs the optional package {module!r}, which is not installed: "
            f"pip install 'labledger[{extra}]'"
        )


class StrictModeError(LabledgerError):
    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(
            "strict mode refused to start the run: "
            + "; ".join(reasons)
            + " (unset LABLEDGER_STRICT to allow it)"
        )


# -- errors over HTTP: the server sends the type and the constructor's fields, and the
# client raises the same class again (an ambiguous prefix stays an AmbiguousRunError, a
# filter error keeps its position).


def error_to_wire(exc: LabledgerError) -> dict[str, Any]:
    """``{"type": class name, "fields": constructor arguments}`` of ``exc``, JSON-ready.

    Fields are read back from the attributes each class sets from its arguments; a class
    without its own ``__init__`` travels as its message."""
    import inspect
    import json

    cls = type(exc)
    fields: dict[str, Any] = {}
    init = cls.__dict__.get("__init__") or next(
        (c.__dict__["__init__"] for c in cls.__mro__ if "__init__" in c.__dict__), None
    )
    if init is None or init in (Exception.__init__, BaseException.__init__):
        fields = {"message": str(exc)}
    else:
        for name in list(inspect.signature(init).parameters)[1:]:
            if hasattr(exc, name):
                fields[name] = getattr(exc, name)
    try:
        json.dumps(fields, allow_nan=False)
    except (TypeError, ValueError):
        fields = {
            k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
            for k, v in fields.items()
        }
    return {"type": cls.__name__, "fields": fields}


def error_from_wire(data: Any) -> LabledgerError | None:
    """The exception :func:`error_to_wire` described, or None when it cannot be rebuilt
    (an unknown type, e.g. from a newer server, or fields that do not fit)."""
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        return None
    cls = globals().get(str(data.get("type")))
    if not (isinstance(cls, type) and issubclass(cls, LabledgerError)):
        return None
    fields: dict[str, Any] = data["fields"]
    try:
        init = next(c.__dict__["__init__"] for c in cls.__mro__ if "__init__" in c.__dict__)
        if init in (Exception.__init__, BaseException.__init__):
            return cls(str(fields.get("message", "")))
        return cls(**fields)
    except TypeError:
        return None


# What a PostgreSQL server answers when the URI, not the network, is wrong: SQLSTATE (when
# the driver has it) or the text of the server's FATAL message, and the fix to name.
_PG_CONFIG_FAULTS = (
    ("3D000", 'database "', "does not exist", "create the database or correct LABLEDGER_URI"),
    (
        "28P01",
        "password authentication failed",
        "",
        "correct the user and password in LABLEDGER_URI",
    ),
    ("28000", 'role "', "does not exist", "correct the user in LABLEDGER_URI"),
    (
        "28000",
        "no pg_hba.conf entry",
        "",
        "allow this client in pg_hba.conf or correct LABLEDGER_URI",
    ),
)


def configuration_error(exc: BaseException, location: str = "") -> LabledgerError | None:
    """The error to report when ``exc`` says the store is configured wrongly, else None.

    Configuration faults are permanent: a refused token (HTTP 401, or 403 other than
    ``not_owner``), a PostgreSQL database that does not exist, a refused login. The
    writer stops tracking at once on them (no retry, no outbox); everything else that
    keeps a store from answering (refused connections, timeouts, 5xx, locks) is transient.
    Looks through ``__cause__``/``__context__`` and SQLAlchemy's ``.orig``."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 8:
        seen += 1
        if isinstance(cur, StoreConfigError):
            return cur
        if isinstance(cur, AuthError) and cur.code != "not_owner" and cur.status_code in (401, 403):
            return cur
        text = str(cur)
        sqlstate = getattr(cur, "sqlstate", None)
        for state, start, end, fix in _PG_CONFIG_FAULTS:
            if sqlstate == state or (start in text and end in text):
                line = next((ln for ln in text.splitlines() if start in ln), text)
                reason = line.split("FATAL:", 1)[-1].strip() or text[:200]
                where = location or str(getattr(exc, "location", "") or "PostgreSQL")
                return StoreConfigError(where, reason, fix)
        cur = getattr(cur, "orig", None) or cur.__cause__ or cur.__context__
    return None
