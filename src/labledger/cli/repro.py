"""``labledger repro RUN``: re-run a recorded run and say whether its results reproduce."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ._output import emit_json, fmt_value, open_ledger, progress, store_option

if TYPE_CHECKING:
    from ..repro import ReproResult

__all__ = ["replicate", "repro"]

_BADGE = {
    "reproduced": "✓ reproduced",
    "reproduced-within-tolerance": "≈ reproduced within tolerance",
    "not-reproduced": "✗ not reproduced",
    "not-reproducible": "! not reproducible",
    "could-not-rerun": "could not re-run (not stored)",
}


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--in",
    "in_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Check the code out into DIR (new or empty) and keep it; default: a temporary directory, removed afterwards.",
)
@click.option(
    "--env",
    "env_mode",
    type=click.Choice(["current", "fresh"]),
    default="current",
    show_default=True,
    help="current: run in this environment and report drift; fresh: build a venv with the recorded package versions.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="Relative difference |a-b|/max(|a|,|b|) up to which a metric still counts as reproduced.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (code, environment drift, data checks, command) and stop.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Run even when the original is unseeded, data changed or packages cannot be installed.",
)
@click.option(
    "--find-links",
    "find_links",
    multiple=True,
    type=click.Path(),
    help="Extra wheel directory for --env fresh (repeatable).",
)
@click.option(
    "--no-index",
    is_flag=True,
    help="--env fresh: do not use the package index (offline, with --find-links).",
)
@click.option("--index-url", default=None, help="--env fresh: package index URL.")
@click.option("--keep", is_flag=True, help="Keep the temporary checkout.")
@click.option(
    "--data",
    "data_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Folder where datasets are looked for by sha256 when not at their recorded place (repeatable).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Stop the command after this many seconds.",
)
@click.option(
    "--token",
    default=None,
    envvar="LABLEDGER_TOKEN",
    help="API token of a token-protected server (default: LABLEDGER_TOKEN); the re-run gets it too.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result as a JSON object (progress goes to stderr).",
)
@store_option
def repro(
    run_ref: str,
    in_dir: str | None,
    env_mode: str,
    tolerance: float,
    dry_run: bool,
    force: bool,
    find_links: tuple[str, ...],
    no_index: bool,
    index_url: str | None,
    keep: bool,
    data_dirs: tuple[str, ...],
    timeout: float | None,
    token: str | None,
    as_json: bool,
    store: str | None,
) -> None:
    """Reproduce RUN from its recorded code, environment, data and seed, and compare the results.

    Exits 0 when the run reproduced (exactly or within --tolerance) or for --dry-run, 1 otherwise.
    A re-run that could not be carried out (setup or tool failure) is reported and exits 1,
    but is not stored: only a re-run whose results differ marks the run "not reproduced".
    """
    import os

    from ..repro import reproduce

    if token:
        os.environ["LABLEDGER_TOKEN"] = token  # the store client and the re-run both read it

    def echo(msg: str) -> None:
        click.echo(msg, err=as_json)

    with open_ledger(store) as ledger:
        result = reproduce(
            ledger.store,
            run_ref,
            in_dir=in_dir,
            env_mode=env_mode,
            tolerance=tolerance,
            dry_run=dry_run,
            force=force,
            find_links=find_links,
            no_index=no_index,
            index_url=index_url,
            keep=keep,
            timeout=timeout,
            token=token,
            data_dirs=data_dirs,
            echo=echo,
            stdout=sys.stderr if as_json else None,
        )
    if as_json:
        emit_json(result.to_dict())
    else:
        _render(result, echo)
    if not dry_run and not result.ok:
        sys.exit(1)


def _render(result: ReproResult, echo: Callable[[str], None]) -> None:
    if result.verdict is None:
        return
    if result.metrics:
        width = max(len(m["key"]) for m in result.metrics)
        echo("")
        echo(f"{'metric'.ljust(width)}  {'original':>14}  {'reproduction':>14}  status")
        for m in result.metrics:
            rel = f" (rel {m['rel_diff']:.2e})" if m.get("rel_diff") else ""
            rel += f" at step {m['step']}" if m.get("step") is not None else ""
            echo(
                f"{m['key'].ljust(width)}  {fmt_value(m['original']):>14}  {fmt_value(m['repro']):>14}  {m['status']}{rel}"
            )
    echo("")
    line = f"verdict: {_BADGE.get(result.verdict, result.verdict)}"
    if result.reason:
        line += f": {result.reason}"
    echo(line)
    if result.repro_run_id:
        echo(f"reproduction run: {result.repro_run_id}")


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--seeds",
    "-k",
    "k",
    required=True,
    type=click.IntRange(min=1, max=1000),
    help="How many new seeds to run.",
)
@click.option(
    "--metric",
    "-m",
    default=None,
    help="Afterwards, print the replicate set's mean ± std of this metric.",
)
@click.option(
    "--data",
    "data_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Folder where datasets are looked for by sha256 (repeatable).",
)
@click.option(
    "--force", is_flag=True, help="Run even when data changed or arguments were redacted."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Stop each run after this many seconds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as a JSON object.")
@store_option
def replicate(
    run_ref: str,
    k: int,
    metric: str | None,
    data_dirs: tuple[str, ...],
    force: bool,
    timeout: float | None,
    as_json: bool,
    store: str | None,
) -> None:
    """Re-run RUN's code, data and config with K new seeds; the new runs join its replicate set.

    The recorded code is checked out (with its patch) and the recorded command runs once
    per new seed (seeds the set has not used, smallest first), in this environment. The
    new runs are not reproductions: they rank, and best --by config counts them as seeds
    of RUN's configuration. Exits 1 when a run failed."""
    from ..repro import replicate as run_replicate

    def echo(msg: str) -> None:
        click.echo(msg, err=True)

    with progress("new seeds", total=k) as bar, open_ledger(store) as ledger:
        result = run_replicate(
            ledger.store,
            run_ref,
            k,
            force=force,
            timeout=timeout,
            data_dirs=data_dirs,
            echo=echo if not bar.drawn else (lambda _m: None),
            on_progress=bar.update,
            stdout=sys.stderr,
        )
        row = None
        if metric is not None:
            row = next(
                (
                    r
                    for r in ledger.leaderboard(metric, project=result.plan.run["project"])
                    if result.plan.run["id"] in r["runs"]
                ),
                None,
            )
    out = result.to_dict()
    if metric is not None:
        out["set"] = row
    if as_json:
        emit_json(out)
    else:
        for n in result.notes:
            click.echo(n)
        click.echo(f"new runs: {', '.join(r[:12] for r in result.runs) or 'none'}")
        for f in result.failed:
            click.echo(f"seed {f['seed']} failed: {f['reason']}")
        if row is not None:
            spread = f" ± {fmt_value(row['std'])}" if row["std"] is not None else ""
            click.echo(
                f"replicate set: {metric} {fmt_value(row['mean'])}{spread} "
                f"(mean ± std, n = {row['n']} seeds)"
            )
    if not result.ok:
        sys.exit(1)
