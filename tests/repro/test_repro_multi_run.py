"""A process that makes several runs (the demo's grid, a sweep) is reproduced run by run."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from _rhelpers import Project, git

LAUNCHER = Path(sys.executable).parent / "labledger"  # the console script, as `make demo` runs it

SWEEP = """\
import labledger

for lr in (0.1, 0.2, 0.3):
    run = labledger.init(project="sweep", seed=5)
    run.config["lr"] = lr  # set after init(): repro matches the re-run by config afterwards
    run.summary["score"] = lr * 3
    run.finish()
"""


def _commit_all(project: Project) -> None:
    git(project.repo, "add", "-A")
    subprocess.run(["git", "commit", "-qm", "wip"], cwd=project.repo, env=project.env, check=True)


def test_repro_of_the_demos_best_run_reproduces_only_that_grid_point(project: Project) -> None:
    _commit_all(project)
    demo = subprocess.run(
        [str(LAUNCHER), "demo", "--runs", "3", "--epochs", "2"],
        cwd=project.repo,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    runs = project.cli_json("ls", "--json", "--project", "digits-demo")
    assert len(runs) == 3
    best = max(runs, key=lambda r: (r["summary"]["test_acc"], r["summary"]["test_f1_macro"]))

    # the demo's closing lines name a command that works from where make demo ran
    (ls_line,) = [
        ln for ln in demo.stdout.splitlines() if ln.strip().endswith("ls --project digits-demo")
    ]
    listed = subprocess.run(
        shlex.split(ls_line), cwd=project.repo, env=project.env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert best["id"][:8] in listed.stdout
    # the model is an artifact of the run, the dataset is fingerprinted
    arts = project.cli_json("artifacts", "ls", best["id"], "--json")
    assert any(a["kind"] == "model" for a in arts["produced"]), arts
    shown = project.cli_json("show", best["id"], "--json")
    assert shown["datasets"][0]["name"] == "digits" and len(shown["datasets"][0]["sha256"]) == 64

    rc, result, err = project.repro(best["id"])

    assert rc == 0, (result["verdict"], result["reason"], err[-3000:])
    assert result["verdict"] == "reproduced"
    assert {m["status"] for m in result["metrics"]} == {"identical"}
    # the re-run trained only the grid point being reproduced
    after = project.cli_json("ls", "--json", "--project", "digits-demo")
    assert len(after) == 4
    new = project.cli_json("show", result["repro_run_id"], "--json")
    assert new["config"] == best["config"] and new["seed"] == best["seed"]


def test_a_sweep_is_matched_run_by_run_even_with_config_set_after_init(project: Project) -> None:
    (project.repo / "sweep.py").write_text(SWEEP)
    _commit_all(project)
    res = subprocess.run(
        [sys.executable, "sweep.py"],
        cwd=project.repo,
        env=project.env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    runs = project.cli_json("ls", "--json", "--project", "sweep")
    middle = next(r for r in runs if r["config"]["lr"] == 0.2)

    rc, result, _ = project.repro(middle["id"])

    assert rc == 0, result["reason"]
    assert result["verdict"] == "reproduced"
    assert "matched by config" in " ".join(result["notes"])
    new = project.cli_json("show", result["repro_run_id"], "--json")
    assert new["config"] == {"lr": 0.2}


PICKY = """\
import pathlib
import sys

import labledger

# like a launcher in an ignored .venv/: present where the run was made, not in a checkout
if not pathlib.Path("data/tool").exists():
    sys.exit("cannot find data/tool")
with labledger.init(project="picky", seed=1) as run:
    run.summary["score"] = 1.0
"""


def test_a_rerun_that_records_no_run_could_not_rerun_and_is_not_stored(project: Project) -> None:
    (project.repo / "picky.py").write_text(PICKY)
    _commit_all(project)
    (project.repo / "data").mkdir()
    (project.repo / "data" / "tool").write_text("ignored by git\n")
    res = subprocess.run(
        [sys.executable, "picky.py"],
        cwd=project.repo,
        env=project.env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    (original,) = project.cli_json("ls", "--json", "--project", "picky")

    rc, result, _ = project.repro(original["id"])

    assert rc == 1
    assert result["verdict"] == "could-not-rerun"
    assert "exited with code 1 without recording a run" in result["reason"]
    shown = project.cli_json("show", original["id"], "--json")
    assert shown["repro"]["verdicts"] == [] and shown["repro"]["verdict"] is None
    text = project.cli("repro", original["id"])
    assert text.returncode == 1
    assert "verdict: could not re-run (not stored)" in text.stdout
    assert "not reproduc" not in project.cli("ls", "--project", "picky").stdout
