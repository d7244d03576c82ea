"""Outside git: the recorded script snapshot is what runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _rhelpers import Project, base_env

SCRIPT = """\
import labledger
from mathutil import twice

run = labledger.init()
seed = labledger.seed_everything()
import random
run.log({"value": twice(random.random())})
"""


def test_repro_from_the_script_snapshot_outside_git(tmp_path: Path, store_uri: str) -> None:
    work = tmp_path / "plain"
    work.mkdir()
    (work / "job.py").write_text(SCRIPT)
    (work / "mathutil.py").write_text("def twice(x):\n    return 2 * x\n")
    env = base_env(store_uri, tmp_path)
    res = subprocess.run(
        [sys.executable, "job.py"], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    project = Project(work, work / "job.py", store_uri, env, tmp_path)
    original = project.cli_json("ls", "--json")[0]
    (work / "mathutil.py").write_text("def twice(x):\n    return 3 * x\n")  # edited after the run

    rc, result, _ = project.repro(original["id"])

    assert result["plan"]["code"]["kind"] == "snapshot"
    assert rc == 0 and result["verdict"] == "reproduced", result
    assert (work / "mathutil.py").read_text().startswith("def twice(x):\n    return 3")  # untouched
