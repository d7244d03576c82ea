"""``labledger demo``: train a real grid on scikit-learn's digits and print the leaderboard."""

from __future__ import annotations

import json
import os
import shutil
import sys

import click

from .._settings import setting
from ._output import console, fmt_duration, store_option

__all__ = ["demo"]


@click.command()
@click.option(
    "--project", default="digits-demo", show_default=True, help="Project to log the demo runs to."
)
@click.option(
    "--epochs",
    default=20,
    show_default=True,
    type=click.IntRange(1, 500),
    help="Training epochs per run (one metric point each).",
)
@click.option(
    "--runs",
    "n_runs",
    default=None,
    type=click.IntRange(1, 8),
    help="Train only the first N grid points.",
)
@click.option(
    "--seed", default=7, show_default=True, type=int, help="Base seed; run i uses SEED + i."
)
@store_option
def demo(project: str, epochs: int, n_runs: int | None, seed: int, store: str | None) -> None:
    """Train scikit-learn MLPs on the bundled digits data over a hyperparameter grid."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "the demo needs scikit-learn: pip install 'labledger[demo]'"
        ) from None
    from rich.table import Table

    from .._demo import run_demo

    c = console()
    results = run_demo(
        store=store, project=project, epochs=epochs, runs=n_runs, seed=seed, echo=c.print
    )
    table = Table(title=f"leaderboard: {project} by test_acc", header_style="bold")
    for col in ("#", "run", "test_acc", "f1_macro", "lr", "hidden", "act", "batch", "opt", "time"):
        table.add_column(col, no_wrap=True)
    for i, r in enumerate(results, 1):
        cfg, s = r["config"], r["summary"]
        table.add_row(
            str(i),
            r["id"][:8],
            f"{s['test_acc']:.4f}",
            f"{s['test_f1_macro']:.4f}",
            str(cfg["lr"]),
            str(cfg["hidden"]),
            cfg["activation"],
            str(cfg["batch_size"]),
            cfg["optimizer"],
            fmt_duration(r["runtime_s"]),
        )
    c.print(table)
    if not results:
        c.print("no run to train (labledger repro found no matching grid point)")
        return
    best = results[0]
    c.print(
        f"\n[bold]best run[/] {best['id']} ({best['name']}): test_acc {best['summary']['test_acc']:.4f}"
    )
    # printed whole (one line, never wrapped mid-value), so it can be copied
    click.echo("exact config: " + json.dumps(best["config"], sort_keys=True))
    cli = _cli_path()
    at = f" --store {store}" if store and store != setting("LABLEDGER_URI") else ""
    short = best["id"][:8]
    lines = [
        "",
        "look further:",
        f"  {cli} ls --project {project}{at}",
        f"  {cli} show {short}{at}",
        f"  {cli} artifacts ls {short}{at}",
        f"  {cli} repro {short}{at}    # re-run it and check the numbers",
        f"  {cli} ui{at}",
    ]
    if cli != "labledger":
        lines.append(f"(or activate the environment first: source {_activate_hint(cli)})")
    click.echo("\n".join(lines) + "\n")


def _cli_path() -> str:
    """How to call labledger from here: ``labledger`` when that is on PATH, else the launcher's path."""
    launcher = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    on_path = shutil.which("labledger")
    if on_path:
        try:
            if not launcher or os.path.samefile(on_path, launcher):
                return "labledger"
        except OSError:
            pass
    venv_cli = os.path.join(os.path.dirname(sys.executable), "labledger")
    target = launcher if os.path.basename(launcher) == "labledger" else venv_cli
    if not os.path.exists(target):
        return f"{sys.executable} -m labledger.cli"
    rel = os.path.relpath(target)
    return rel if not rel.startswith("..") else target


def _activate_hint(cli: str) -> str:
    return os.path.join(os.path.dirname(cli), "activate")
