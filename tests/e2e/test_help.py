"""Every command and every option of the CLI explains itself in ``--help``."""

from __future__ import annotations

from collections.abc import Iterator

import click

from labledger.cli import cli


def _commands(
    group: click.Group, ctx: click.Context, prefix: str
) -> Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        path = f"{prefix} {name}".strip()
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, click.Context(cmd, parent=ctx, info_name=name), path)


def test_every_command_and_option_has_help() -> None:
    ctx = click.Context(cli, info_name="labledger")
    missing = []
    for path, cmd in _commands(cli, ctx, ""):
        if not (cmd.help or cmd.short_help):
            missing.append(path)
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{path} {param.opts[0]}")
    assert missing == []
