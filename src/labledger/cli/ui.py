"""``labledger ui``: serve the web dashboard over the local store."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import click

from ._output import store_option

__all__ = ["ui"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket up front: a busy port is a one-line error, port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "; choose another with --port, or --port 0 for any free port" if port else ""
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}"
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@click.command()
@store_option
@click.option(
    "--port",
    default=5005,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on. The dashboard has no login here: keep it on loopback.",
)
@click.option(
    "--artifacts-uri",
    default=None,
    envvar="LABLEDGER_ARTIFACTS_URI",
    help="Artifact store (default: beside the store).",
)
def ui(store: str | None, port: int, host: str, artifacts_uri: str | None) -> None:
    """Open the web dashboard for the local store (prints the URL; Ctrl-C stops it)."""
    import uvicorn

    from ..server.app import create_app
    from ..store import Location, open_store

    location = Location.of(store)
    uri = location.uri
    if location.is_remote:
        raise click.UsageError(
            f"{uri} is a labledger server: it serves the dashboard itself, open it in a browser"
        )
    if not _is_loopback(host):
        click.echo(
            f"warning: serving on {host} lets anyone who can reach it read every run "
            "(use `labledger server` with tokens for a team)",
            err=True,
        )
    backend = open_store(uri)
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    app = create_app(uri, artifacts_uri, store=backend)
    click.echo(
        f"labledger dashboard: http://{shown}:{actual_port}/   (store {uri}; Ctrl-C to stop)"
    )
    config: Any = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        backend.close()
