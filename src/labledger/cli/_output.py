"""Shared output helpers for CLI commands: JSON emission, rich console, formatting."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import sys
from collections.abc import Iterator
from typing import Any, Literal

import click

from .._settings import setting
from .._values import fmt_duration, json_safe

__all__ = [
    "ProgressBar",
    "console",
    "emit_json",
    "fit_table",
    "fmt_duration",
    "fmt_time",
    "fmt_value",
    "json_safe",
    "open_ledger",
    "progress",
    "progress_enabled",
    "store_option",
]


def emit_json(value: Any) -> None:
    click.echo(json.dumps(json_safe(value), indent=2, allow_nan=False, default=str))


def console() -> Any:
    # rich falls back to 80 columns when output is not a terminal (CI logs, pipes);
    # wide tables then truncate, so give them room unless COLUMNS says otherwise.
    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
    return Console(soft_wrap=False, highlight=False, width=width)


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


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
    "pruned": "blue",
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
    from ..store import existing_store_uri

    return Ledger(existing_store_uri(store))


def err(message: str) -> None:
    click.echo(message, err=True)
    sys.stderr.flush()


_OFF = ("off", "0", "false", "no")


def progress_enabled(stream: Any = None) -> bool:
    """Progress bars are drawn only on a terminal (stderr) and not with LABLEDGER_CONSOLE=off."""
    if (setting("LABLEDGER_CONSOLE") or "").lower() in _OFF:
        return False
    out = sys.stderr if stream is None else stream
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """What :func:`progress` yields: ``advance(n)``, ``update(...)`` and ``stage(...)``.

    A no-op when no bar is drawn, so commands call it unconditionally; library code gets
    its bound methods as plain callbacks and never imports rich.
    """

    def __init__(self, bar: Any = None, description: str = "", total: int | None = None) -> None:
        self._bar = bar
        self._task: Any = None
        if bar is not None:
            self._task = bar.add_task(description, total=total)

    @property
    def drawn(self) -> bool:
        return self._bar is not None

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def update(
        self,
        completed: int | None = None,
        total: int | None = None,
        description: str | None = None,
    ) -> None:
        """Absolute progress (``completed`` of ``total``); also fits ``on_progress(done, total)``."""
        if self._bar is None:
            return
        fields: dict[str, Any] = {}
        if total is not None:
            fields["total"] = total
        if completed is not None:
            fields["completed"] = completed
        if description is not None:
            fields["description"] = description
        self._bar.update(self._task, **fields)

    def stage(self, description: str, total: int | None = None) -> None:
        """Finish the current line (as complete) and start a new one."""
        if self._bar is None:
            return
        current = next(t for t in self._bar.tasks if t.id == self._task)
        if current.total is None:  # it never learnt its total: what it did was all of it
            self._bar.update(self._task, total=current.completed)
        self._task = self._bar.add_task(description, total=total)


@contextlib.contextmanager
def progress(
    description: str,
    total: int | None = None,
    unit: Literal["runs", "bytes"] = "runs",
    *,
    enabled: bool | None = None,
) -> Iterator[ProgressBar]:
    """A rich progress bar on stderr for a long command, with counts (``12/40 runs``) or
    bytes (``3.1/8.0 MB  12 MB/s``); ``total=None`` draws a pulsing bar until a total is set.

    Nothing is drawn (and stdout is never touched) unless stderr is a terminal and
    LABLEDGER_CONSOLE is not ``off``; ``enabled`` overrides that check.
    """
    if not (progress_enabled() if enabled is None else enabled):
        yield ProgressBar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    if unit == "bytes":
        columns: tuple[Any, ...] = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
    else:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TimeElapsedColumn(),
        )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        yield ProgressBar(bar, description, total)


def fit_table(
    headers: list[str],
    rows: list[list[str]],
    width: int,
    *,
    shrinkable: dict[str, int],
    droppable: list[str],
) -> tuple[Any, list[str]]:
    """A rich Table of ``rows`` that fits ``width`` without wrapping any cell.

    Numbers, ids and dates never wrap: text columns in ``shrinkable`` (name -> minimum
    width) are cut with an ellipsis first, then columns are left out in ``droppable``
    order. Returns the table and the names of the columns left out.
    """
    from rich.table import Table
    from rich.text import Text

    def plain(cell: str) -> str:
        return Text.from_markup(cell).plain

    natural = [max([len(h), *(len(plain(row[i])) for row in rows)]) for i, h in enumerate(headers)]
    keep = list(range(len(headers)))
    widths = list(natural)

    def total() -> int:
        return sum(widths[i] + 3 for i in keep) + 1  # padding and borders

    def shrink(factor: int) -> None:
        """Cut text columns towards ``factor`` x their minimum width."""
        excess = total() - width
        for i in keep:
            floor = shrinkable.get(headers[i])
            if floor is not None and excess > 0:
                cut = min(excess, max(0, widths[i] - max(floor * factor, len(headers[i]))))
                widths[i] -= cut
                excess -= cut

    for name in [*droppable, None]:
        if total() <= width:
            break
        shrink(2)  # comfortable widths first: a readable name beats one more metric
        if total() <= width:
            break
        if name is None:
            shrink(1)
        elif name in headers and headers.index(name) in keep:
            i = headers.index(name)
            keep.remove(i)
            for j in keep:  # what is left may have room again
                widths[j] = natural[j]
    dropped = [headers[i] for i in range(len(headers)) if i not in keep]
    table = Table(header_style="bold")
    for i in keep:
        cut = headers[i] in shrinkable
        table.add_column(
            headers[i],
            no_wrap=True,
            overflow="ellipsis" if cut else "crop",
            max_width=widths[i] if cut else None,
            min_width=None if cut else natural[i],
        )
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table, dropped
