"""Shared output helpers for CLI commands: JSON emission, rich console, formatting."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from typing import Any

import click

__all__ = [
    "console",
    "emit_json",
    "fmt_duration",
    "fmt_time",
    "fmt_value",
    "json_safe",
    "open_ledger",
    "store_option",
]


def json_safe(value: Any) -> Any:
    """Strict JSON: non-finite floats become the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def emit_json(value: Any) -> None:
    click.echo(json.dumps(json_safe(value), indent=2, allow_nan=False, default=str))


def console() -> Any:
    # rich falls back to 80 columns when output is not a terminal (CI logs, pipes);
    # wide tables then truncate, so give them room unless COLUMNS says otherwise.
    import os

    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
    return Console(soft_wrap=False, highlight=False, width=width)


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(json_safe(v), default=str)
    return str(v)


STATUS_STYLE = {
    "running": "cyan",
    "finished": "green",
    "failed": "red",
    "crashed": "magenta",
    "killed": "yellow",
}


def store_option(fn: Any) -> Any:
    return click.option(
        "--store",
        "store",
        envvar="LABLEDGER_URI",
        default=None,
        help="Store URI (default: LABLEDGER_URI, else .labledger/ at the git root).",
    )(fn)


def open_ledger(store: str | None) -> Any:
    """The Ledger of a read command: never creates a store (NoStoreError when none is there)."""
    from .._ledger import Ledger
    from ..store._locate import existing_store_uri

    return Ledger(existing_store_uri(store))


def err(message: str) -> None:
    click.echo(message, err=True)
    sys.stderr.flush()
