"""A one-line integration run passes a tracking server's project policy
``--require seed --require dataset``: the examples, unchanged, against a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..server.conftest import Server, cli_env, labledger
from .conftest import EXAMPLES

pytest.importorskip("xgboost")

SCRIPT = f"""
import sys
sys.path.insert(0, {str(EXAMPLES)!r})
import labledger, sklearn_example, xgboost_example

sklearn_example.main()
labledger.active_run().finish()
_, run = xgboost_example.main(rounds=3)
run.finish()
"""
CONTROL = """
import labledger
bare = labledger.init(project="integrations-sklearn", name="no-seed-no-data")
bare.log({"loss": 1.0})
bare.finish()
"""


def test_examples_pass_a_seed_and_dataset_policy_on_a_server(tmp_path: Path) -> None:
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    for project in ("integrations-sklearn", "integrations-xgboost"):
        out = labledger(
            "server", "policy", project, "--require", "seed", "--require", "dataset",
            "--backend-uri", backend,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    srv = Server(backend, tmp_path)
    srv.start()
    try:
        env = cli_env({"LABLEDGER_URI": srv.url, "LABLEDGER_SPOOL_DIR": str(tmp_path / "spool")})
        for code in (SCRIPT, CONTROL):
            p = subprocess.run(
                [sys.executable, "-c", code],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert p.returncode == 0, p.stderr[-3000:]
            if code is SCRIPT:  # random_state=0 and seed: 0 are seeds: no warning, no refusal
                assert "no seed set" not in p.stderr and "recorded as failed" not in p.stderr
    finally:
        srv.stop()
    from labledger.store.sql import SqlStore

    store = SqlStore(backend)
    try:
        runs = {r["name"]: r for r in store.list_runs()}
    finally:
        store.close()
    integration_runs = [r for n, r in runs.items() if n != "no-seed-no-data"]
    assert len(integration_runs) == 2
    assert all(r["status"] == "finished" for r in integration_runs), [
        (r["project"], r["status"], r.get("error")) for r in integration_runs
    ]
    # the control: the same policy refuses a run without a seed or data
    assert runs["no-seed-no-data"]["status"] == "failed"
