"""``labledger watch RUN``: follow a run (local or on a server) until it ends."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from ._output import emit_json, open_ledger, store_option

__all__ = ["snapshot", "watch"]


def snapshot(
    ledger: Any, ref: str, points: int = 40
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """The run record and the recent values of each metric (for sparklines)."""
    run = ledger.get(ref)
    series: dict[str, list[float]] = {}
    for key in list(run.get("metrics") or {})[:12]:
        h = ledger.history(run["id"], key, max_points=points * 4)
        series[key] = [float(v) for v in h.values[-points:]]
    return run, series


def _renderable(run: dict[str, Any], series: dict[str, list[float]], rate: float | None) -> Any:
    from ..tracking.console import render_panel

    metrics = run.get("metrics") or {}
    latest = {k: (int(m.get("last_step") or 0), m.get("last")) for k, m in metrics.items()}
    return render_panel(
        run_id=run["id"],
        project=run["project"],
        name=run["name"],
        status=run["status"],
        config=run.get("config") or {},
        env=run.get("env") or {},
        seed=run.get("seed"),
        series=series,
        latest=latest,
        steps_per_s=rate,
        artifacts=len(run.get("artifacts") or []),
        elapsed_s=float(run.get("runtime_s") or 0.0),
    )


def _max_step(run: dict[str, Any]) -> int:
    return max(
        (int(m.get("last_step") or 0) for m in (run.get("metrics") or {}).values()), default=0
    )


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between polls.",
)
@click.option(
    "--timeout",
    default=None,
    type=click.FloatRange(min=0),
    help="Stop following after this many seconds.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per poll (id, status, step, latest metrics).",
)
@store_option
def watch(
    run_ref: str, interval: float, timeout: float | None, as_json: bool, store: str | None
) -> None:
    """Follow RUN live (metrics with sparklines, steps/s, what was captured) until it ends."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with open_ledger(store) as ledger:
        run, series = snapshot(ledger, run_ref)
        prev = (time.monotonic(), _max_step(run))
        rate: float | None = None
        live = None
        if not as_json and sys.stdout.isatty():
            from rich.live import Live

            live = Live(_renderable(run, series, rate), auto_refresh=False)
            live.start()
        try:
            while True:
                if as_json:
                    emit_json(
                        {
                            "id": run["id"],
                            "status": run["status"],
                            "step": _max_step(run),
                            "metrics": {
                                k: m.get("last") for k, m in (run.get("metrics") or {}).items()
                            },
                            "steps_per_s": rate,
                        }
                    )
                elif live is not None:
                    live.update(_renderable(run, series, rate), refresh=True)
                if run["status"] != "running" or (
                    deadline is not None and time.monotonic() >= deadline
                ):
                    break
                time.sleep(interval)
                run, series = snapshot(ledger, run["id"])
                now, step = time.monotonic(), _max_step(run)
                if now > prev[0]:
                    rate = (step - prev[1]) / (now - prev[0])
                prev = (now, step)
        finally:
            if live is not None:
                live.stop()
        if not as_json and live is None:
            from rich.console import Console

            Console(soft_wrap=False).print(_renderable(run, series, rate))
