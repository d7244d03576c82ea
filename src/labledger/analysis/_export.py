"""Export runs to CSV, Parquet or JSON: one row per run, config and summary flattened."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import UsageError
from .._values import decode_json, json_safe

__all__ = ["FORMATS", "export_rows", "rows_to_frame", "sql_export_rows"]

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
    """Export rows read straight from a SQL store: only the columns an export needs (no env,
    no datasets) and every metric's last value in one query. None when ``store`` is not SQL.

    ``on_progress(done, total)`` is called as runs are turned into rows (a progress bar).
    """
    import time

    import sqlalchemy as sa

    from ..store import _schema as s

    engine = getattr(store, "engine", None)
    dialect = getattr(store, "dialect", None)
    runs_query = getattr(store, "_runs_query", None)
    if engine is None or dialect not in ("sqlite", "postgresql") or runs_query is None:
        return None
    r = s.runs
    cols = [
        r.c.id,
        r.c.project,
        r.c.name,
        r.c.status,
        r.c.created_at,
        r.c.ended_at,
        r.c.heartbeat_at,
        r.c.seed,
        r.c.tags,
        r.c.config,
        r.c.summary,
        r.c.author,
    ]
    # the store's own query (project, filter, order), narrowed to the columns an export needs
    q = runs_query(project=project, filter=filter, order_by=order_by).with_only_columns(*cols)
    if limit is not None:
        q = q.limit(limit)
    ms = s.metric_summary
    mq = sa.select(ms.c.run_id, ms.c.key, ms.c.last, ms.c.last_nan)
    if filter or project is not None or limit is not None:
        mq = mq.where(ms.c.run_id.in_(sa.select(q.subquery().c.id)))
    now = time.time()
    # rich results: per run and key, a reference to the value logged last (its sha256;
    # `labledger media get RUN KEY` fetches every step)
    md = s.media
    last_step = (
        sa.select(md.c.run_id, md.c.key, sa.func.max(md.c.step).label("step"))
        .group_by(md.c.run_id, md.c.key)
        .subquery()
    )
    mdq = (
        sa.select(md.c.run_id, md.c.key, md.c.seq, md.c.sha256)
        .join(
            last_step,
            sa.and_(
                md.c.run_id == last_step.c.run_id,
                md.c.key == last_step.c.key,
                md.c.step == last_step.c.step,
            ),
        )
        .order_by(md.c.run_id, md.c.key, md.c.seq)
    )
    if filter or project is not None or limit is not None:
        mdq = mdq.where(md.c.run_id.in_(sa.select(q.subquery().c.id)))
    with engine.connect() as conn:
        runs = conn.execute(q).all()
        metrics: dict[str, dict[str, Any]] = {}
        for run_id, key, last, last_nan in conn.execute(mq):
            metrics.setdefault(run_id, {})[key] = math.nan if last_nan else last
        media: dict[str, dict[str, str]] = {}
        for run_id, key, _seq, sha in conn.execute(mdq):
            media.setdefault(run_id, {})[key] = f"sha256:{sha}"
    rows = []
    sealed_runs: list[dict[str, Any]] = []
    total = len(runs)
    if on_progress is not None:
        on_progress(0, total)
    for (
        rid,
        proj,
        name,
        status,
        created,
        ended,
        heartbeat,
        seed,
        tags,
        config,
        summary,
        author,
    ) in runs:
        end = ended if ended is not None else (now if status == "running" else heartbeat)
        row: dict[str, Any] = {
            "id": rid,
            "project": proj,
            "name": name,
            "author": author,
            "status": status,
            "created_at": created,
            "ended_at": ended,
            "runtime_s": None if end is None else max(0.0, end - created),
            "seed": seed,
            "tags": ",".join(s.load_json(tags) or []),
        }
        _flat_into(row, "config.", s.load_json(config) or {})
        summ = dict(sorted((metrics.get(rid) or {}).items()))
        summ.update(decode_json(s.load_json(summary) or {}))
        row.update({f"summary.{k}": v for k, v in summ.items()})
        row.update({f"media.{k}": v for k, v in sorted((media.get(rid) or {}).items())})
        rows.append(row)
        sealed_runs.append({"id": rid, "status": status, "summary": summ})
        if on_progress is not None and len(rows) % PROGRESS_EVERY == 0:
            on_progress(len(rows), total)
    amendments = getattr(store, "_amendments", None)
    if amendments is not None and sealed_runs:  # amended values beside the sealed ones
        with engine.connect() as conn:
            amendments(conn, sealed_runs)
        for row, sealed in zip(rows, sealed_runs, strict=True):
            for k, a in sealed["amended"].items():
                row[f"amended.{k}"] = a.get("value")
    if on_progress is not None:
        on_progress(total, total)
    return rows
