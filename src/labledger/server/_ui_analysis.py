"""Parameter importance and the leaderboard for the dashboard, over the analysis library
(``Ledger.importance`` and ``Ledger.best``)."""

from __future__ import annotations

from typing import Any

from .. import Ledger
from .._exceptions import InvalidFilterError, UsageError
from ..store import Store

__all__ = ["IMPORTANCE_METHOD", "importance", "leaderboard"]

IMPORTANCE_METHOD = "random-forest permutation importance, with Spearman rank correlation"


def importance(
    store: Store,
    *,
    metric: str,
    project: str | None,
    filter: str | None,
    include_repro: bool = False,
) -> dict[str, Any]:
    """``{metric, method, n_runs, importances: [{key, importance, spearman, kind, ...}], message}``.

    Too few runs (the analysis needs a handful with a finite metric) is an answer, not an
    error: ``importances`` is then empty and ``message`` says why. A bad filter is a 400.
    """
    ledger = Ledger(store, reap=False)
    try:
        items = ledger.importance(
            metric, filter=filter, project=project, include_repro=include_repro
        )
    except InvalidFilterError:
        raise
    except UsageError as exc:
        return {
            "metric": metric,
            "method": IMPORTANCE_METHOD,
            "n_runs": 0,
            "importances": [],
            "message": str(exc),
        }
    from ..analysis import SMALL_SAMPLE, small_sample_note

    n_runs = items[0]["n"] if items else 0
    message = None if items else "these runs have no config keys"
    return {
        "metric": metric,
        "method": IMPORTANCE_METHOD,
        "n_runs": n_runs,
        "importances": items,
        "message": message,
        # fewer runs than SMALL_SAMPLE: the page shows the warning and the rank
        # correlations, not importance bars (a forest on 12 runs says 1.0 and 0)
        "small_sample": 0 < n_runs < SMALL_SAMPLE,
        "warning": small_sample_note(items),
        "noise_floor": items[0].get("noise_floor") if items else None,
    }


def leaderboard(
    store: Store,
    *,
    metric: str,
    maximize: bool,
    top: int,
    project: str | None,
    filter: str | None,
    include_repro: bool = False,
    by: str = "run",
) -> dict[str, Any]:
    """``{metric, mode, by, runs: [{rank, id, name, status, value, config, git_commit, ...}]}``;
    with ``by="config"`` the rows are configurations (``Ledger.leaderboard``: mean, std, n,
    interval, tied_with_best); reproductions rank only with ``include_repro``."""
    ledger = Ledger(store, reap=False)
    mode = "max" if maximize else "min"
    if by == "config":
        configs = ledger.leaderboard(
            metric, mode=mode, filter=filter, top=top, project=project, include_repro=include_repro
        )
        return {"metric": metric, "mode": mode, "by": "config", "runs": configs}
    rows = ledger.best(
        metric, mode=mode, filter=filter, top=top, project=project, include_repro=include_repro
    )
    return {"metric": metric, "mode": mode, "by": "run", "runs": rows}
