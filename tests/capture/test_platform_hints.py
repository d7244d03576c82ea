"""Scheduler and container hints, hostname opt-out, PYTHONHASHSEED for children, torch versions."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from _caphelpers import Script, load_run

CHILD = (
    "import os, sys, subprocess\n"
    "def child_hash():\n"
    '    code = \'import os; print(os.environ.get("PYTHONHASHSEED"), hash("labledger"))\'\n'
    "    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,\n"
    "                          check=True).stdout.strip()\n"
)

SEEDED = (
    CHILD
    + """
import torch, labledger
run = labledger.init("cap", seed=4321)
print("CHILD1", child_hash())
print("CHILD2", child_hash())
run.finish()
print("RUN", run.id)
"""
)


def _lines(out: str, prefix: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith(prefix + " ")]


def test_scheduler_container_hostname_off_hash_seed_and_torch(
    repo: Path, script: Script, store_uri: str
) -> None:
    env = {
        "SLURM_JOB_ID": "424242",
        "SLURM_ARRAY_TASK_ID": "7",
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "LABLEDGER_CAPTURE_HOSTNAME": "off",
        "PYTHONHASHSEED": "random",  # what the parent had must not leak into the children
    }
    proc = script.run(SEEDED, cwd=repo, env=env)
    (run_id,) = _lines(proc.stdout, "RUN")
    (c1,) = _lines(proc.stdout, "CHILD1")
    (c2,) = _lines(proc.stdout, "CHILD2")
    # child processes get PYTHONHASHSEED = the run's seed, so their str hashes repeat
    assert c1.split()[0] == "4321" and c1 == c2

    rec = load_run(store_uri, run_id)
    osinfo = rec["env"]["os"]
    assert osinfo["scheduler"] == {"name": "slurm", "job_id": "424242", "array_task_id": "7"}
    assert osinfo["container"] == "kubernetes"
    assert osinfo["hostname"] is None
    assert rec["host"] != socket.gethostname()  # the run record keeps only an opaque token
    hw = rec["env"]["hardware"]
    import torch

    assert hw["torch"] == str(torch.__version__)  # torch was imported before init()
    assert hw["cuda"] == torch.version.cuda  # None on a CPU-only build
    assert hw["cpu_physical"] is None or 1 <= hw["cpu_physical"] <= hw["cpu_count"]
    assert "torch" in rec["env"]["seed"]["seeded"]


def test_hostname_is_recorded_by_default_and_no_scheduler_outside_one(
    repo: Path, script: Script, store_uri: str
) -> None:
    code = 'import labledger\nrun = labledger.init("cap")\nrun.finish()\nprint(run.id)\n'
    env = {k: "" for k in ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID")}
    proc = script.run(code, cwd=repo, env=env)
    osinfo = load_run(store_uri, proc.stdout.strip())["env"]["os"]
    assert osinfo["hostname"] == socket.gethostname()
    assert osinfo["scheduler"] is None


def test_env_requirements_output_is_accepted_by_pip(
    repo: Path, script: Script, store_uri: str, tmp_path: Path
) -> None:
    """`labledger env RUN --requirements` is fed to pip itself (offline: --no-index --dry-run,
    so every pinned line must resolve to what is installed here)."""
    import subprocess
    import sys

    from _caphelpers import cli

    code = 'import labledger\nrun = labledger.init("cap")\nrun.finish()\nprint(run.id)\n'
    run_id = script.run(code, cwd=repo).stdout.strip()
    req = cli("env", run_id, "--requirements", store_uri=store_uri)
    assert req.returncode == 0, req.stderr
    pins = [line for line in req.stdout.splitlines() if line and not line.startswith("#")]
    assert len(pins) > 20 and any(p.startswith("numpy==") for p in pins)
    path = tmp_path / "requirements.txt"
    path.write_text(req.stdout)
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "-r", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    assert "Would install" not in pip.stdout  # every pin is exactly what this run had
