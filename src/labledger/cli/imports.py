"""``labledger import mlflow SOURCE``, ``import tensorboard LOGDIR`` and ``import wandb DIR``."""

from __future__ import annotations

from typing import Any

import click

from ._output import emit_json, err, progress, store_option

__all__ = ["import_group"]


@click.group("import")
def import_group() -> None:
    """Bring runs recorded by MLflow, TensorBoard or W&B into the store (idempotent)."""


def _report(summary: Any, as_json: bool) -> None:
    if as_json:
        emit_json(summary.as_dict())
        return
    s = summary
    rate = s.runs / s.seconds if s.seconds else 0.0
    click.echo(
        f"imported {s.runs} run(s) from {s.experiments} experiment(s) of {s.source}: "
        f"{s.points} metric points, {s.params} params, {s.artifacts} artifact file(s) "
        f"({s.artifact_bytes} bytes); {s.skipped} already imported; "
        f"{s.seconds:.1f}s ({rate:.1f} runs/s)"
    )
    if s.not_imported:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(s.not_imported.items()))
        err(f"not imported (labledger stores no such values yet): {kinds}")
    for e in s.errors:
        err(f"error: {e}")


@import_group.command("mlflow")
@click.argument("source")
@store_option
@click.option(
    "--artifacts-uri", default=None, help="Where artifact bytes go (default: beside the store)."
)
@click.option("--no-artifacts", is_flag=True, help="Import runs and metrics only.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def mlflow_cmd(
    source: str, store: str | None, artifacts_uri: str | None, no_artifacts: bool, as_json: bool
) -> None:
    """Import every experiment and run of an MLflow tracking URI.

    SOURCE: sqlite:///mlflow.db, postgresql://..., a mlruns/ folder, a .db file or an
    MLflow server URL. Names, ids, times, status, user, typed params, tags, full metric
    histories and artifacts are kept; runs imported before are skipped.
    """
    from ..importers import import_mlflow

    with progress("importing MLflow runs") as bar:
        summary = import_mlflow(
            source,
            store,
            artifacts=not no_artifacts,
            artifacts_uri=artifacts_uri,
            on_progress=lambda done, total, desc: bar.update(done, total, desc[:60]),
        )
    _report(summary, as_json)
    if summary.errors:
        raise SystemExit(1)


@import_group.command("tensorboard")
@click.argument("logdir", type=click.Path(exists=True, file_okay=False))
@store_option
@click.option("--project", default=None, help="Project of the runs (default: LOGDIR's name).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def tensorboard_cmd(logdir: str, store: str | None, project: str | None, as_json: bool) -> None:
    """Import TensorBoard event files: one run per folder with events, scalars with their
    steps and wall times, hparams as config. Runs imported before are skipped."""
    from ..importers import import_tensorboard

    with progress("importing TensorBoard runs") as bar:
        summary = import_tensorboard(
            logdir,
            store,
            project=project,
            on_progress=lambda done, total, desc: bar.update(done, total, desc[:60]),
        )
    _report(summary, as_json)
    if summary.errors:
        raise SystemExit(1)


@import_group.command("wandb")
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@store_option
@click.option(
    "--project", default=None, help="Project of the runs (default: each run's W&B project)."
)
@click.option(
    "--artifacts-uri",
    default=None,
    help="Where artifact bytes go (default: the store's artifact location).",
)
@click.option("--no-artifacts", is_flag=True, help="Import runs and metrics only, not files/.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def wandb_cmd(
    source: str,
    store: str | None,
    project: str | None,
    artifacts_uri: str | None,
    no_artifacts: bool,
    as_json: bool,
) -> None:
    """Import W&B run directories, online and offline (wandb/run-*, wandb/offline-run-*).

    SOURCE: a run directory or any folder above them (a project's wandb/ folder). Config,
    summary, the full history with steps and timestamps, system metrics, files, and the
    git and environment metadata are kept; runs imported before are skipped.
    """
    from ..importers import import_wandb

    with progress("importing W&B runs") as bar:
        summary = import_wandb(
            source,
            store,
            project=project,
            artifacts=not no_artifacts,
            artifacts_uri=artifacts_uri,
            on_progress=lambda done, total, desc: bar.update(done, total, desc[:60]),
        )
    _report(summary, as_json)
    if summary.errors:
        raise SystemExit(1)
