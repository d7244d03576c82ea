"""Export runs to CSV, Parquet or JSON: one row per run, config and summary flattened."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
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
    "sql_export_rows",
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
    run: Mapping[str, Any], verdicts: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The provenance cells of one run (:data:`PROVENANCE_COLUMNS`): git commit, dirty,
    patch digest, dataset digests, replicate set id and the latest reproduction verdict
    (``verdicts``: run id -> verdict, from :func:`latest_verdicts`)."""
    from ._replicates import replicate_key

    env = run.get("env") or {}
    git = env.get("git") if isinstance(env, Mapping) else None
    git = git if isinstance(git, Mapping) else {}
    return {
        "commit": git.get("commit"),
        "dirty": git.get("dirty"),
        "patch_sha256": git.get("diff_sha256"),
        "datasets": _datasets_text(run.get("datasets")),
        "replicate_set": replicate_key(run),
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

    now = time.time() if now is None else now
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
        row.update(provenance_columns(ident, verdicts))
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
