"""Scheduler and container hints, hostname opt-out, PYTHONHASHSEED for children, torch versions."""

from __future__ import annotations

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
