"""Run the server under uvicorn; the factory each uvicorn worker process calls.

Worker processes import :func:`app_from_env`, so the settings travel in environment
variables (``LABLEDGER_SERVER_*``) set by ``labledger server``.
"""

from __future__ import annotations

import os
import socket

from fastapi import FastAPI

from .._settings import setting

__all__ = ["app_from_env", "serve"]

_ENV_BACKEND = "LABLEDGER_SERVER_BACKEND_URI"
_ENV_ARTIFACTS = "LABLEDGER_SERVER_ARTIFACTS_URI"
_ENV_HEARTBEAT = "LABLEDGER_SERVER_HEARTBEAT_TIMEOUT"
_ENV_UI = "LABLEDGER_SERVER_UI"


def app_from_env() -> FastAPI:
    """The app configured by ``LABLEDGER_SERVER_*`` variables (uvicorn ``--factory``)."""
    from ..store import resolve_store_uri
    from .app import create_app

    hb = setting(_ENV_HEARTBEAT)
    return create_app(
        resolve_store_uri(setting(_ENV_BACKEND) or None),
        setting(_ENV_ARTIFACTS) or None,
        ui=setting(_ENV_UI) != "0",
        heartbeat_timeout=float(hb) if hb else None,
    )


def serve(
    backend_uri: str,
    artifacts_uri: str | None,
    *,
    host: str,
    port: int,
    workers: int,
    heartbeat_timeout: float | None,
    ui: bool = True,
    log_level: str = "info",
) -> None:
    """Migrate once, then serve with ``workers`` uvicorn processes (each migration-safe too)."""
    import uvicorn

    from ..store.sql import SqlStore

    SqlStore(backend_uri).close()  # fail fast (unreachable database, newer schema) before forking
    os.environ[_ENV_BACKEND] = backend_uri
    if artifacts_uri:
        os.environ[_ENV_ARTIFACTS] = artifacts_uri
    if heartbeat_timeout is not None:
        os.environ[_ENV_HEARTBEAT] = str(heartbeat_timeout)
    os.environ[_ENV_UI] = "1" if ui else "0"
    options = dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    if workers <= 1:
        uvicorn.run("labledger.server._serve:app_from_env", **options)  # type: ignore[arg-type]
        return
    # Several workers: uvicorn binds the listening socket itself with protocol 0, and
    # asyncio only sets TCP_NODELAY on accepted sockets whose protocol is IPPROTO_TCP.
    # Without it every response (headers, then body) waits ~40 ms for the client's
    # delayed ACK. Accepted sockets inherit TCP_NODELAY from the listener on Linux.
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("labledger.server._serve:app_from_env", **options)  # type: ignore[arg-type]
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
