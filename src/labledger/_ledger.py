"""Ledger: the Python read API over any store."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from .store import History, Store, open_store

if TYPE_CHECKING:
    from .query import Node
    from .store import RunRecord

__all__ = ["Ledger"]

_R = TypeVar("_R", bound=Mapping[str, Any])


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
        *,
        amended: bool = False,
    ) -> list[RunRecord]:
        """Runs as :class:`~labledger.store.RunRecord` dicts (the fields of ``labledger show
        --json``), newest first by default.

        ``summary`` holds the sealed values (what each run logged) and ``amended`` the
        amendments made after it ended (``{key: {sealed, value, by, at, reason}}``); the
        filter and the order read the sealed values. ``amended=True`` reads the amended
        values instead (in ``summary``, ``amended`` still says which): it reads every run of
        the project and filters and sorts them here."""
        self._reap_stale()
        from ._html import RunTable  # a list that renders as an HTML table in notebooks

        if amended:
            runs = self._amended_runs(project, filter, order_by, limit, offset)
        else:
            runs = self.store.list_runs(
                project=project, filter=filter, order_by=order_by, limit=limit, offset=offset
            )
        return cast("list[RunRecord]", RunTable(runs))

    def _amended_runs(
        self,
        project: str | None,
        filter: str | Node | None,
        order_by: str | list[str] | None,
        limit: int | None,
        offset: int,
    ) -> list[RunRecord]:
        from .query import evaluate, parse
        from .store import apply_amended

        runs = []
        for r in self.store.list_runs(project=project):
            if r.get("amended"):
                r["summary"] = apply_amended(r["summary"], r["amended"])
            runs.append(r)
        if filter:
            node = parse(filter) if isinstance(filter, str) else filter
            runs = [r for r in runs if evaluate(node, r)]
        keys = [order_by] if isinstance(order_by, str) else list(order_by or [])
        runs = _sort_runs(runs, keys)
        end = None if limit is None else offset + limit
        return runs[offset:end]

    def count(
        self,
        project: str | None = None,
        filter: str | Node | None = None,
        *,
        include_repro: bool = False,
    ) -> int:
        """How many runs match; reproductions (``job_type = "repro"``) only with ``include_repro``."""
        return self.store.count_runs(project=project, filter=_scope(filter, include_repro))

    def get(self, run_id_or_prefix: str) -> RunRecord:
        """One run by id, unique id prefix, or unique name."""
        self._reap_stale()
        from ._html import RunDict  # a dict that renders as HTML in notebooks

        return cast("RunRecord", RunDict(self.store.get_run(run_id_or_prefix)))

    @overload
    def history(
        self,
        run_id: str,
        key: str,
        max_points: int | None = None,
        *,
        format: Literal["numpy"] | None = None,
    ) -> History: ...

    @overload
    def history(
        self, run_id: str, key: str, max_points: int | None = None, *, format: Literal["arrow"]
    ) -> Any: ...

    def history(
        self, run_id: str, key: str, max_points: int | None = None, *, format: str | None = None
    ) -> History | Any:
        """A metric series ordered by step; ``max_points`` downsamples keeping bucket extremes.

        Returns a :class:`~labledger.store.History` (numpy arrays); ``format="arrow"``
        returns it as a ``pyarrow.Table`` (``step, value, timestamp``; run, key and total
        in the schema metadata) built over the same arrays without a copy. Over a tracking
        server the series travels as Arrow IPC when pyarrow is installed."""
        if format not in (None, "numpy", "arrow"):
            from ._exceptions import UsageError

            raise UsageError(f"history format must be 'numpy' or 'arrow', not {format!r}")
        h = self.store.history(self.store.resolve_run_id(run_id), key, max_points=max_points)
        return h.to_arrow() if format == "arrow" else h

    def metric_keys(self, run_id: str) -> list[str]:
        return self.store.metric_keys(self.store.resolve_run_id(run_id))

    def projects(self) -> list[dict[str, Any]]:
        return self.store.projects()

    def media(
        self,
        run_id: str,
        key: str | None = None,
        *,
        step: int | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """A run's rich results (images, tables, confusion matrices, curves, histograms,
        texts): one dict each with ``key, step, seq, kind, sha256, size, caption, meta``,
        ordered by key, step, seq; :meth:`media_bytes` reads the stored bytes."""
        rid = self.store.resolve_run_id(run_id)
        return self.store.media(rid, key, step=step, offset=offset, limit=limit)

    def media_keys(self, run_id: str) -> list[dict[str, Any]]:
        """One entry per rich-result key of a run: ``key, kind, count, steps,
        first_step, last_step``."""
        return self.store.media_keys(self.store.resolve_run_id(run_id))

    def media_bytes(self, run_id: str, item: dict[str, Any] | str) -> bytes:
        """The stored bytes of one rich result (an item of :meth:`media`, or its sha256):
        PNG (or the logged file's format) for an image, UTF-8 for a text, JSON otherwise."""
        sha = item if isinstance(item, str) else str(item["sha256"])
        return self.store.media_blob(self.store.resolve_run_id(run_id), sha)

    def to_pandas(
        self,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        *,
        amended: bool = False,
        include_repro: bool = False,
    ) -> Any:
        """One row per run; provenance columns (``commit, dirty, patch_sha256, datasets,
        replicate_set, repro_verdict`` beside ``author`` and ``seed``), config and summary
        flattened into ``config.*`` and ``summary.*`` columns (sealed values; ``amended.*`` the amended ones where a run has any;
        ``amended=True``: ``summary.*`` amended, see :meth:`runs`).

        Reproductions (``job_type = "repro"``, made by ``labledger repro``) are left out
        unless ``include_repro``."""
        import pandas as pd

        from .analysis import latest_verdicts, runs_to_rows

        flt = _scope(filter, include_repro)
        runs = self.runs(project, flt, order_by, limit, amended=amended)
        verdicts = latest_verdicts(self.store, [r["id"] for r in runs])
        return pd.DataFrame(runs_to_rows(runs, verdicts=verdicts))

    # -- analysis (labledger.analysis; the CLI's best/diff/compare/importance/export) ----

    def best(
        self,
        metric: str,
        *,
        mode: str = "max",
        filter: str | None = None,
        top: int = 10,
        project: str | None = None,
        amended: bool = False,
        include_repro: bool = False,
        include_pruned: bool = False,
    ) -> list[dict[str, Any]]:
        """The leaderboard for ``metric``: top runs with their config, commit, patch, seed, data and runtime.

        Ranked by sealed values; a row's ``amended`` is the amendment of ``metric``
        (``{sealed, value, by, at, reason}``) or None. ``amended=True`` ranks by the amended
        values (``value`` is then the amended one). Reproductions (``job_type = "repro"``)
        do not rank unless ``include_repro``: a reproduction ties with its original and
        would take a second place of the board. Pruned runs (an Optuna trial stopped early
        keeps its last intermediate value) do not rank unless ``include_pruned=True`` or the
        filter names ``status`` itself."""
        import math

        from ._exceptions import UsageError
        from .analysis import leaderboard_row

        if mode not in ("max", "min"):
            raise UsageError(f"mode must be 'max' or 'min', not {mode!r}")
        flt = _with_metric(filter, metric)
        if not include_pruned and not _names_status(flt):
            from .query import And, parse

            flt = And((flt, parse('status != "pruned"')))
        scoped = _scope(flt, include_repro)
        order = ("-" if mode == "max" else "") + _metric_field(metric)
        runs = self.runs(project=project, filter=scoped, order_by=order, limit=top, amended=amended)
        ranked = [
            r
            for r in runs
            if isinstance(v := r["summary"].get(metric), (int, float))
            and not isinstance(v, bool)
            and not math.isnan(v)
        ]
        return [leaderboard_row(i + 1, r, metric) for i, r in enumerate(ranked)]

    def leaderboard(
        self,
        metric: str,
        by: str = "config",
        *,
        mode: str = "max",
        filter: str | None = None,
        top: int | None = None,
        project: str | None = None,
        amended: bool = False,
        include_repro: bool = False,
        seed_keys: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Configurations ranked by their mean ``metric`` over seeds (``by="config"``).

        Runs that differ only in their seed form one row (a replicate set: same commit,
        patch, data and config without seed keys, see ``LABLEDGER_SEED_KEYS``). Each row
        has ``config, mean, std, n, ci_low, ci_high, tied_with_best, runs`` (and
        ``p_value``, ``seeds``, ``note``): ``tied_with_best`` is Welch's t-test against the
        top row at the 5% level, None where either row has a single seed
        (``note = "one seed: noise unknown"``); docs/query.md "Is it better, or is it
        noise?". Sealed values rank unless ``amended``; reproductions only with
        ``include_repro``. ``by="run"`` is :meth:`best`."""
        from ._exceptions import UsageError
        from .analysis import config_leaderboard

        if by == "run":
            return self.best(
                metric,
                mode=mode,
                filter=filter,
                top=top or 10,
                project=project,
                amended=amended,
                include_repro=include_repro,
            )
        if by != "config":
            raise UsageError(f"by must be 'config' or 'run', not {by!r}")
        if mode not in ("max", "min"):
            raise UsageError(f"mode must be 'max' or 'min', not {mode!r}")
        _metric_field(metric)
        flt = _scope(_with_metric(filter, metric), include_repro)
        runs = self.runs(project=project, filter=flt, amended=amended)
        return config_leaderboard(runs, metric, mode=mode, top=top, seed_keys=seed_keys)

    def diff(self, run_a: str, run_b: str, *, show_all: bool = False) -> dict[str, Any]:
        """What differs between two runs: config, summary, environment, seed, datasets."""
        from .analysis import diff_runs

        self._reap_stale()  # once, not once per run read
        a, b = self.store.get_run(run_a), self.store.get_run(run_b)
        return diff_runs(a, b, show_all=show_all, blobs=self.store.get_blob)

    def compare(self, *run_refs: str) -> dict[str, Any]:
        """Several runs as one table (one row per key, each with its ``group``: provenance,
        config, summary, run, env, system), differing keys first, ``system/*`` last."""
        from .analysis import compare_runs
        from .repro import repro_fields

        self._reap_stale()  # once, not once per run read
        runs: list[dict[str, Any]] = [dict(self.store.get_run(ref)) for ref in run_refs]
        verdicts = repro_fields(self.store, [r["id"] for r in runs])
        for r in runs:
            r["repro"] = verdicts.get(r["id"])
        return compare_runs(runs)

    def importance(
        self,
        metric: str,
        *,
        filter: str | None = None,
        project: str | None = None,
        keys: list[str] | None = None,
        include_repro: bool = False,
        progress: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        page: int = 5000,
    ) -> list[dict[str, Any]]:
        """How much each config key matters for ``metric`` (random-forest permutation importance
        and Spearman correlation), most important first; reproductions only with ``include_repro``.

        ``progress(message)`` names each stage (reading, encoding, fitting);
        ``on_progress(done, total)`` counts the runs read, ``page`` at a time (the CLI's
        progress bar). The CLI, the dashboard and this call share this one path."""
        from .analysis import importance, importance_columns
        from .store import RunExport

        if not isinstance(self.store, RunExport):
            runs = self._light_runs(project, filter, include_repro, metric, code=keys is None)
            if on_progress is not None:
                on_progress(len(runs), len(runs))
            return importance(runs, metric, keys=keys, progress=progress)
        # columns, not records: what importance reads, a page at a time, joined column-wise
        _metric_field(metric)
        from .query import parse

        scoped = _scope(parse(filter) if filter else None, include_repro)
        self._reap_stale()
        total = 0
        if on_progress is not None:
            total = self.store.count_runs(project=project, filter=scoped)
            on_progress(0, total)
        columns: dict[str, list[Any]] = {}
        done = 0
        for part in self.store.iter_run_columns(
            project=project, filter=scoped, metric=metric, packages=keys is None, page=page
        ):
            for name, col in part.items():
                columns.setdefault(name, []).extend(col)
            done += len(part.get("id", ()))
            if on_progress is not None:
                on_progress(done, max(done, total))
        if on_progress is not None and done < total:  # runs removed meanwhile
            on_progress(done, done)
        if not columns:
            columns = {"value": []}
        return importance_columns(columns, metric, keys=keys, progress=progress)

    def _light_runs(
        self,
        project: str | None,
        filter: str | None,
        include_repro: bool,
        metric: str,
        *,
        code: bool,
    ) -> list[dict[str, Any]]:
        """What :func:`~labledger.analysis.importance` reads of each matching run: config,
        ``metric``, and the commit, patch digest and datasets that make runs replicates (with
        ``code``, the env's packages too, for the code and data factors). Through the
        store's streamed export read where it has one (keyset pages, ``metric``'s value in
        bulk per page, no other metric, no env beyond those), else through :meth:`runs`."""
        from ._values import decode_json
        from .store import RunExport

        if not isinstance(self.store, RunExport):
            flt = _scope(_with_metric(filter, metric), include_repro)
            return [dict(r) for r in self.runs(project=project, filter=flt)]
        # no `summary.M exists` in the SQL here: importance drops the runs without a number
        # for M itself, and that test is a subquery over every run's metrics on each page
        _metric_field(metric)
        from .query import parse

        scoped = _scope(parse(filter) if filter else None, include_repro)
        self._reap_stale()
        out = []
        for r in self.store.iter_export_records(
            project=project, filter=scoped, metrics=[metric], media=False, packages=code
        ):
            env: dict[str, Any] = {
                "git": {"commit": r["git_commit"], "diff_sha256": r["git_patch"]}
            }
            if code:
                env["packages"] = r.get("packages") or {}
            out.append(
                {
                    "id": r["id"],
                    "project": r["project"],
                    "config": decode_json(r["config"] or {}),
                    "summary": {**r["metrics"], **decode_json(r["summary"] or {})},
                    "datasets": r["datasets"],
                    "seed": r["seed"],
                    "env": env,
                }
            )
        return out

    def export(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        *,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        include_repro: bool = False,
    ) -> Any:
        """Write one row per run (config and summary flattened) as csv, parquet or json; return the path.

        Reproductions (``job_type = "repro"``) are left out unless ``include_repro``."""
        from .analysis import latest_verdicts, runs_to_rows, sql_export_pages, write_pages

        flt = _scope(filter, include_repro)
        # keyset pages of rows written as they come (a Parquet row group a page)
        pages = sql_export_pages(
            self.store, project=project, filter=flt, order_by=order_by, limit=limit
        )
        if pages is None:  # no bulk export read (e.g. a tracking server): the generic read API
            runs = self.runs(project, flt, order_by, limit)
            verdicts = latest_verdicts(self.store, [r["id"] for r in runs])
            pages = iter([runs_to_rows(runs, verdicts=verdicts)])
        return write_pages(pages, path, format)[0]

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sort_runs(runs: list[_R], keys: list[str]) -> list[_R]:
    """``runs`` sorted as the SQL store sorts them (``store/_filter_sql.compile_order_by``):
    per key numbers first, then strings, missing values last either way; ties newest
    first, then by id."""
    from ._exceptions import InvalidFilterError, InvalidSortKeyError
    from .query import parse_field

    out = sorted(runs, key=lambda r: r.get("id") or "")
    out.sort(key=lambda r: -(r.get("created_at") or 0.0))
    for raw in reversed(keys):
        key = raw.strip()
        desc = key.startswith("-")
        try:
            field = parse_field(key.lstrip("+-").strip())
        except InvalidFilterError as exc:
            raise InvalidSortKeyError(raw, exc.message) from None
        nums: list[tuple[float, _R]] = []
        strs: list[tuple[str, _R]] = []
        missing: list[_R] = []
        for r in out:
            v = _field_value(field, r)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
                nums.append((float(v), r))
            elif isinstance(v, str):
                strs.append((v, r))
            else:
                missing.append(r)
        nums.sort(key=lambda p: p[0], reverse=desc)
        strs.sort(key=lambda p: p[0], reverse=desc)
        out = [r for _, r in nums] + [r for _, r in strs] + missing
    return out


def _field_value(field: Any, run: Mapping[str, Any]) -> Any:
    if field.kind == "summary":
        return (run.get("summary") or {}).get(field.path[0])
    if field.is_json:
        cur: Any = run.get(field.kind) or {}
        for key in field.path:
            if not isinstance(cur, dict) or key not in cur:
                return None
            cur = cur[key]
        return cur
    return run.get(field.kind)


def _scope(filter: str | Node | None, include_repro: bool) -> str | Node | None:
    """``filter``, without reproductions unless ``include_repro`` (see store/_repro_rules.py)."""
    if include_repro:
        return filter
    from .store import without_repro

    return without_repro(filter)


def _metric_field(metric: str) -> str:
    from ._exceptions import UsageError

    if not metric or "`" in metric or '"' in metric or "\\" in metric:
        raise UsageError(f"invalid metric name {metric!r}")
    return f"summary.`{metric}`"


def _names_status(node: Any) -> bool:
    """Whether a filter tree compares the run's ``status`` anywhere."""
    field = getattr(node, "field", None)
    if field is not None and getattr(field, "kind", None) == "status":
        return True
    for child in (*getattr(node, "items", ()), getattr(node, "item", None)):
        if child is not None and _names_status(child):
            return True
    return False


def _with_metric(filter: str | None, metric: str) -> Node:
    """The tree of ``filter`` (parsed on its own, so errors point into the user's text) and
    ``summary.M exists``; the store compiles this tree, it is not re-parsed from text."""
    from .query import And, Exists, parse, parse_field

    has_metric = Exists(parse_field(_metric_field(metric)))
    if not filter:
        return has_metric
    return And((parse(filter), has_metric))
