"""Ledger: the Python read API over any store."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

from .store import History, Store, open_store

if TYPE_CHECKING:
    from .query import Node
    from .store import RunRecord

__all__ = ["Ledger"]


class Ledger:
    """Read runs, metrics and artifacts from a store (argument, LABLEDGER_URI, or the embedded default).

    >>> ledger = Ledger()
    >>> best = ledger.runs(filter='status = "finished"', order_by="-summary.val_acc", limit=1)
    """

    def __init__(
        self, store: str | os.PathLike[str] | Store | None = None, *, reap: bool = True
    ) -> None:
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
        filter: str | Node | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs as :class:`~labledger.store.RunRecord` dicts (the fields of ``labledger show
        --json``), newest first by default."""
        self._reap_stale()
        from ._html import RunTable  # a list that renders as an HTML table in notebooks

        return cast(
            "list[RunRecord]",
            RunTable(
                self.store.list_runs(
                    project=project, filter=filter, order_by=order_by, limit=limit, offset=offset
                )
            ),
        )

    def count(self, project: str | None = None, filter: str | Node | None = None) -> int:
        return self.store.count_runs(project=project, filter=filter)

    def get(self, run_id_or_prefix: str) -> RunRecord:
        """One run by id, unique id prefix, or unique name."""
        self._reap_stale()
        from ._html import RunDict  # a dict that renders as HTML in notebooks

        return cast("RunRecord", RunDict(self.store.get_run(run_id_or_prefix)))

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

    # -- analysis (labledger.analysis; the CLI's best/diff/compare/importance/export) ----

    def best(
        self,
        metric: str,
        *,
        mode: str = "max",
        filter: str | None = None,
        top: int = 10,
        project: str | None = None,
    ) -> list[dict[str, Any]]:
        """The leaderboard for ``metric``: top runs with their config, commit, patch, seed, data and runtime."""
        import math

        from ._exceptions import UsageError
        from .analysis import leaderboard_row

        if mode not in ("max", "min"):
            raise UsageError(f"mode must be 'max' or 'min', not {mode!r}")
        flt = _with_metric(filter, metric)
        order = ("-" if mode == "max" else "") + _metric_field(metric)
        runs = self.runs(project=project, filter=flt, order_by=order, limit=top)
        ranked = [
            r
            for r in runs
            if isinstance(v := r["summary"].get(metric), (int, float))
            and not isinstance(v, bool)
            and not math.isnan(v)
        ]
        return [leaderboard_row(i + 1, r, metric) for i, r in enumerate(ranked)]

    def diff(self, run_a: str, run_b: str, *, show_all: bool = False) -> dict[str, Any]:
        """What differs between two runs: config, summary, environment, seed, datasets."""
        from .analysis import diff_runs

        self._reap_stale()  # once, not once per run read
        a, b = self.store.get_run(run_a), self.store.get_run(run_b)
        return diff_runs(a, b, show_all=show_all, blobs=self.store.get_blob)

    def compare(self, *run_refs: str) -> dict[str, Any]:
        """Several runs as one table (one row per key), differing keys first."""
        from .analysis import compare_runs

        self._reap_stale()  # once, not once per run read
        return compare_runs([self.store.get_run(ref) for ref in run_refs])

    def importance(
        self,
        metric: str,
        *,
        filter: str | None = None,
        project: str | None = None,
        keys: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """How much each config key matters for ``metric`` (random-forest permutation importance
        and Spearman correlation), most important first."""
        from .analysis import importance

        return importance(
            self._light_runs(project, _with_metric(filter, metric)), metric, keys=keys
        )

    def _light_runs(self, project: str | None, filter: str | Node | None) -> list[dict[str, Any]]:
        """``{"id", "config", "summary"}`` of each matching run, for analyses: through the
        store's bulk export read when it has one (no env, no datasets, every metric's last
        value in one query), else through :meth:`runs`."""
        from ._values import decode_json
        from .store import RunExport

        if not isinstance(self.store, RunExport):
            return [dict(r) for r in self.runs(project=project, filter=filter)]
        self._reap_stale()
        return [
            {
                "id": r["id"],
                "config": decode_json(r["config"] or {}),
                "summary": {**r["metrics"], **decode_json(r["summary"] or {})},
            }
            for r in self.store.export_records(project=project, filter=filter)
        ]

    def export(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        *,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
    ) -> Any:
        """Write one row per run (config and summary flattened) as csv, parquet or json; return the path."""
        from .analysis import export_rows, runs_to_rows, sql_export_rows

        rows = sql_export_rows(
            self.store, project=project, filter=filter, order_by=order_by, limit=limit
        )
        if rows is None:  # no bulk export read (e.g. a tracking server): the generic read API
            rows = runs_to_rows(self.runs(project, filter, order_by, limit))
        return export_rows(rows, path, format)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _metric_field(metric: str) -> str:
    from ._exceptions import UsageError

    if not metric or "`" in metric or '"' in metric or "\\" in metric:
        raise UsageError(f"invalid metric name {metric!r}")
    return f"summary.`{metric}`"


def _with_metric(filter: str | None, metric: str) -> Node:
    """The tree of ``filter`` (parsed on its own, so errors point into the user's text) and
    ``summary.M exists``; the store compiles this tree, it is not re-parsed from text."""
    from .query import And, Exists, parse, parse_field

    has_metric = Exists(parse_field(_metric_field(metric)))
    if not filter:
        return has_metric
    return And((parse(filter), has_metric))
