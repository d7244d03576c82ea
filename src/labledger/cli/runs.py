"""``labledger ls`` and ``labledger show``."""

from __future__ import annotations

from typing import Any

import click

from .._values import flatten
from ._output import (
    STATUS_STYLE,
    console,
    emit_json,
    fmt_duration,
    fmt_time,
    fmt_value,
    open_ledger,
    store_option,
)

__all__ = ["ls", "run_json", "show"]

_LS_FIELDS = (
    "id",
    "project",
    "name",
    "status",
    "created_at",
    "ended_at",
    "runtime_s",
    "config",
    "summary",
    "tags",
    "seed",
    "author",
)


def run_json(run: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of ``show --json`` (the contract's fields plus metric statistics)."""
    out = dict(run)
    out.setdefault("artifacts", [])
    out.setdefault("used_artifacts", [])
    return out


@click.command()
@click.option(
    "--project", "-p", default=None, help="Only runs of this project (default: all projects)."
)
@click.option(
    "--filter",
    "-f",
    "filter_",
    default=None,
    help="Filter expression, e.g. 'config.lr < 0.01 and status = \"finished\"'.",
)
@click.option(
    "--sort", "sort", default=None, help="Sort key, '-' for descending, e.g. -summary.val_acc."
)
@click.option(
    "--limit", "-n", default=None, type=click.IntRange(min=1), help="At most this many runs."
)
@click.option(
    "--columns", default=None, help="Comma-separated extra columns, e.g. config.lr,summary.val_acc."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of run objects.")
@store_option
def ls(
    project: str | None,
    filter_: str | None,
    sort: str | None,
    limit: int | None,
    columns: str | None,
    as_json: bool,
    store: str | None,
) -> None:
    """List runs, newest first."""
    from .._exceptions import NoStoreError

    try:
        ledger_cm = open_ledger(store)
    except NoStoreError as exc:  # nothing logged here yet: an empty listing, not an error
        if as_json:
            emit_json([])
        else:
            click.echo(str(exc))
        return
    with ledger_cm as ledger:
        runs = ledger.runs(project=project, filter=filter_, order_by=sort, limit=limit)
        from ..repro._display import STYLES, badge, repro_fields

        repro = repro_fields(ledger.store, [r["id"] for r in runs])
    if as_json:
        emit_json(
            [
                {
                    **{k: r.get(k) for k in (*_LS_FIELDS, "metrics")},
                    "repro": repro[r["id"]]["verdict"],
                }
                for r in runs
            ]
        )
        return
    from rich.table import Table

    extra = [c.strip() for c in columns.split(",")] if columns else _default_columns(runs)
    table = Table(show_lines=False, header_style="bold")
    show_repro = any(v["verdict"] for v in repro.values())
    for col in (
        "id",
        "project",
        "name",
        "author",
        "status",
        "created",
        "runtime",
        *(["repro"] if show_repro else []),
        *extra,
    ):
        if col == "author":  # an email can be long: the full one is in --json and show
            table.add_column(col, overflow="ellipsis", no_wrap=True, max_width=24)
        elif col == "repro":
            table.add_column(col, no_wrap=True)
        else:
            table.add_column(col, overflow="fold")
    matched: set[str] = set()
    for r in runs:
        flat = {f"config.{k}": v for k, v in flatten(r["config"]).items()}
        flat.update({f"summary.{k}": v for k, v in r["summary"].items()})
        matched.update(c for c in extra if c in flat)
        style = STATUS_STYLE.get(r["status"], "")
        table.add_row(
            r["id"][:8],
            r["project"],
            r["name"],
            r.get("author") or "",
            f"[{style}]{r['status']}[/]",
            fmt_time(r["created_at"]),
            fmt_duration(r["runtime_s"]),
            *([_repro_cell(repro[r["id"]], STYLES, badge)] if show_repro else []),
            *(fmt_value(flat[c]) if c in flat else "" for c in extra),
        )
    unmatched = [col for col in extra if col not in matched]
    if columns and runs and unmatched:
        from ._output import err

        err(
            f"warning: column{'s' if len(unmatched) > 1 else ''} "
            f"{', '.join(repr(col) for col in unmatched)} matched no run "
            "(columns are config.KEY or summary.KEY)"
        )
    c = console()
    if not runs:
        if project is not None or filter_ is not None:
            # the store may hold runs: saying "no runs yet" would send the user to the demo
            what = " and ".join(
                part
                for part in (
                    f"project {project!r}" if project is not None else "",
                    f"filter {filter_!r}" if filter_ is not None else "",
                )
                if part
            )
            c.print(f"no runs match {what}", markup=False, highlight=False)
            return
        c.print(
            "no runs yet: start one with labledger.init() in a training script, or try `labledger demo`"
        )
        return
    c.print(table)


def _repro_cell(info: dict[str, Any], styles: dict[str, str], badge: Any) -> str:
    if not info["verdict"]:
        return ""
    text = badge(info["verdict"])
    if info["role"] == "reproduction":
        text += f" (repro of {str(info['reproduction_of'])[:8]})"
    return f"[{styles.get(info['verdict'], '')}]{text}[/]"


def _default_columns(runs: list[dict[str, Any]], max_cols: int = 4) -> list[str]:
    """A few summary columns that most listed runs share."""
    counts: dict[str, int] = {}
    for r in runs:
        for k in r["summary"]:
            if not k.startswith("system/"):
                counts[k] = counts.get(k, 0) + 1
    keys = sorted(counts, key=lambda k: (-counts[k], k))[:max_cols]
    return [f"summary.{k}" for k in sorted(keys)]


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print the run as a JSON object.")
@click.option(
    "--history", is_flag=True, help="Also list every edit of notes, tags and summary (who, when)."
)
@store_option
def show(run_ref: str, as_json: bool, history: bool, store: str | None) -> None:
    """Show one run: config, summary, environment, datasets, artifacts. RUN is an id, prefix or name."""
    with open_ledger(store) as ledger:
        run = run_json(ledger.get(run_ref))
        from ..repro._display import repro_field

        run["repro"] = repro_field(ledger.store, run["id"])
    if as_json:
        emit_json(run)
        return
    render_run(run)
    if history:
        render_history(run)


def render_history(run: dict[str, Any]) -> None:
    """``show --history``: one line per edit event, oldest first."""
    c = console()
    edits = run.get("edits") or []
    if not edits:
        c.print("history: no edits", markup=False)
        return
    c.print("[bold]history[/] (edits after the run was recorded)")
    for e in edits:
        c.print(
            f"  {fmt_time(e['at'])}  {e.get('author') or '?'}  {e['field']}: "
            f"{fmt_value(e.get('old'))} -> {fmt_value(e.get('new'))}",
            markup=False,
            highlight=False,
        )


def render_run(run: dict[str, Any]) -> None:
    from rich.panel import Panel
    from rich.table import Table

    c = console()
    style = STATUS_STYLE.get(run["status"], "")
    head = (
        f"[bold]{run['name']}[/]  [dim]{run['id']}[/]\n"
        f"project [bold]{run['project']}[/]   status [{style}]{run['status']}[/]   "
        f"started {fmt_time(run['created_at'])}   runtime {fmt_duration(run['runtime_s'])}"
    )
    if run.get("seed") is not None:
        head += f"   seed {run['seed']}"
    if run.get("author"):
        head += f"\nauthor {run['author']}"
    if run.get("record_sha256"):
        head += f"   record sha256:{run['record_sha256'][:16]}"
        if run.get("edits"):
            head += f" ({len(run['edits'])} edit{'s' if len(run['edits']) != 1 else ''}: --history)"
    if run.get("tags"):
        head += "\ntags " + ", ".join(run["tags"])
    if run.get("notes"):
        head += f"\n{run['notes']}"
    c.print(Panel(head, expand=False))
    if run["config"]:
        t = Table(title="config", title_justify="left", header_style="bold")
        t.add_column("key")
        t.add_column("value", overflow="fold")
        for k, v in flatten(run["config"]).items():
            t.add_row(k, fmt_value(v))
        c.print(t)
    if run["summary"]:
        t = Table(title="summary", title_justify="left", header_style="bold")
        for col in ("key", "value", "min", "max", "points"):
            t.add_column(col)
        metrics = run.get("metrics") or {}
        for k, v in run["summary"].items():
            m = metrics.get(k, {})
            t.add_row(
                k,
                fmt_value(v),
                fmt_value(m.get("min", "")),
                fmt_value(m.get("max", "")),
                str(m.get("count", "")),
            )
        c.print(t)
    env = run.get("env") or {}
    if env:
        from ..capture.render import render_env_lines

        c.print("[bold]environment[/]")
        for line in render_env_lines(env):
            c.print("  " + line, markup=False)
    if run.get("datasets"):
        t = Table(title="datasets", title_justify="left", header_style="bold")
        for col in ("name", "sha256", "size", "path"):
            t.add_column(col, overflow="fold")
        for d in run["datasets"]:
            t.add_row(
                d.get("name", ""),
                str(d.get("sha256", ""))[:16],
                str(d.get("size", "")),
                d.get("path", ""),
            )
        c.print(t)
    if run.get("artifacts"):
        t = Table(title="artifacts", title_justify="left", header_style="bold")
        for col in ("name", "kind", "version", "sha256", "size"):
            t.add_column(col, overflow="fold")
        for a in run["artifacts"]:
            t.add_row(
                a.get("name", ""),
                a.get("kind") or "",
                str(a.get("version", "")),
                str(a.get("sha256", ""))[:16],
                str(a.get("size", "")),
            )
        c.print(t)
    if run.get("used_artifacts"):
        t = Table(title="used artifacts (inputs)", title_justify="left", header_style="bold")
        for col in ("reference", "kind", "sha256", "size", "produced by"):
            t.add_column(col, overflow="fold")
        for a in run["used_artifacts"]:
            t.add_row(
                a.get("uri", ""),
                a.get("kind") or "",
                str(a.get("sha256", ""))[:16],
                str(a.get("size", "")),
                str(a.get("run_id") or "")[:8],
            )
        c.print(t)
    if (run.get("repro") or {}).get("verdicts"):
        from ..repro._display import render_repro_lines

        c.print("[bold]reproductions[/]")
        for line in render_repro_lines(run["id"], run["repro"]):
            c.print("  " + line, markup=False)
    if run.get("error") and run["status"] in ("failed", "crashed", "killed"):
        c.print(f"[bold red]error[/]\n{run['error'][-2000:]}", markup=True, highlight=False)
