"""``labledger best``, ``diff``, ``compare``, ``importance`` and ``export``."""

from __future__ import annotations

import sys
from typing import Any

import click

from ._output import (
    console,
    emit_json,
    fmt_duration,
    fmt_value,
    open_ledger,
    progress,
    store_option,
)

__all__ = ["best", "compare", "diff", "export", "importance"]


def _short(value: Any, width: int = 40) -> str:
    text = fmt_value(value) if value is not None else "-"
    return text if len(text) <= width else text[: width - 1] + "…"


PAGE = 2000  # runs per read of `importance` while its progress bar counts them


@click.command()
@click.option("--metric", "-m", required=True, help="Summary metric to rank by, e.g. val/acc.")
@click.option("--max", "mode", flag_value="max", default=True, help="Higher is better (default).")
@click.option("--min", "mode", flag_value="min", help="Lower is better.")
@click.option("--filter", "-f", "filter_", default=None, help="Only runs matching this filter.")
@click.option(
    "--top", "-n", default=10, show_default=True, type=click.IntRange(min=1), help="How many runs."
)
@click.option("--project", "-p", default=None, help="Only runs of this project.")
@click.option(
    "--amended",
    is_flag=True,
    help="Rank by values amended after the runs ended (default: the sealed values, as logged).",
)
@click.option(
    "--include-pruned",
    is_flag=True,
    help="Rank pruned runs too (an Optuna trial stopped early); a --filter on status also does.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard as JSON.")
@click.option(
    "--include-repro",
    is_flag=True,
    help='Also rank reproductions (job_type "repro", made by labledger repro).',
)
@click.option(
    "--by",
    type=click.Choice(["run", "config"]),
    default="run",
    show_default=True,
    help="config: one row per configuration (runs differing only in their seed), "
    "mean ± std over seeds, 95% interval, and which rows are tied with the top.",
)
@store_option
def best(
    metric: str,
    mode: str,
    filter_: str | None,
    top: int,
    project: str | None,
    amended: bool,
    include_pruned: bool,
    as_json: bool,
    include_repro: bool,
    by: str,
    store: str | None,
) -> None:
    """Leaderboard: the best runs by METRIC, with the exact config, commit, patch, seed, data and runtime.

    Ranked by the sealed values (what each run logged); an amendment made after a run
    ended is shown beside its value, and ranks only with --amended. Reproductions (made
    by labledger repro) do not rank unless --include-repro. --by config ranks
    configurations by their mean over seeds and says which cannot be told from the top
    (Welch's t-test, docs/query.md "Is it better, or is it noise?")."""
    if by == "config":
        _best_by_config(metric, mode, filter_, top, project, amended, as_json, include_repro, store)
        return
    with open_ledger(store) as ledger:
        rows = ledger.best(
            metric,
            mode=mode,
            filter=filter_,
            top=top,
            project=project,
            amended=amended,
            include_repro=include_repro,
            include_pruned=include_pruned,
        )
        if not rows:
            _check_metric_exists(ledger, metric, project)
    if as_json:
        emit_json(rows)
        return
    c = console()
    if not rows:
        c.print(f"no runs with a numeric {metric!r}", markup=False)
        return
    from ._layout import constant_line, short_author, split_config
    from ._output import fit_table

    varying, constant = split_config(rows)
    digests = {_data_cell(r) for r in rows}
    if len(rows) > 1 and len(digests) == 1:
        constant = {**constant, "data": digests.pop()}
    else:
        digests.clear()
    headers = [
        "#",
        "id",
        "name",
        f"★ {metric}",
        *varying,
        "commit",
        "patch",
        "seed",
        *([] if constant.get("data") else ["data"]),
        "runtime",
        "author",
    ]
    from .._values import flatten

    cells = []
    for r in rows:
        flat = flatten(r["config"])
        commit = (r["git_commit"] or "")[:8]
        commit = (
            f"{commit}+dirty"
            if commit and r["git_dirty"]
            else commit or ("dirty" if r["git_dirty"] else "-")
        )
        patch = (r["patch_sha256"] or "")[:8] if r["patch_captured"] else "-"
        cells.append(
            [
                str(r["rank"]),
                r["id"][:8],
                _escape(r["name"]),
                fmt_value(r["value"]) + _amended_cell(r.get("amended"), amended),
                *(_escape(fmt_value(flat[k])) if k in flat else "" for k in varying),
                commit,
                patch,
                "-" if r["seed"] is None else str(r["seed"]),
                *([] if constant.get("data") else [_data_cell(r)]),
                fmt_duration(r["runtime_s"]),
                _escape(short_author(r.get("author"))),
            ]
        )
    table, dropped = fit_table(
        headers,
        cells,
        c.width,
        shrinkable={"name": 8, "author": 6, "data": 12, **dict.fromkeys(varying, 6)},
        droppable=["author", "runtime", "data", "patch", *reversed(varying)],
    )
    click.echo(f"best by {metric} ({'max' if mode == 'max' else 'min'}), {len(rows)} runs")
    if constant:
        click.echo(constant_line(constant, c.width))
    c.print(table)
    if dropped:
        import textwrap

        note = (
            f"{len(dropped)} column(s) left out to fit {c.width} columns: "
            f"{', '.join(dropped)} (widen the terminal or use --json)"
        )
        click.echo(textwrap.fill(note, c.width, break_long_words=False))
    if any(r.get("amended") for r in rows):
        click.echo(
            f"amended: {metric} was changed after the run ended (labledger edit); "
            + (
                "ranked by the amended values (--amended)"
                if amended
                else "ranked by the sealed value, as logged (--amended ranks by the amendment)"
            )
        )


def _best_by_config(
    metric: str,
    mode: str,
    filter_: str | None,
    top: int,
    project: str | None,
    amended: bool,
    as_json: bool,
    include_repro: bool,
    store: str | None,
) -> None:
    with open_ledger(store) as ledger:
        rows = ledger.leaderboard(
            metric,
            by="config",
            mode=mode,
            filter=filter_,
            top=top,
            project=project,
            amended=amended,
            include_repro=include_repro,
        )
        if not rows:
            _check_metric_exists(ledger, metric, project)
    if as_json:
        emit_json(rows)
        return
    c = console()
    if not rows:
        c.print(f"no runs with a numeric {metric!r}", markup=False)
        return
    from rich.table import Table

    t = Table(
        title=f"best configurations by {metric} ({mode}; mean ± std over seeds, 95% interval)",
        title_justify="left",
        header_style="bold",
    )
    for col in ("#", metric, "n", "95% interval", "vs top", "config", "commit", "runs"):
        if col == "config":
            t.add_column(col, overflow="fold")
        else:
            t.add_column(col, no_wrap=True, overflow="ellipsis")
    for r in rows:
        cfg = "\n".join(f"{k}={fmt_value(v)}" for k, v in r["config"].items()) or "-"
        commit = (r["commit"] or "-")[:10] + (" +patch" if r["patch_sha256"] else "")
        if r["n"] < 2:
            value, interval = fmt_value(r["mean"]), r["note"]
        else:
            value = f"{fmt_value(r['mean'])} ± {fmt_value(r['std'])}"
            interval = f"[{fmt_value(r['ci_low'])}, {fmt_value(r['ci_high'])}]"
        tied = r["tied_with_best"]
        verdict = (
            "top"
            if r["rank"] == 1
            else "noise unknown"
            if tied is None
            else f"tied (p={r['p_value']:.2g})"
            if tied
            else f"worse (p={r['p_value']:.2g})"
        )
        ids = ", ".join(i[:8] for i in r["runs"][:4]) + (" …" if len(r["runs"]) > 4 else "")
        t.add_row(str(r["rank"]), value, str(r["n"]), interval, verdict, cfg, commit, ids)
    c.print(t)


def _amended_cell(a: Any, amended_view: bool) -> str:
    """The marker beside a leaderboard value that was amended after the run ended."""
    if not a:
        return ""
    if amended_view:
        return f" (amended; sealed {fmt_value(a.get('sealed'))})"
    new = "removed" if a.get("value") is None else fmt_value(a.get("value"))
    return f" (amended: {new})"


def _data_cell(r: dict[str, Any]) -> str:
    return ", ".join(f"{d['name']}:{(d['sha256'] or '')[:8]}" for d in r["datasets"]) or "-"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _check_metric_exists(ledger: Any, metric: str, project: str | None) -> None:
    """A metric no run has is a typo, not an empty leaderboard: exit 1 with the closest names."""
    keys: set[str] = set()
    for r in ledger.runs(project=project, limit=2000):
        keys.update(r["summary"])
    if metric in keys:
        return
    from .._exceptions import UsageError
    from ._layout import did_you_mean

    where = f" of project {project!r}" if project else ""
    hint = did_you_mean(metric, keys)
    if not hint and keys:
        user = sorted(k for k in keys if not k.startswith("system/"))[:8]
        hint = f" (metrics: {', '.join(user)})" if user else ""
    raise UsageError(f"no run{where} has a summary metric {metric!r}{hint}")


@click.command()
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@click.option("--all", "show_all", is_flag=True, help="Show every key, not only differences.")
@click.option(
    "--system", "show_system", is_flag=True, help="Unfold the system/* metrics (CPU, memory, ...)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@store_option
def diff(
    run_a: str, run_b: str, show_all: bool, show_system: bool, as_json: bool, store: str | None
) -> None:
    """What differs between two runs: config, summary, environment, seed, datasets."""
    with open_ledger(store) as ledger:
        d = ledger.diff(run_a, run_b, show_all=show_all)
    if as_json:
        emit_json(d)
        return
    from rich.table import Table

    from .._values import fmt_metric, is_system_key

    c = console()
    c.print(f"[bold]A[/] {d['a']}   [bold]B[/] {d['b']}")
    any_shown = False
    system = [e for e in d["summary"] if is_system_key(e["key"])]
    sections = {
        **{k: d[k] for k in ("run", "config")},
        "summary": [e for e in d["summary"] if not is_system_key(e["key"])],
        "amended": d.get("amended") or [],
        **{k: d[k] for k in ("seed", "datasets")},
        **({"system metrics": system} if show_system else {}),
    }
    for section, entries in sections.items():
        if not entries:
            continue
        any_shown = True
        t = Table(title=section, title_justify="left", header_style="bold")
        for col in ("key", "A", "B"):
            t.add_column(col, overflow="fold")
        metric = section in ("summary", "system metrics")
        for e in entries:
            style = "" if e["same"] or section == "system metrics" else "yellow"

            def cell(v: Any, key: str = str(e["key"]), metric: bool = metric) -> str:
                if metric and isinstance(v, (int, float)) and not isinstance(v, bool):
                    return fmt_metric(key, v)
                return _short(v, 60)

            a = "(absent)" if e["only"] == "b" else cell(e["a"])
            b = "(absent)" if e["only"] == "a" else cell(e["b"])
            t.add_row(e["key"], a, b, style=style)
        c.print(t)
    if system and not show_system:
        c.print(f"[dim]system metrics: {len(system)} keys folded (--system shows them)[/]")
    env = {k: v for k, v in d["environment"].items() if k != "same" and v}
    if env:
        any_shown = True
        c.print("[bold]environment[/]")
        for section, content in env.items():
            for line in _env_lines(section, content):
                c.print("  " + line, markup=False, highlight=False)
    if not any_shown:
        c.print("no differences" + ("" if show_all else " (use --all to see everything)"))


def _env_lines(section: str, content: Any) -> list[str]:
    lines: list[str] = []
    if isinstance(content, dict) and {"added", "removed", "changed"} & set(content):

        def entries(kind: str) -> list[tuple[str, Any]]:
            # packages-style sections map names to values; the patch section lists file names
            found = content.get(kind) or {}
            if isinstance(found, dict):
                return list(found.items())
            return [(str(name), None) for name in found]

        for name, v in entries("added"):
            lines.append(f"{section}: + {name}" + ("" if v is None else f" {_short(v)}"))
        for name, v in entries("removed"):
            lines.append(f"{section}: - {name}" + ("" if v is None else f" {_short(v)}"))
        for name, v in entries("changed"):
            if isinstance(v, dict) and "a" in v:
                lines.append(f"{section}: ~ {name} {_short(v['a'])} -> {_short(v['b'])}")
            else:
                lines.append(f"{section}: ~ {name}")
    elif isinstance(content, dict):
        for name, v in content.items():
            if isinstance(v, dict) and "a" in v:
                lines.append(f"{section}.{name}: {_short(v['a'])} -> {_short(v['b'])}")
            else:
                lines.append(f"{section}.{name}: {_short(v)}")
    else:
        lines.append(f"{section}: {_short(content, 80)}")
    return lines


@click.command()
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@click.option(
    "--all", "show_all", is_flag=True, help="Also show keys that are the same in every run."
)
@click.option(
    "--system", "show_system", is_flag=True, help="Unfold the system/* metrics (CPU, memory, ...)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@store_option
def compare(
    runs: tuple[str, ...], show_all: bool, show_system: bool, as_json: bool, store: str | None
) -> None:
    """Several runs side by side as one table: provenance (commit, patch, seed, data,
    packages, author, reproduction), config and summary, differing keys first; the
    system/* metrics folded."""
    with open_ledger(store) as ledger:
        table = ledger.compare(*runs)
    if as_json:
        emit_json(table)
        return
    from rich.table import Table

    from .._values import fmt_metric

    t = Table(header_style="bold")
    t.add_column("key", overflow="fold")
    for rid, name in zip(table["runs"], table["names"], strict=True):
        t.add_column(f"{rid[:8]}\n{name}", overflow="fold")
    single = len(table["runs"]) == 1
    hidden = 0
    system = [row for row in table["rows"] if row["group"] == "system"]
    last_group = None
    for row in table["rows"]:
        if row["group"] == "system" and not show_system:
            continue
        # one run has nothing to differ from: all of it is shown, nothing as a difference
        if not (row["differs"] or show_all or single or row["key"] == "runtime_s"):
            hidden += 1
            continue
        if last_group is not None and row["group"] != last_group:
            t.add_section()
        last_group = row["group"]
        key = str(row["key"])
        metric = key[len("summary.") :] if key.startswith("summary.") else ""
        t.add_row(
            key,
            *(
                fmt_metric(metric, v) if metric and isinstance(v, (int, float)) else _short(v, 30)
                for v in row["values"]
            ),
            # a differing user value is highlighted; the machine's numbers always differ
            style="yellow" if row["differs"] and row["group"] != "system" else "",
        )
    c = console()
    c.print(t)
    if single:
        c.print("[dim]one run: nothing to compare it with (labledger compare RUN_A RUN_B ...)[/]")
    elif hidden:
        c.print(f"[dim]{hidden} keys are the same in every run (--all shows them)[/]")
    if system and not show_system:
        c.print(f"[dim]system metrics: {len(system)} keys folded (--system shows them)[/]")


@click.command()
@click.option("--metric", "-m", required=True, help="Summary metric to explain, e.g. test_acc.")
@click.option("--filter", "-f", "filter_", default=None, help="Only runs matching this filter.")
@click.option("--project", "-p", default=None, help="Only runs of this project.")
@click.option(
    "--plot",
    "plot",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also save a bar chart (PNG).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the importances as JSON.")
@click.option(
    "--include-repro",
    is_flag=True,
    help='Also count reproductions (job_type "repro", made by labledger repro).',
)
@store_option
def importance(
    metric: str,
    filter_: str | None,
    project: str | None,
    plot: str | None,
    as_json: bool,
    include_repro: bool,
    store: str | None,
) -> None:
    """Which config keys matter for METRIC: random-forest permutation importance and Spearman correlation.

    Reproductions (made by labledger repro) are left out unless --include-repro."""
    from .._exceptions import UsageError
    from ..analysis import plot_importance

    # a bar on stderr only (a terminal): loading runs a page at a time, then the
    # model-fitting stages in its description. The same path as Ledger.importance and
    # the dashboard (one read of the columns importance needs, not a record per run).
    with progress("loading runs") as bar, open_ledger(store) as ledger:
        staged: list[int] = []

        def counted(done: int, total: int) -> None:
            bar.update(completed=done, total=total)
            if done >= total and not staged:  # every run read: the next line fits them
                staged.append(done)
                bar.stage("reading configs", total=done)
                bar.update(completed=done, total=done)

        try:
            items = ledger.importance(
                metric,
                filter=filter_,
                project=project,
                include_repro=include_repro,
                progress=lambda msg: bar.update(description=msg),
                on_progress=counted,
                page=PAGE,
            )
        except UsageError:
            _check_metric_exists(ledger, metric, project)  # a typo says so first
            raise
        bar.update(description=f"importance of {len(items)} config keys")
    if plot:
        plot_importance(items, plot, metric)
    if as_json:
        emit_json(items)
        return
    from rich.table import Table

    t = Table(
        title=f"importance for {metric} ({items[0]['n'] if items else 0} runs)",
        title_justify="left",
        header_style="bold",
    )
    for col in ("key", "importance", "", "spearman", "kind", "note"):
        t.add_column(col)
    for it in items:
        bar = "█" * round(it["importance"] * 20)
        rho = "-" if it["spearman"] is None else f"{it['spearman']:+.2f}"
        notes = []
        if it["constant"]:
            notes.append("constant")
        if it["log_scale"]:
            notes.append("log scale")
        if it["missing"]:
            notes.append(f"missing in {it['missing']}")
        if it.get("source", "config") != "config":
            notes.append(str(it["source"]))
        t.add_row(it["key"], f"{it['importance']:.3f}", bar, rho, it["kind"], ", ".join(notes))
    c = console()
    c.print(t)
    floor = items[0].get("noise_floor") if items else None
    if floor is not None:
        c.print(
            f"seed noise floor: {floor:.0%} of the variance of {metric} lies inside replicate "
            "sets (runs differing only in their seed)",
            markup=False,
        )
    from ..analysis import small_sample_note

    note = small_sample_note(items)
    if note:
        click.echo(f"warning: {note}", err=True)
    if plot:
        c.print(f"plot saved to {plot}")


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "json"]),
    default=None,
    help="Output format (default: from the file extension).",
)
@click.option(
    "--output",
    "-o",
    "output",
    default="-",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write; '-' (the default) writes to stdout.",
)
@click.option("--filter", "-f", "filter_", default=None, help="Only runs matching this filter.")
@click.option("--project", "-p", default=None, help="Only runs of this project.")
@click.option("--sort", "sort", default=None, help="Sort key, e.g. -summary.val/acc.")
@click.option(
    "--limit", "-n", default=None, type=click.IntRange(min=1), help="At most this many runs."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print {path, format, runs} as JSON when done."
)
@click.option(
    "--include-repro",
    is_flag=True,
    help='Also export reproductions (job_type "repro", made by labledger repro).',
)
@store_option
def export(
    fmt: str | None,
    output: str,
    filter_: str | None,
    project: str | None,
    sort: str | None,
    limit: int | None,
    as_json: bool,
    include_repro: bool,
    store: str | None,
) -> None:
    """Export runs, one row each with config.* and summary.* columns, to CSV, Parquet or JSON.

    Reproductions (made by labledger repro) are left out unless --include-repro."""
    from pathlib import Path

    from .._ledger import _scope
    from ..analysis import FORMATS, latest_verdicts, runs_to_rows, sql_export_pages, write_pages

    to_stdout = output == "-"
    chosen = fmt or ("csv" if to_stdout else Path(output).suffix.lstrip(".").lower())
    if chosen not in FORMATS:
        raise click.UsageError(
            f"cannot tell the format from {output!r}: pass --format csv|parquet|json"
        )
    if to_stdout and chosen == "parquet" and sys.stdout.isatty():
        raise click.UsageError("parquet is binary: write it to a file with -o FILE.parquet")
    if chosen != "json":  # CSV/Parquet need the [analysis] extra: say so before the store
        import pandas  # noqa: F401
    # a bar on stderr only (a terminal): runs read and written a page at a time
    with progress(f"reading runs, writing {chosen}") as bar, open_ledger(store) as ledger:
        flt = _scope(filter_, include_repro)
        pages = sql_export_pages(
            ledger.store, project=project, filter=flt, order_by=sort, limit=limit
        )
        if pages is None:
            runs = ledger.runs(project=project, filter=flt, order_by=sort, limit=limit)
            verdicts = latest_verdicts(ledger.store, [r["id"] for r in runs])
            pages = iter([runs_to_rows(runs, on_progress=bar.update, verdicts=verdicts)])
        else:  # the bar's total: one count (the pages are read as they are written)
            bar.update(0, ledger.store.count_runs(project=project, filter=flt, cap=limit))
        if to_stdout:
            _export_to_stdout(pages, chosen)
            return
        path, n = write_pages(pages, output, chosen, on_progress=lambda n: bar.update(completed=n))
    if as_json:
        emit_json({"path": str(path), "format": chosen, "runs": n})
    else:
        console().print(f"wrote {n} runs to {path} ({chosen})")


def _export_to_stdout(pages: Any, fmt: str) -> None:
    """The export itself on stdout (nothing else there), written through a temporary file."""
    import tempfile
    from pathlib import Path

    from ..analysis import write_pages

    with tempfile.TemporaryDirectory(prefix="labledger-export-") as tmp:
        path, _ = write_pages(pages, Path(tmp) / f"runs.{fmt}", fmt)
        out = sys.stdout.buffer
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                out.write(chunk)
        out.flush()
