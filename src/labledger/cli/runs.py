"""``labledger ls`` and ``labledger show``."""

from __future__ import annotations

from typing import Any

import click

from .._values import flatten, fmt_metric
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
    "group",
    "job_type",
    "parent_run_id",
    "author",
    "amended",
)


def escape(text: str) -> str:
    """``text`` with rich markup escaped (run names and groups are user data)."""
    from rich.markup import escape as _escape

    return _escape(text)


def run_json(run: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of ``show --json`` (the contract's fields plus metric statistics)."""
    out = dict(run)
    out.setdefault("artifacts", [])
    out.setdefault("used_artifacts", [])
    for key in ("group", "job_type", "parent_run_id"):
        out.setdefault(key, None)
    out.setdefault("children", [])
    return out


def child_runs(ledger: Any, run_id: str) -> list[dict[str, Any]]:
    """The runs whose parent is ``run_id``, oldest first, as short records."""
    runs = ledger.runs(filter=f'parent_run_id = "{run_id}"', order_by="created_at")
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "status": r["status"],
            "job_type": r.get("job_type"),
            "summary": r["summary"],
        }
        for r in runs
    ]


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
    "--sort", "sort", default=None, help="Sort key, '-' for descending, e.g. -summary.val/acc."
)
@click.option(
    "--limit", "-n", default=None, type=click.IntRange(min=1), help="At most this many runs."
)
@click.option(
    "--columns",
    default=None,
    help="Comma-separated columns: config.KEY / summary.KEY (or a bare metric name) are added "
    "to the default table, e.g. config.lr,val/acc; naming a built-in (id, project, name, "
    "status, created, ended, runtime, repro, tags, seed) gives exactly the listed columns.",
)
@click.option(
    "--tree", is_flag=True, help="Indent child runs under their parent (Optuna trials, sweeps)."
)
@click.option(
    "--amended",
    is_flag=True,
    help="Show, filter and sort by summary values as amended after the runs ended "
    "(default: the sealed values, as logged, with the amendment beside them).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of run objects.")
@store_option
def ls(
    project: str | None,
    filter_: str | None,
    sort: str | None,
    limit: int | None,
    columns: str | None,
    tree: bool,
    amended: bool,
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
        runs = ledger.runs(
            project=project, filter=filter_, order_by=sort, limit=limit, amended=amended
        )
        from ..repro import repro_fields

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
    show_repro = any(v["verdict"] for v in repro.values())
    requested = [col.strip() for col in columns.split(",") if col.strip()] if columns else []
    show_group = any(r.get("group") for r in runs)
    depth: dict[str, int] = {}
    if tree:
        runs, depth = _as_tree(runs)
    from ._layout import constant_line, primary_metric, remember_primary, split_config

    _warn_unknown_sort(runs, sort)
    store_uri = str(ledger.store.uri)
    remember_primary(store_uri, project, sort, {k for r in runs for k in r["summary"]})
    constant: dict[str, Any] = {}
    primary = primary_metric(runs, store_uri, project, sort)
    if any(col in BUILTIN_COLUMNS for col in requested):
        names = requested  # the user chose the whole table
    else:
        # metrics first: the primary metric and the config keys that tell the runs apart
        # lead; keys every run shares are said once above the table
        varying, constant = split_config(runs)
        projects = {r["project"] for r in runs}
        if len(projects) == 1 and len(runs) > 1:
            constant = {"project": next(iter(projects)), **constant}
        metric_cols = requested or _default_columns(runs, primary)
        names = [
            "id",
            "name",
            *metric_cols,
            *(f"config.{k}" for k in varying if not requested),
            "status",
            *(["project"] if len(projects) > 1 or len(runs) == 1 else []),
            *(["group"] if show_group else []),
            "author",
            "runtime",
            "created",
            *(["repro"] if show_repro else []),
        ]
    cells: list[list[str]] = []
    matched: set[str] = set()
    for r in runs:
        flat = {f"config.{k}": v for k, v in flatten(r["config"]).items()}
        flat.update({f"summary.{k}": v for k, v in r["summary"].items()})
        row = []
        for col in names:
            if col in BUILTIN_COLUMNS:
                matched.add(col)
                cell = _builtin_cell(col, r, repro[r["id"]])
                if col == "id" and depth.get(r["id"]):
                    cell = "  " * depth[r["id"]] + "└ " + cell
                row.append(cell)
                continue
            key = col if col in flat else f"summary.{col}" if f"summary.{col}" in flat else None
            key = key or (f"config.{col}" if f"config.{col}" in flat else None)
            if key is not None:
                matched.add(col)
            cell = _cell_value(key, flat[key]) if key is not None else ""
            if key is not None and key.startswith("summary."):
                cell += amended_mark(r, key[len("summary.") :], amended)
            row.append(cell)
        cells.append(row)
    unmatched = [col for col in names if col not in matched]
    if columns and runs and unmatched:
        from ._output import err

        err(
            f"warning: column{'s' if len(unmatched) > 1 else ''} "
            f"{', '.join(repr(col) for col in unmatched)} matched no run "
            f"(columns are {', '.join(BUILTIN_COLUMNS)}, config.KEY or summary.KEY)"
        )
        keep = [i for i, col in enumerate(names) if col in matched]
        names = [names[i] for i in keep]
        cells = [[row[i] for i in keep] for row in cells]
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
    from ._output import fit_table

    asked = set(requested)  # a column the user named keeps the name they gave it

    def title(n: str) -> str:
        return n if n in asked and n != f"summary.{primary}" else _header(n, primary)

    table, dropped = fit_table(
        [title(n) for n in names],
        cells,
        c.width,
        shrinkable={title(k): v for k, v in _SHRINKABLE.items()},
        droppable=[title(n) for n in _droppable(names, primary)],
    )
    if constant:
        click.echo(constant_line(constant, c.width))
    c.print(table)
    n_amended = sum(1 for r in runs if r.get("amended"))
    if n_amended:
        how = (
            "shown and sorted by amended values (--amended)"
            if amended
            else "shown and sorted by their sealed values; --amended uses the amended ones"
        )
        click.echo(
            f"{n_amended} run{'s' if n_amended != 1 else ''} with summary values amended after "
            f"{'they' if n_amended != 1 else 'it'} ended: {how} (show RUN --history)"
        )
    if dropped:
        import textwrap

        note = (
            f"{len(dropped)} column(s) left out to fit {c.width} columns: "
            f"{', '.join(dropped)} (widen the terminal, choose --columns, or use --json)"
        )
        click.echo(textwrap.fill(note, c.width, break_long_words=False))


BUILTIN_COLUMNS = (
    "id",
    "project",
    "name",
    "author",
    "status",
    "group",
    "created",
    "ended",
    "runtime",
    "repro",
    "tags",
    "seed",
)
_DEFAULT_BUILTINS = ("id", "project", "name", "author", "status", "created", "runtime")
_SHRINKABLE = {"name": 8, "project": 8, "author": 8, "tags": 6, "repro": 12}


def amended_mark(run: dict[str, Any], key: str, amended_view: bool = False) -> str:
    """The marker after a summary cell whose value was amended after the run ended:
    `` (amended: NEW)`` beside the sealed value, or `` (amended; sealed OLD)`` when the
    amended values are shown (``--amended``). Empty for a value as logged."""
    a = (run.get("amended") or {}).get(key)
    if not a:
        return ""
    if amended_view:
        return f" (amended; sealed {fmt_value(a.get('sealed'))})"
    new = "removed" if a.get("value") is None else fmt_value(a.get("value"))
    return f" (amended: {new})"


def _cell_value(key: str, value: Any) -> str:
    if key.startswith("summary."):
        from .._values import fmt_metric

        return fmt_metric(key[len("summary.") :], value)
    return escape(fmt_value(value))


def _header(name: str, primary: str | None) -> str:
    """Column titles: ``config.lr`` -> ``lr``; the primary metric marked with ``★``."""
    if name == f"summary.{primary}":
        return f"★ {primary}"
    for prefix in ("config.", "summary."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _droppable(names: list[str], primary: str | None = None) -> list[str]:
    """What goes first when the table is too wide: dates, tags and the less telling
    built-ins, then config and other metric columns from the right. id, name, status and
    the primary metric always stay."""
    extra = [n for n in names if n not in BUILTIN_COLUMNS and n != f"summary.{primary}"]
    configs = [n for n in extra if n.startswith("config.")]
    metrics = [n for n in extra if not n.startswith("config.")]
    return [
        "tags",
        "ended",
        "seed",
        "created",
        "project",
        "group",
        "author",
        *reversed(metrics),
        *reversed(configs),
        "runtime",
        "repro",
    ]


def _builtin_cell(col: str, r: dict[str, Any], repro: dict[str, Any]) -> str:
    from ..repro import STYLES, badge

    if col == "id":
        return str(r["id"][:8])
    if col == "status":
        return f"[{STATUS_STYLE.get(r['status'], '')}]{r['status']}[/]"
    if col == "created":
        return fmt_time(r["created_at"])
    if col == "ended":
        return fmt_time(r.get("ended_at"))
    if col == "runtime":
        return fmt_duration(r["runtime_s"])
    if col == "repro":
        return _repro_cell(repro, STYLES, badge)
    if col == "tags":
        return ", ".join(r.get("tags") or [])
    if col == "seed":
        return "" if r.get("seed") is None else str(r["seed"])
    if col == "author":
        from ._layout import short_author

        return escape(short_author(r.get("author")))
    return escape(str(r.get(col) or ""))


def _as_tree(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``runs`` reordered so each child follows its parent (when listed), with its depth."""
    ids = {r["id"] for r in runs}
    children: dict[str, list[dict[str, Any]]] = {}
    roots = []
    for r in runs:
        parent = r.get("parent_run_id")
        if isinstance(parent, str) and parent in ids and parent != r["id"]:
            children.setdefault(parent, []).append(r)
        else:
            roots.append(r)
    out: list[dict[str, Any]] = []
    depth: dict[str, int] = {}

    def visit(r: dict[str, Any], d: int) -> None:
        if r["id"] in depth:  # a cycle of parents: list each run once
            return
        depth[r["id"]] = d
        out.append(r)
        for c in children.get(r["id"], []):
            visit(c, d + 1)

    for r in roots:
        visit(r, 0)
    for r in runs:  # runs only reachable through a cycle
        if r["id"] not in depth:
            visit(r, 0)
    return out, depth


def _repro_cell(info: dict[str, Any], styles: dict[str, str], badge: Any) -> str:
    if not info["verdict"]:
        return ""
    text = badge(info["verdict"])
    if info["role"] == "reproduction":
        text = f"{text[:1]} repro of {str(info['reproduction_of'])[:8]}"
    return f"[{styles.get(info['verdict'], '')}]{text}[/]"


def _default_columns(
    runs: list[dict[str, Any]], primary: str | None = None, max_cols: int = 4
) -> list[str]:
    """The primary metric, then a few other summary columns that most listed runs share."""
    counts: dict[str, int] = {}
    for r in runs:
        for k in r["summary"]:
            if not k.startswith("system/") and k != primary:
                counts[k] = counts.get(k, 0) + 1
    keys = sorted(counts, key=lambda k: (-counts[k], k))[: max_cols - (primary is not None)]
    return [f"summary.{k}" for k in ([primary] if primary else []) + sorted(keys)]


def _warn_unknown_sort(runs: list[dict[str, Any]], sort: str | None) -> None:
    """``--sort`` on a key no listed run has sorts by nothing: say so, with the closest keys."""
    if not sort or not runs:
        return
    from ._layout import close_keys
    from ._output import err

    for part in sort.split(","):
        key = part.strip().lstrip("-+")
        for prefix, field in (("summary.", "summary"), ("config.", "config")):
            if not key.startswith(prefix):
                continue
            known = {
                k for r in runs for k in (flatten(r[field]) if field == "config" else r[field])
            }
            name = key[len(prefix) :]
            if name not in known:
                close = close_keys(name, known)
                hint = f"; did you mean {' or '.join(prefix + k for k in close)}?" if close else ""
                err(f"warning: no listed run has {key!r}: the sort did nothing{hint}")


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
        run["children"] = child_runs(ledger, run["id"])
        from ..repro import repro_field

        run["repro"] = repro_field(ledger.store, run["id"])
        run["media"] = ledger.media_keys(run["id"])
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
        what = " (amendment)" if e.get("amendment") else ""
        why = f"  reason: {e['reason']}" if e.get("reason") else ""
        c.print(
            f"  {fmt_time(e['at'])}  {e.get('author') or '?'}  {e['field']}{what}: "
            f"{_edit_value(e.get('old'))} -> {_edit_value(e.get('new'))}{why}",
            markup=False,
            highlight=False,
        )


def _edit_value(v: Any) -> str:
    """An edit's old or new value; a field that had none reads ``(unset)``, not ``None``."""
    return "(unset)" if v is None else fmt_value(v)


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
    hierarchy = [
        f"{label} {escape(str(run[key]))}"
        for label, key in (
            ("group", "group"),
            ("job type", "job_type"),
            ("parent", "parent_run_id"),
        )
        if run.get(key)
    ]
    if hierarchy:
        head += "\n" + "   ".join(hierarchy)
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
    metrics = run.get("metrics") or {}
    summary = run["summary"] or {}
    amended = run.get("amended") or {}
    # the user's own metrics first; the machine's system/* in their own group after them
    for title, keys in (
        ("summary", [k for k in summary if not k.startswith("system/")]),
        ("system metrics", sorted(k for k in summary if k.startswith("system/"))),
    ):
        if not keys:
            continue
        t = Table(title=title, title_justify="left", header_style="bold")
        cols: tuple[str, ...] = ("key", "value", "min", "max", "points")
        if amended and title == "summary":  # the amendment beside the sealed value
            cols = ("key", "value", "amended", "min", "max", "points")
        for col in cols:
            t.add_column(col, no_wrap=col not in ("key", "amended"), overflow="fold")
        for k in keys:
            m = metrics.get(k, {})
            extra: tuple[str, ...] = ()
            if len(cols) == 6:
                extra = (_amendment_text(amended.get(k)),)
            t.add_row(
                k,
                *(
                    fmt_metric(k, v) if isinstance(v, (int, float)) else fmt_value(v)
                    for v in (summary[k],)
                ),
                *extra,
                *(
                    fmt_metric(k, v) if isinstance(v, (int, float)) else fmt_value(v)
                    for v in (m.get("min", ""), m.get("max", ""))
                ),
                str(m.get("count", "")),
            )
        c.print(t)
        if len(cols) == 6:
            c.print(
                "[dim]value: sealed when the run ended (as logged); amended: changed after "
                "the end (labledger edit), not used for rankings unless --amended[/]"
            )
    env = run.get("env") or {}
    if env:
        from ..capture.render import render_env_lines

        c.print("[bold]environment[/]")
        for line in render_env_lines(env):
            c.print("  " + line, markup=False)
    if run.get("datasets"):
        t = Table(title="datasets", title_justify="left", header_style="bold")
        for col in ("name", "content sha256", "size", "path"):
            t.add_column(col, overflow="fold")
        for d in run["datasets"]:
            t.add_row(
                d.get("name", ""),
                str(d.get("sha256", ""))[:16],
                _size(d.get("size")),
                d.get("path")
                or (f"{d['kind']} in memory {d.get('shape', '')}" if d.get("kind") else ""),
            )
        c.print(t)
    if run.get("media"):
        t = Table(title="rich results", title_justify="left", header_style="bold")
        for col in ("key", "kind", "count", "steps"):
            t.add_column(col, overflow="fold")
        for m in run["media"]:
            t.add_row(m["key"], m["kind"], str(m["count"]), str(m["steps"]))
        c.print(t)
        c.print("[dim]labledger media ls|get RUN KEY: the values and their files[/]")
    if run.get("artifacts"):
        t = Table(title="artifacts", title_justify="left", header_style="bold")
        for col in ("name", "kind", "version", "version digest", "size"):
            t.add_column(col, overflow="fold")
        for a in run["artifacts"]:
            t.add_row(
                a.get("name", ""),
                a.get("kind") or "",
                str(a.get("version", "")),
                str(a.get("sha256", ""))[:16],
                _size(a.get("size")),
            )
        c.print(t)
    if run.get("used_artifacts"):
        t = Table(title="used artifacts (inputs)", title_justify="left", header_style="bold")
        for col in ("reference", "kind", "version digest", "size", "produced by"):
            t.add_column(col, overflow="fold")
        for a in run["used_artifacts"]:
            t.add_row(
                a.get("uri", ""),
                a.get("kind") or "",
                str(a.get("sha256", ""))[:16],
                _size(a.get("size")),
                str(a.get("run_id") or "")[:8],
            )
        c.print(t)
    if run.get("children"):
        t = Table(title="children", title_justify="left", header_style="bold")
        keys = sorted(
            {k for ch in run["children"] for k in ch["summary"] if not k.startswith("system/")}
        )[:3]
        for col in ("id", "name", "status", "job type", *keys):
            t.add_column(col, overflow="fold")
        for ch in run["children"]:
            t.add_row(
                ch["id"][:8],
                escape(ch["name"]),
                f"[{STATUS_STYLE.get(ch['status'], '')}]{ch['status']}[/]",
                escape(ch.get("job_type") or ""),
                *(fmt_value(ch["summary"].get(k, "")) for k in keys),
            )
        c.print(t)
    if (run.get("repro") or {}).get("verdicts"):
        from ..repro import render_repro_lines

        c.print("[bold]reproductions[/]")
        for line in render_repro_lines(run["id"], run["repro"]):
            c.print("  " + line, markup=False)
    if run.get("error") and run["status"] in ("failed", "crashed", "killed"):
        c.print(f"[bold red]error[/]\n{run['error'][-2000:]}", markup=True, highlight=False)


def _amendment_text(a: dict[str, Any] | None) -> str:
    if not a:
        return ""
    new = "removed" if a.get("value") is None else fmt_value(a.get("value"))
    text = f"AMENDED {new} by {a.get('by') or '?'} {fmt_time(a.get('at'))}"
    if a.get("reason"):
        text += f" ({a['reason']})"
    return text


def _size(n: Any) -> str:
    from .._values import fmt_size

    return fmt_size(n) if isinstance(n, int) and not isinstance(n, bool) else ""
