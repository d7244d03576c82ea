"""`repro --env current` reports environment drift before running; the recorded command runs
in its recorded relative working directory with the recorded environment variables."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import sqlalchemy as sa
from _rhelpers import Project, git

from labledger._values import encode_json
from labledger.store import _schema as s
from labledger.store import open_store


def _tamper_env(store_uri: str, run_id: str) -> dict[str, str]:
    """Make the recorded environment differ from this one in packages, Python, OS and hardware."""
    store = open_store(store_uri)
    try:
        env = store.get_run(run_id)["env"]
        packages = dict(env["packages"])
        here_numpy = packages["numpy"]
        packages["numpy"] = "0.0.1"
        packages["ghostpkg"] = "9.9.9"
        env = {
            **env,
            "packages": packages,
            "python": {**env["python"], "version": "2.7.18"},
            "os": {**env["os"], "release": "0.0-recorded"},
            "hardware": {
                **env["hardware"],
                "cuda": "99.9",
                "gpus": [{"name": "Recorded GPU", "memory_bytes": 1024}],
            },
        }
        # behind labledger's back: a finished run's record is frozen (docs/trust.md)
        with store._tx() as conn:  # type: ignore[attr-defined]
            conn.execute(
                sa.update(s.runs).where(s.runs.c.id == run_id).values(env=encode_json(env))
            )
    finally:
        store.close()
    return {"numpy": here_numpy}


def test_env_current_reports_every_drift_before_running(project: Project) -> None:
    run_id = project.train()
    here = _tamper_env(project.store_uri, run_id)

    dry = project.cli("repro", run_id, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout
    assert "drift:    " in out and "difference(s) from the recorded environment" in out
    assert f"package numpy: recorded 0.0.1, here {here['numpy']}" in out
    assert "package ghostpkg: recorded 9.9.9, not installed here" in out
    assert "python.version: recorded '2.7.18'" in out
    assert "os.release: recorded '0.0-recorded'" in out
    # CUDA is unknown here (no driver, torch not imported): a value only one side
    # recorded is not drift; an empty GPU list is a recorded fact and is
    assert "hardware.cuda" not in out
    assert "hardware.gpus: recorded ['Recorded GPU (1024 B)']" in out

    # a real reproduction reports the same drift first (on stderr with --json), then runs
    rc, result, err = project.repro(run_id)
    drift = result["plan"]["drift"]
    assert any(line.startswith("package numpy: recorded 0.0.1") for line in drift)
    assert any(line.startswith("hardware.gpus") for line in drift)
    assert err.index("package numpy: recorded 0.0.1") < err.index("running: ")
    # drift is reported, not a blocker: the metrics still reproduce in this environment
    assert rc == 0 and result["verdict"] == "reproduced", result
    stored = project.cli_json("show", run_id, "--json")["repro"]["verdicts"][0]
    assert any("ghostpkg" in line for line in stored["details"]["drift"])


SUB_SCRIPT = """\
import os
from pathlib import Path

import labledger

run = labledger.init(seed=7)
factor = float(Path("factor.txt").read_text())  # relative to the recorded working directory
run.summary["factor"] = factor
run.summary["threads"] = int(os.environ.get("OMP_NUM_THREADS", "0"))
run.summary["in_exp_dir"] = int(Path.cwd().name == "exp")
"""


def test_recorded_command_runs_in_the_recorded_cwd_with_the_recorded_env_vars(
    project: Project,
) -> None:
    exp = project.repo / "exp"
    exp.mkdir()
    (exp / "sub.py").write_text(SUB_SCRIPT)
    (exp / "factor.txt").write_text("2.5\n")
    git(project.repo, "add", "exp")
    subprocess.run(["git", "commit", "-qm", "exp"], cwd=project.repo, env=project.env, check=True)
    res = subprocess.run(
        [sys.executable, "sub.py"],
        cwd=exp,
        env={**project.env, "OMP_NUM_THREADS": "3"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    original = project.cli_json("ls", "--json")[0]
    # (system/* is the machine's load, sampled once by a short run: not a result)
    assert results(original["summary"]) == {"factor": 2.5, "threads": 3, "in_exp_dir": 1}

    dry = project.cli("repro", original["id"], "--dry-run")
    assert "cwd:      <checkout>/exp" in dry.stdout
    assert "OMP_NUM_THREADS" in dry.stdout  # listed among the replayed env vars

    # repro runs from elsewhere, where OMP_NUM_THREADS is different
    res = project.cli("repro", original["id"], "--json", env={"OMP_NUM_THREADS": "1"})
    rc, result = res.returncode, json.loads(res.stdout)
    assert result["plan"]["rel_cwd"] == "exp"
    assert "OMP_NUM_THREADS" in result["plan"]["env_vars"]
    assert rc == 0 and result["verdict"] == "reproduced", result
    new = project.cli_json("show", result["repro_run_id"], "--json")
    assert results(new["summary"]) == results(original["summary"])
    assert new["parent_run_id"] == original["id"]


def results(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's summary without the system/* series (machine load, not results)."""
    return {k: v for k, v in summary.items() if not k.startswith("system/")}
