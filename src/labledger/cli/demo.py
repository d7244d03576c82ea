"""``labledger demo``: train a real grid on scikit-learn's digits and print the leaderboard."""

from __future__ import annotations

import json

import click

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
    best = results[0]
    c.print(
        f"\n[bold]best run[/] {best['id']} ({best['name']}): test_acc {best['summary']['test_acc']:.4f}"
    )
    c.print("exact config: " + json.dumps(best["config"], sort_keys=True), markup=False)
    c.print(
        "\nlook further:\n"
        f"  labledger ls --project {project}\n"
        f"  labledger show {best['id'][:8]}\n"
        f"  labledger show {best['id'][:8]} --json\n",
        markup=False,
    )
