"""Export runs to CSV, Parquet or JSON: one row per run, config and summary flattened."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import UsageError

__all__ = ["FORMATS", "export_rows", "rows_to_frame"]

FORMATS = ("csv", "parquet", "json")


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return v


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
                [{k: _json_safe(v) for k, v in r.items()} for r in rows],
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
