"""``labledger env RUN`` (captured environment), ``--requirements``, ``--patch``, and ``env diff``."""

from __future__ import annotations

import sys
from typing import Any

import click

from ._output import emit_json, open_ledger, store_option

__all__ = ["env"]


class _EnvGroup(click.Group):
    """``labledger env RUN`` and ``labledger env diff A B`` side by side.

    Anything that is not a subcommand name is taken as ``env show ...``.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_EnvGroup)
def env() -> None:
    """The captured environment of a run: `labledger env RUN [--requirements|--patch|--json]`,
    `labledger env diff RUN_A [RUN_B|--current]`."""


def _get_blob(store: Any, sha: str) -> bytes:
    data = store.get_blob(sha)
    return bytes(data)


@env.command("show")
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--requirements",
    "requirements",
    is_flag=True,
    help="Print a pip requirements file of the run's packages.",
)
@click.option(
    "--patch",
    "patch",
    is_flag=True,
    help="Print the captured patch of uncommitted changes (git apply-able).",
)
@click.option(
    "--snapshot",
    "snapshot",
    is_flag=True,
    help="Print the code snapshot (outside git) as JSON {path: text}.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the env object as JSON.")
@store_option
def show(
    run_ref: str, requirements: bool, patch: bool, snapshot: bool, as_json: bool, store: str | None
) -> None:
    """Show the captured environment of RUN (an id, prefix or name)."""
    from .._exceptions import NotFoundError

    with open_ledger(store) as ledger:
        run = ledger.get(run_ref)
        e: dict[str, Any] = run.get("env") or {}
        if requirements:
            from ..capture.packages import requirements as make_requirements

            if not e.get("packages"):
                raise NotFoundError(f"run {run['id'][:8]} has no recorded packages")
            click.echo(
                f"# packages of run {run['id']} ({run.get('name')}), python {(e.get('python') or {}).get('version', '?')}"
            )
            click.echo(make_requirements(e["packages"], e.get("package_sources")), nl=False)
            return
        if patch or snapshot:
            sha = (
                (e.get("git") or {}).get("diff_sha256")
                if patch
                else (e.get("code_snapshot") or {}).get("sha256")
            )
            if not sha:
                what = "uncommitted changes" if patch else "code snapshot"
                raise NotFoundError(f"run {run['id'][:8]} has no captured {what}")
            data = _get_blob(ledger.store, sha)
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            return
    if as_json:
        emit_json(e)
        return
    from ..capture.render import render_env_detail

    click.echo(f"environment of run {run['id']} ({run.get('name')})")
    for line in render_env_detail(e) or ["(nothing captured)"]:
        click.echo("  " + line if line else "")


@env.command("diff")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="[RUN_B]", required=False)
@click.option("--current", is_flag=True, help="Compare RUN_A with this machine's environment now.")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@store_option
def diff(run_a: str, run_b: str | None, current: bool, as_json: bool, store: str | None) -> None:
    """Packages, code, Python, OS, hardware, seeds and datasets that differ between two runs.

    With --current (or no RUN_B) the second side is the environment of the current
    directory and interpreter, without a seed or datasets (those come from RUN_A).
    Exits 0 whether or not they differ.
    """
    from ..capture.diff import current_env, env_diff
    from ..capture.render import render_env_diff

    if run_b is not None and current:
        raise click.UsageError("give RUN_B or --current, not both")
    with open_ledger(store) as ledger:
        a = ledger.get(run_a)
        local_blobs: dict[str, bytes] = {}
        if run_b is None:
            import hashlib

            def keep(data: bytes) -> str:
                sha = hashlib.sha256(data).hexdigest()
                local_blobs[sha] = data
                return sha

            env_b = current_env(put_blob=keep)
            # the CLI process has no seed and its own command line: take both from RUN_A
            env_b["seed"] = (a.get("env") or {}).get("seed")
            env_b["command"] = (a.get("env") or {}).get("command")
            b: dict[str, Any] = {
                "id": "current",
                "name": "current environment",
                "env": env_b,
                "datasets": a.get("datasets"),
            }
        else:
            b = ledger.get(run_b)

        def blobs(sha: str) -> bytes:
            if sha in local_blobs:
                return local_blobs[sha]
            return _get_blob(ledger.store, sha)

        result = env_diff(
            a.get("env"),
            b.get("env"),
            datasets_a=a.get("datasets"),
            datasets_b=b.get("datasets"),
            blobs=blobs,
        )
    if as_json:
        emit_json({"a": a["id"], "b": b["id"], **result})
        return
    label_a, label_b = a["id"][:8], b["id"][:8] if b["id"] != "current" else "current"
    click.echo(f"env diff {label_a} ({a.get('name')}) -> {label_b} ({b.get('name')})")
    for line in render_env_diff(result, label_a, label_b):
        click.echo(line)
