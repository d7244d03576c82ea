"""Complete proofs through a real server on PostgreSQL (docs/trust.md): a model logged by
alice, a file row pointed at another blob in the database, `artifacts get` and `audit
verify` through the server refuse it; a signed head and an attestation made through it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from .conftest import Server
from .test_auth import token
from .test_trust_server import _cli, _client_env

pytestmark = pytest.mark.postgres

TRAIN = """
import labledger, pathlib
pathlib.Path("model.pt").write_bytes({payload!r})
with labledger.init("alpha", name={name!r}, config={{"lr": 0.01}}, capture=False) as run:
    run.log({{"val_acc": 0.9}})
    run.log_model("model.pt")
print(run.id)
"""


def _train(srv: Server, tok: str, cwd: Path, name: str, payload: bytes) -> str:
    cwd.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", TRAIN.format(name=name, payload=payload)],
        env=_client_env(srv, tok, LABLEDGER_CAPTURE="off"),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[-1]


def test_manifest_swap_signed_head_and_attestation_through_the_server(
    shared_server: Server, tmp_path: Path
) -> None:
    srv = shared_server
    alice = token(srv, "alice", "alpha", "write")[1]
    a = _train(srv, alice, tmp_path / "a", "a", b"alice's weights")
    b = _train(srv, alice, tmp_path / "b", "b", b"other weights, 22 bytes")
    ok = _cli(srv, alice, "artifacts", "get", "alpha/model:v0", "-o", str(tmp_path / "ok"))
    assert ok.returncode == 0, ok.stderr

    key = tmp_path / "head.key"
    assert _cli(srv, alice, "audit", "keygen", "-o", str(key)).returncode == 0
    signed = _cli(srv, alice, "audit", "head", "--project", "alpha", "--sign", str(key))
    assert signed.returncode == 0, signed.stderr
    (tmp_path / "HEAD.json").write_text(signed.stdout)
    attested = _cli(srv, alice, "attest", a, "-o", str(tmp_path / "a.intoto.json"))
    assert attested.returncode == 0, attested.stderr
    statement = json.loads((tmp_path / "a.intoto.json").read_text())
    assert statement["subject"][0]["name"] == "alpha/model:v0/model.pt"

    # somebody with database access points run a's model at run b's blob
    engine = sa.create_engine(srv.backend_uri)
    try:
        with engine.begin() as conn:
            sha, size = conn.execute(
                sa.text(
                    "SELECT f.sha256, f.size FROM artifact_files f JOIN artifact_versions v "
                    "ON v.id = f.version_id WHERE v.run_id = :r"
                ),
                {"r": b},
            ).one()
            conn.execute(
                sa.text(
                    "UPDATE artifact_files SET sha256 = :s, size = :n WHERE version_id = "
                    "(SELECT id FROM artifact_versions WHERE run_id = :r)"
                ),
                {"s": sha, "n": size, "r": a},
            )
    finally:
        engine.dispose()
    got = _cli(srv, alice, "artifacts", "get", "alpha/model:v0", "-o", str(tmp_path / "bad"))
    assert got.returncode == 1 and "damaged" in got.stdout + got.stderr
    assert not list((tmp_path / "bad").rglob("model.pt"))
    verify = _cli(
        srv, alice, "audit", "verify", "--project", "alpha",
        "--head", str(tmp_path / "HEAD.json"), "--key", str(key) + ".pub",
    )  # fmt: skip
    assert verify.returncode == 1
    assert "signature ok" in verify.stdout
    assert f"alpha/{a} field artifact.model:v0" in verify.stdout
