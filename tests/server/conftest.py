"""Fixtures for the tracking server: a real uvicorn subprocess on loopback over PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_ENV = "LABLEDGER_TEST_POSTGRES_URL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_") or k == PG_ENV}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["LABLEDGER_CONSOLE"] = "off"
    env.update(extra or {})
    return env


def labledger(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run the real ``labledger`` CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Server:
    """``labledger server`` in a subprocess; restartable on the same port."""

    def __init__(
        self,
        backend_uri: str,
        log_dir: Path,
        *,
        heartbeat_timeout: float | None = None,
        artifacts_uri: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.backend_uri = backend_uri
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.heartbeat_timeout = heartbeat_timeout
        self.artifacts_uri = artifacts_uri
        self.env = env or {}
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, wait: bool = True) -> None:
        args = [
            sys.executable,
            "-m",
            "labledger.cli",
            "server",
            "--backend-uri",
            self.backend_uri,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        if self.heartbeat_timeout is not None:
            args += ["--heartbeat-timeout", str(self.heartbeat_timeout)]
        if self.artifacts_uri:
            args += ["--artifacts-uri", self.artifacts_uri]
        self.starts += 1
        log = open(self.log_dir / f"server-{self.port}-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args, env=cli_env(self.env), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s: {self.log()}")

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:]
            for p in sorted(self.log_dir.glob(f"server-{self.port}-*.log"))
        )

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, in-flight requests die."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _create_db() -> tuple[str, Callable[[], None]]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    import sqlalchemy as sa

    name = "lls_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return url, drop


@pytest.fixture(scope="module")
def module_pg() -> Iterator[str]:
    url, drop = _create_db()
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(backend_uri: str, **kw: object) -> Server:
        srv = Server(backend_uri, tmp_path, **kw)  # type: ignore[arg-type]
        servers.append(srv)
        srv.start()
        return srv

    yield make
    for s in servers:
        s.stop()


@contextlib.contextmanager
def backend_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, prefix: str
) -> Iterator[Server]:
    """A server with local blobs over the back end the fixture's param names.

    ``request.param`` is ``"sqlite"`` (a store file in a fresh folder) or ``"postgres"``
    (the module's own PostgreSQL database): module fixtures parametrised over both use it.
    """
    tmp = tmp_path_factory.mktemp(prefix)
    uri = (
        f"sqlite:///{tmp / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("module_pg")
    )
    srv = Server(uri, tmp, artifacts_uri=str(tmp / "blobs"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@contextlib.contextmanager
def mlflow_client_for(
    server: Server, monkeypatch: pytest.MonkeyPatch, *, registry: bool = False
) -> Iterator[Any]:
    """The real ``mlflow`` client pointed at ``server`` (no retries, no inherited experiment)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(server.url)
    if registry:
        mlflow.set_registry_uri(server.url)
    try:
        yield mlflow.MlflowClient(server.url)
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # back to the default
        if registry:  # or the next module's client would still register on this server
            mlflow.set_registry_uri(None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def shared_server(module_pg: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server over one database for a whole test module."""
    srv = Server(module_pg, tmp_path_factory.mktemp("srv"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


# -- S3 through a real endpoint process (moto_server) on loopback ------------------------

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def make_bucket(endpoint: str) -> str:
    """A fresh bucket on the moto server; returns ``s3://bucket/prefix``."""
    import boto3

    bucket = "lls-" + uuid.uuid4().hex[:12]
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/team/artifacts"


def make_token(server: Server, user: str, project: str, role: str) -> str:
    """A token for ``user`` with ``role`` on ``project``, made by the real CLI."""
    out = labledger(
        "server", "token", "create", "--backend-uri", server.backend_uri,
        "--user", user, "--project", project, "--role", role, "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["token"])
