"""Export runs to CSV, Parquet or JSON: one row per run, config and summary flattened."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import UsageError
from .._values import decode_json, json_safe

if TYPE_CHECKING:
    from ..store import ExportRecord

__all__ = [
    "FORMATS",
    "PROVENANCE_COLUMNS",
    "export_rows",
    "latest_verdicts",
    "provenance_columns",
    "records_to_rows",
    "rows_to_frame",
    "sql_export_pages",
    "sql_export_rows",
    "write_pages",
]

# what produced each row, beside id/author/seed: code, data, replicate set, reproduction
PROVENANCE_COLUMNS = (
    "commit",
    "dirty",
    "patch_sha256",
    "datasets",
    "replicate_set",
    "repro_verdict",
)

FORMATS = ("csv", "parquet", "json")
PROGRESS_EVERY = 500  # runs between two on_progress calls


def rows_to_frame(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A pandas DataFrame from flat rows; list/dict cells become JSON text (Parquet needs one type)."""
    import pandas as pd

    df = pd.DataFrame.from_records(list(rows))
    for col in df.columns:
        if df[col].dtype == object:
            kinds = {
                type(v)
                for v in df[col]
                if v is not None and not (isinstance(v, float) and math.isnan(v))
            }
            if kinds and not kinds <= {str} and not kinds <= {int, float} and not kinds <= {bool}:
                df[col] = [
                    None if v is None else v if isinstance(v, str) else json.dumps(v, default=str)
                    for v in df[col]
                ]
    return df


def export_rows(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], format: str | None = None
) -> Path:
    """Write ``rows`` (from :func:`labledger.analysis.runs_to_rows`) to ``path``; the format
    defaults to the file extension."""
    out = Path(path)
    fmt = (format or out.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise UsageError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if fmt == "json":
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(
                [json_safe(dict(r)) for r in rows],
                fh,
                allow_nan=False,
                default=str,
            )
    else:
        df = rows_to_frame(rows)
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False, engine="pyarrow")
    os.replace(tmp, out)
    return out


def _datasets_text(datasets: Any) -> str:
    """``name=sha256`` pairs joined by ``;`` (sorted by name), one cell in every format."""
    pairs = sorted(
        (str(d.get("name") or d.get("path") or ""), str(d.get("sha256") or ""))
        for d in (datasets or [])
        if isinstance(d, Mapping)
    )
    return ";".join(f"{n}={h}" for n, h in pairs)


def provenance_columns(
    run: Mapping[str, Any],
    verdicts: Mapping[str, str] | None = None,
    *,
    seeds: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The provenance cells of one run (:data:`PROVENANCE_COLUMNS`): git commit, dirty,
    patch digest, dataset digests, replicate set id and the latest reproduction verdict
    (``verdicts``: run id -> verdict, from :func:`latest_verdicts`). ``seeds``: the seed
    keys (default :func:`~labledger.analysis.seed_keys`; read once for many runs)."""
    from ._replicates import replicate_key

    env = run.get("env") or {}
    git = env.get("git") if isinstance(env, Mapping) else None
    git = git if isinstance(git, Mapping) else {}
    return {
        "commit": git.get("commit"),
        "dirty": git.get("dirty"),
        "patch_sha256": git.get("diff_sha256"),
        "datasets": _datasets_text(run.get("datasets")),
        "replicate_set": replicate_key(run, seeds),
        "repro_verdict": (verdicts or {}).get(str(run.get("id"))),
    }


def latest_verdicts(store: Any, run_ids: Sequence[str]) -> dict[str, str]:
    """Run id -> the verdict of its newest reproduction (as the original); empty when the
    store keeps no verdicts."""
    from ..store import ReproVerdicts

    if not isinstance(store, ReproVerdicts) or not run_ids:
        return {}
    out: dict[str, str] = {}
    for v in store.repro_verdicts(list(run_ids)):  # newest first
        out.setdefault(str(v["original_run_id"]), str(v["verdict"]))
    return out


_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _flat_into(row: dict[str, Any], prefix: str, value: Any) -> None:
    """Flatten a stored JSON mapping into ``row`` while decoding {"$float": ...} leaves in one pass."""
    for k, v in value.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            if len(v) == 1 and "$float" in v and v["$float"] in _NONFINITE:
                row[key] = _NONFINITE[v["$float"]]
            else:
                _flat_into(row, key + ".", v)
        else:
            row[key] = decode_json(v) if isinstance(v, list) else v  # {"$float"} inside lists


def sql_export_rows(
    store: Any,
    *,
    project: str | None = None,
    filter: Any = None,  # text or a parsed filter tree
    order_by: str | list[str] | None = None,
    limit: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]] | None:
    """Export rows from the store's bulk read (the :class:`~labledger.store.RunExport` role:
    only the columns an export needs, every metric's last value in one query). None when
    ``store`` has no such role (a tracking server: read it with ``runs_to_rows``).

    ``on_progress(done, total)`` is called as runs are turned into rows (a progress bar).
    """
    from ..store import RunExport

    if not isinstance(store, RunExport):
        return None
    records = store.export_records(project=project, filter=filter, order_by=order_by, limit=limit)
    verdicts = latest_verdicts(store, [r["id"] for r in records])
    return records_to_rows(records, on_progress=on_progress, verdicts=verdicts)


def records_to_rows(
    records: Sequence[ExportRecord],
    *,
    now: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    verdicts: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Export rows from a store's bulk export read (:class:`~labledger.store.RunExport`),
    the same rows :func:`runs_to_rows` makes of full run records (``verdicts``: run id ->
    its latest reproduction verdict, :func:`latest_verdicts`).

    ``on_progress(done, total)`` is called as runs are turned into rows (a progress bar).
    """
    import time

    from ._replicates import seed_keys

    now = time.time() if now is None else now
    seeds = tuple(k.lower() for k in seed_keys())  # once, not once a run
    rows = []
    total = len(records)
    if on_progress is not None:
        on_progress(0, total)
    for rec in records:
        created, ended, status = rec["created_at"], rec["ended_at"], rec["status"]
        end = ended if ended is not None else (now if status == "running" else rec["heartbeat_at"])
        row: dict[str, Any] = {
            "id": rec["id"],
            "project": rec["project"],
            "name": rec["name"],
            "author": rec["author"],
            "status": status,
            "created_at": created,
            "ended_at": ended,
            "runtime_s": None if end is None else max(0.0, end - created),
            "seed": rec["seed"],
            "tags": ",".join(rec["tags"]),
        }
        ident = {
            "id": rec["id"],
            "project": rec["project"],
            "config": decode_json(rec["config"]),
            "datasets": rec.get("datasets") or [],
            "env": {
                "git": {
                    "commit": rec.get("git_commit"),
                    "dirty": rec.get("git_dirty"),
                    "diff_sha256": rec.get("git_patch"),
                }
            },
        }
        row.update(provenance_columns(ident, verdicts, seeds=seeds))
        _flat_into(row, "config.", rec["config"])
        summ = dict(sorted(rec["metrics"].items()))
        summ.update(decode_json(rec["summary"]))
        row.update({f"summary.{k}": v for k, v in summ.items()})
        row.update({f"amended.{k}": v for k, v in (rec.get("amended") or {}).items()})
        row.update({f"media.{k}": v for k, v in sorted((rec.get("media") or {}).items())})
        for k, ref in sorted((rec.get("media_refs") or {}).items()):
            # where the reference above points: step, kind, size of the last value, and
            # how many values the key has (`labledger media get RUN KEY` fetches them)
            row.update({f"media.{k}.{f}": ref[f] for f in ("step", "kind", "size", "count")})
        rows.append(row)
        if on_progress is not None and len(rows) % PROGRESS_EVERY == 0:
            on_progress(len(rows), total)
    if on_progress is not None:
        on_progress(total, total)
    return rows


EXPORT_PAGE = 2000  # runs per page of a streamed export (a Parquet row group each)


def sql_export_pages(
    store: Any,
    *,
    project: str | None = None,
    filter: Any = None,  # text or a parsed filter tree
    order_by: str | list[str] | None = None,
    limit: int | None = None,
    page: int = EXPORT_PAGE,
    now: float | None = None,
) -> Iterator[list[dict[str, Any]]] | None:
    """:func:`sql_export_rows` as a stream of pages of rows: the store's keyset-paged
    ``iter_export_records`` (without ``order_by`` and ``limit``) cut into pages of
    ``page`` runs, each page's reproduction verdicts read in bulk. None when ``store`` has
    no bulk export read. With ``order_by`` or ``limit``, one page (the store's sorted read)."""
    import time

    from ..store import RunExport

    if not isinstance(store, RunExport):
        return None
    at = time.time() if now is None else now

    def pages() -> Iterator[list[dict[str, Any]]]:
        if order_by is not None or limit is not None:
            chunks: Iterable[list[Any]] = [
                store.export_records(project=project, filter=filter, order_by=order_by, limit=limit)
            ]
        else:
            stream = store.iter_export_records(project=project, filter=filter, page=page)
            chunks = iter(lambda: list(itertools.islice(stream, page)), [])
        for records in chunks:
            if records:
                verdicts = latest_verdicts(store, [r["id"] for r in records])
                yield records_to_rows(records, now=at, verdicts=verdicts)

    return pages()


def write_pages(
    pages: Iterable[Sequence[Mapping[str, Any]]],
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[Path, int]:
    """:func:`export_rows` over a stream of pages of rows, in memory bounded by a page:
    JSON is written a row at a time; Parquet a row group a page, through a
    ``ParquetWriter``; CSV a page at a time. Pages whose columns differ (a config key
    first seen late, a column that is whole numbers in one page and fractions in the
    next) are spilled as Parquet parts beside ``path`` and joined at the end under one
    schema: the column types :func:`rows_to_frame` gives all rows at once (numbers of
    both kinds become floats, a column mixing other kinds JSON text). Returns the path
    and the number of rows; ``on_progress(rows written)`` after each page."""
    out = Path(path)
    fmt = (format or out.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise UsageError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    if fmt == "json":
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("[")
            for rows in pages:
                for r in rows:
                    if n:
                        fh.write(", ")
                    fh.write(json.dumps(json_safe(dict(r)), allow_nan=False, default=str))
                    n += 1
                if on_progress is not None:
                    on_progress(n)
            fh.write("]")
        os.replace(tmp, out)
        return out, n
    import tempfile

    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as spill:
        parts = _Parts(Path(spill), direct=tmp if fmt == "parquet" else None)
        for rows in pages:
            if rows:
                parts.add(rows_to_frame(rows))
                n += len(rows)
            if on_progress is not None:
                on_progress(n)
        parts.finish(tmp, fmt)
    os.replace(tmp, out)
    return out, n


class _Parts:
    """Parquet parts of one schema each: a page goes into the open part while its schema
    is the part's, else a new part begins. ``direct``: where the first part is written
    (the output itself, when the pages never change schema)."""

    def __init__(self, folder: Path, direct: Path | None) -> None:
        self.folder, self.direct = folder, direct
        self.paths: list[Path] = []
        self.schemas: list[Any] = []
        self.writer: Any = None

    def add(self, frame: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None or not table.schema.equals(self.schemas[-1]):
            if self.writer is not None:
                self.writer.close()
            first = not self.paths and self.direct is not None
            p = (
                self.direct
                if first and self.direct is not None
                else self.folder / f"{len(self.paths)}.parquet"
            )
            self.paths.append(p)
            self.schemas.append(table.schema)
            self.writer = pq.ParquetWriter(p, table.schema)
        self.writer.write_table(table)

    def finish(self, dest: Path, fmt: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is not None:
            self.writer.close()
        if not self.paths:  # no run: what the whole read writes for no rows
            frame = rows_to_frame([])
            if fmt == "csv":
                frame.to_csv(dest, index=False)
            else:
                frame.to_parquet(dest, index=False, engine="pyarrow")
            return
        if fmt == "parquet" and len(self.paths) == 1:
            return  # written in place (direct)
        if self.paths[0] == dest:  # the first part was written in place: move it aside
            moved = self.folder / "direct.parquet"
            os.replace(dest, moved)
            self.paths[0] = moved
        schema = _joined_schema(self.schemas)
        writer = pq.ParquetWriter(dest, schema) if fmt == "parquet" else None
        header = True
        try:
            with contextlib.ExitStack() as stack:
                fh = (
                    None
                    if writer is not None
                    else stack.enter_context(open(dest, "w", encoding="utf-8", newline=""))
                )
                for p in self.paths:
                    for batch in pq.ParquetFile(p).iter_batches():
                        table = _conform(pa.Table.from_batches([batch]), schema)
                        if writer is not None:
                            writer.write_table(table)
                        else:
                            table.to_pandas().to_csv(fh, index=False, header=header)
                            header = False
        finally:
            if writer is not None:
                writer.close()
        for p in self.paths:
            p.unlink(missing_ok=True)


def _joined_schema(schemas: Sequence[Any]) -> Any:
    """One schema for parts of several: every column in the order first seen, typed as
    :func:`rows_to_frame` types a column of all rows."""
    import pyarrow as pa

    kinds: dict[str, list[Any]] = {}
    for sc in schemas:
        for f in sc:
            kinds.setdefault(f.name, []).append(f.type)
    fields = []
    for name, types in kinds.items():
        ts = {t for t in types if not pa.types.is_null(t)}
        if not ts:
            t = pa.null()
        elif len(ts) == 1:
            (t,) = ts
            if pa.types.is_integer(t) and (len(types) < len(schemas) or len(types) > 1):
                t = pa.float64()  # missing in some rows: a float column, as in pandas
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in ts):
            t = pa.float64()
        else:
            t = pa.string()
        fields.append(pa.field(name, t))
    return pa.schema(fields)


def _conform(table: Any, schema: Any) -> Any:
    """``table`` under ``schema``: absent columns null, numbers widened to floats, a column
    of other kinds that the joined schema makes text as JSON text (as rows_to_frame)."""
    import pyarrow as pa

    cols = []
    for f in schema:
        if f.name not in table.column_names:
            cols.append(pa.nulls(len(table), f.type))
            continue
        col = table.column(f.name)
        if col.type == f.type:
            cols.append(col)
        elif pa.types.is_string(f.type) and not (
            pa.types.is_string(col.type) or pa.types.is_null(col.type)
        ):
            cols.append(
                pa.array(
                    [
                        None
                        if v is None
                        else v
                        if isinstance(v, str)
                        else json.dumps(v, default=str)
                        for v in col.to_pylist()
                    ],
                    pa.string(),
                )
            )
        else:
            cols.append(col.cast(f.type))
    return pa.Table.from_arrays(cols, schema=schema)
