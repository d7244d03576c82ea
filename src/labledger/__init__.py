"""labledger: the single source of truth for machine-learning runs.

>>> import labledger
>>> with labledger.init("mnist", config={"lr": 1e-3}) as run:
...     run.log({"loss": 0.25})
"""

from __future__ import annotations

import typing as _typing

from ._cite import check, cite
from ._exceptions import (
    AmbiguousRunError,
    ArtifactNotFoundError,
    AuthError,
    IntegrityError,
    InvalidArtifactError,
    InvalidFilterError,
    InvalidKeyError,
    LabledgerError,
    LimitExceededError,
    NotAStoreError,
    NotFoundError,
    RunFinishedError,
    RunNotFoundError,
    SchemaTooNewError,
    StoreConfigError,
    StoreError,
    StoreUnavailableError,
    StoreUnwritableError,
    StrictModeError,
    UsageError,
)
from .tracking._run import Run, active_run, init

if _typing.TYPE_CHECKING:
    from ._ledger import Ledger
    from .capture.seeds import seed_everything
    from .integrations import autolog

__version__ = "0.1.0"

__all__ = [
    "AmbiguousRunError",
    "ArtifactNotFoundError",
    "AuthError",
    "IntegrityError",
    "InvalidArtifactError",
    "InvalidFilterError",
    "InvalidKeyError",
    "LabledgerError",
    "Ledger",
    "LimitExceededError",
    "NotAStoreError",
    "NotFoundError",
    "Run",
    "RunFinishedError",
    "RunNotFoundError",
    "SchemaTooNewError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "StoreUnwritableError",
    "StrictModeError",
    "UsageError",
    "__version__",
    "active_run",
    "autolog",
    "check",
    "cite",
    "init",
    "seed_everything",
]


def __getattr__(name: str) -> _typing.Any:
    # Ledger pulls in SQLAlchemy and numpy: load it on first use, not at import.
    if name == "Ledger":
        from ._ledger import Ledger

        return Ledger
    if name == "seed_everything":  # seeding imports random; capture loads with the first run
        from .capture.seeds import seed_everything

        return seed_everything
    if name == "autolog":  # the import hook and the integrations load on first use
        from .integrations import autolog

        return autolog
    raise AttributeError(f"module 'labledger' has no attribute {name!r}")
