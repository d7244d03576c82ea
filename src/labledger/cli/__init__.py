"""The ``labledger`` command line: thin commands over the library.

Commands load lazily (``_COMMANDS`` maps a name to ``module:function``) so that
``labledger --help`` and quick commands start fast. Expected failures print one line
and exit 1; usage errors exit 2; no tracebacks.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from .._exceptions import LabledgerError, MissingDependencyError

__all__ = ["cli", "main"]

# Top-level module of an optional dependency -> the extra that installs it, so that a
# command whose extra is missing says which one to install instead of a traceback.
_OPTIONAL_MODULES: dict[str, str] = {
    "boto3": "s3",
    "botocore": "s3",
    "fastapi": "server",
    "matplotlib": "analysis",
    "mlflow": "mlflow",
    "multipart": "server",
    "pandas": "analysis",
    "psycopg": "postgres",
    "pyarrow": "analysis",
    "pynvml": "gpu",
    "python_multipart": "server",
    "scipy": "analysis",
    "sklearn": "analysis",
    "starlette": "server",
    "tensorboard": "tensorboard",
    "uvicorn": "server",
}

# name -> "module:attribute" (module relative to labledger.cli); keep sorted.
_COMMANDS: dict[str, str] = {
    "artifacts": "artifacts:artifacts",
    "attest": "trust:attest",
    "audit": "trust:audit",
    "best": "query:best",
    "check": "trust:check",
    "cite": "trust:cite",
    "compare": "query:compare",
    "demo": "demo:demo",
    "diff": "query:diff",
    "edit": "trust:edit",
    "env": "env:env",
    "export": "query:export",
    "gc": "artifacts:gc",
    "import": "imports:import_group",
    "importance": "query:importance",
    "ls": "runs:ls",
    "replicate": "repro:replicate",
    "media": "media:media",
    "models": "models:models",
    "repro": "repro:repro",
    "server": "server:server",
    "show": "runs:show",
    "sync": "server:sync",
    "ui": "ui:ui",
    "watch": "watch:watch",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(self.commands)
        for name, target in _COMMANDS.items():
            if importlib.util.find_spec(f"labledger.cli.{target.split(':')[0]}") is not None:
                names.add(name)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        mod_name, attr = target.split(":")
        mod = importlib.import_module(f"labledger.cli.{mod_name}")
        cmd: click.Command = getattr(mod, attr)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labledger")
def cli() -> None:
    """labledger: the single source of truth for machine-learning runs.

    The store is LABLEDGER_URI (sqlite:///PATH, postgresql://…, http(s)://HOST:PORT),
    else .labledger/ at the root of the current git repository.
    """


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="labledger", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        _show_error(exc)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except LabledgerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in _OPTIONAL_MODULES:
            raise
        click.echo(f"error: {MissingDependencyError(top, _OPTIONAL_MODULES[top])}", err=True)
        sys.exit(1)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        # SQLite found a damaged page while reading (past the check at open)
        text = str(getattr(exc, "orig", None) or exc)
        if "malformed" not in text and "not a database" not in text:
            raise
        from .._exceptions import NotAStoreError
        from ..store import existing_store_uri, sqlite_path

        try:
            where = str(sqlite_path(existing_store_uri(None)))
        except Exception:
            where = "in use"
        click.echo(f"error: {NotAStoreError(where, text, damaged=True)}", err=True)
        sys.exit(1)


def _show_error(exc: click.exceptions.ClickException) -> None:
    """Click's errors in the one style of every labledger error: ``error: ...`` on stderr
    (usage errors keep their usage line and help hint above it)."""
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.exceptions.UsageError) and ctx is not None:
        hint = ""
        if ctx.command.get_help_option(ctx) is not None:
            hint = f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help.\n"
        click.echo(f"{ctx.get_usage()}\n{hint}", err=True)
    click.echo(f"error: {exc.format_message()}", err=True)
