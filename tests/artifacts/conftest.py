"""Fixtures for artifact tests: a real moto_server S3 endpoint on loopback, blob-store
parametrisation (local directory and S3), an isolated download cache, and a CLI helper."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_uri(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the moto server; env points boto3 (and subprocesses) at it."""
    import boto3

    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("LABLEDGER_S3_ENDPOINT_URL", moto_endpoint)
    bucket = "ll-" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    return f"s3://{bucket}/team/artifacts"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("LABLEDGER_CACHE_DIR", str(d))
    return d


@pytest.fixture(params=["local", "s3"])
def artifacts_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both back ends: a local directory and s3://bucket/prefix on moto_server."""
    if request.param == "local":
        return str(tmp_path / "blobs-here")
    return str(request.getfixturevalue("s3_uri"))


@pytest.fixture
def cli() -> Any:
    """Run the real `labledger` command line in-process: ``cli(*args) -> (exit code, output)``."""
    from click.testing import CliRunner

    from labledger.cli import main

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            _main_as_command(main), list(args), catch_exceptions=False, terminal_width=200
        )
        return result.exit_code, result.output

    return invoke


def _main_as_command(main: Any) -> Any:
    import click

    @click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    @click.pass_context
    def entry(ctx: click.Context) -> None:
        main(list(ctx.args))

    return entry
