"""Ledger: the Python read API over any store."""

from __future__ import annotations

import os
from typing import Any

from .store import History, Store, open_store

__all__ = ["Ledger"]


class Ledger:
    """Read runs, metrics and artifacts from a store (argument, LABLEDGER_URI, or the embedded default).

    >>> ledger = Ledger()
    >>> best = ledger.runs(filter='status = "finished"', order_by="-summary.val_acc", limit=1)
    """

    def __init__(self, store: str | os.PathLike[str] | Store | None = None, *, reap: bool = True) -> None:
        if store is not None and not isinstance(store, (str, os.PathLike)):
            self.store: Store = store
        else:
            self.store = open_store(store)
        self._reap = reap

    def _reap_stale(self) -> None:
        if self._reap:
            self.store.reap_stale_runs()

    def runs(
        self,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Runs as dicts (the fields of ``labledger show --json``), newest first by default."""
        self._reap_stale()
        return self.store.list_runs(project=project, filter=filter, order_by=order_by, limit=limit, offset=offset)

    def count(self, project: str | None = None, filter: str | None = None) -> int:
        return self.store.count_runs(project=project, filter=filter)

    def get(self, run_id_or_prefix: str) -> dict[str, Any]:
        """One run by id, unique id prefix, or unique name."""
        self._reap_stale()
        return self.store.get_run(run_id_or_prefix)

    def history(self, run_id: str, key: str, max_points: int | None = None) -> History:
        """A metric series ordered by step; ``max_points`` downsamples keeping bucket extremes."""
        return self.store.history(self.store.resolve_run_id(run_id), key, max_points=max_points)

    def metric_keys(self, run_id: str) -> list[str]:
        return self.store.metric_keys(self.store.resolve_run_id(run_id))

    def projects(self) -> list[dict[str, Any]]:
        return self.store.projects()

    def to_pandas(
        self,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
    ) -> Any:
        """One row per run; config and summary flattened into ``config.*`` and ``summary.*`` columns."""
        import pandas as pd

        from .analysis import runs_to_rows

        return pd.DataFrame(runs_to_rows(self.runs(project, filter, order_by, limit)))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
