"""labledger: the single source of truth for machine-learning runs.

>>> import labledger
>>> with labledger.init("mnist", config={"lr": 1e-3}) as run:
...     run.log({"loss": 0.25})

W&B habits work too: ``labledger.log({...})``, ``labledger.config``, ``labledger.summary``
and ``labledger.finish()`` act on the active run (the latest ``init()`` not finished).
"""

from __future__ import annotations

import typing as _typing

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
    NoActiveRunError,
    NotAStoreError,
    NotFoundError,
    PolicyViolationError,
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
from .tracking import Run, active_run, init

if _typing.TYPE_CHECKING:
    from ._cite import check, cite
    from ._ledger import Ledger
    from ._media import ConfusionMatrix, Curve, Histogram, Image, Table, Text
    from .capture.seeds import seed_everything
    from .integrations import autolog

__version__ = "0.1.0"

__all__ = [
    "AmbiguousRunError",
    "ArtifactNotFoundError",
    "AuthError",
    "ConfusionMatrix",
    "Curve",
    "Histogram",
    "Image",
    "IntegrityError",
    "InvalidArtifactError",
    "InvalidFilterError",
    "InvalidKeyError",
    "LabledgerError",
    "Ledger",
    "LimitExceededError",
    "NoActiveRunError",
    "NotAStoreError",
    "NotFoundError",
    "PolicyViolationError",
    "Run",
    "RunFinishedError",
    "RunNotFoundError",
    "SchemaTooNewError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "StoreUnwritableError",
    "StrictModeError",
    "Table",
    "Text",
    "UsageError",
    "__version__",
    "active_run",
    "autolog",
    "check",
    "cite",
    "finish",
    "init",
    "log",
    "seed_everything",
]


def log(data: _typing.Mapping[str, _typing.Any], step: int | None = None) -> None:
    """``run.log(data, step)`` on the active run (W&B's ``wandb.log``); raises
    :class:`NoActiveRunError` naming ``labledger.init`` when no run is going."""
    run = active_run()
    if run is None:
        raise NoActiveRunError("log")
    run.log(data, step=step)


def finish(status: str | None = None) -> None:
    """``run.finish(status)`` on the active run (W&B's ``wandb.finish``). With no run going
    it does nothing, so a script that already finished its run does not fail at the end."""
    run = active_run()
    if run is not None:
        run.finish(status)


_MEDIA = frozenset({"ConfusionMatrix", "Curve", "Histogram", "Image", "Table", "Text"})


def __getattr__(name: str) -> _typing.Any:
    # W&B's module-level ``config`` and ``summary``: the active run's mappings
    if name in ("config", "summary"):
        run = active_run()
        if run is None:
            raise NoActiveRunError(name)
        return getattr(run, name)
    # Ledger pulls in SQLAlchemy and numpy: load it on first use, not at import.
    if name == "Ledger":
        from ._ledger import Ledger

        return Ledger
    if name == "seed_everything":  # seeding imports random; capture loads with the first run
        from .capture.seeds import seed_everything

        return seed_everything
    if name in _MEDIA:  # the rich-result kinds load on first use (most runs log scalars)
        from . import _media

        return getattr(_media, name)
    if name in ("check", "cite"):  # citing reads a store: not on a tracked script's path
        from . import _cite

        return getattr(_cite, name)
    if name == "autolog":  # the import hook and the integrations load on first use
        from .integrations import autolog

        return autolog
    raise AttributeError(f"module 'labledger' has no attribute {name!r}")
