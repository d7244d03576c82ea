"""Parameter importance and leaderboard for the dashboard, over the analysis library."""

from __future__ import annotations

from typing import Any

from ..store import Store
from .errors import ApiError

__all__ = ["importance", "leaderboard"]


def importance(
    store: Store, *, metric: str, project: str | None, filter: str | None
) -> dict[str, Any]:
    raise ApiError(
        501, "parameter importance is not available in this version", code="not_implemented"
    )


def leaderboard(
    store: Store, *, metric: str, maximize: bool, top: int, project: str | None, filter: str | None
) -> dict[str, Any]:
    raise ApiError(501, "the leaderboard is not available in this version", code="not_implemented")
