"""Honest reproductions (issue 20, items 5 and 6), with real git, real processes and the real CLI:

- a reproduction from a fresh clone after the author's clone was deleted finds the
  committed dataset by its sha256, without ``--force``;
- a killed run is compared only over the steps it recorded, and ``--dry-run`` says so;
- reproductions are marked (``job_type = "repro"``) and left out of ``best``, export,
  ``to_pandas``, importance and counts unless asked;
- a child run's seed never changes its parent's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from _rhelpers import Project, base_env, git, make_data

import labledger
from labledger import Ledger

DIGITS_SCRIPT = """\
from pathlib import Path

import numpy as np

import labledger

data_path = Path(__file__).parent / "data" / "digits.csv"
run = labledger.init(config={"lr": 0.1}, seed=3)
run.log_dataset(str(data_path), name="digits")
data = np.loadtxt(data_path, delimiter=",")
X, y = data[:, :-1], data[:, -1]
rng = np.random.default_rng(3)
w = rng.normal(size=X.shape[1])
for step in range(30):
    w -= 0.1 * (X.T @ (X @ w - y) / len(y))
    run.log({"loss": float(np.mean((X @ w - y) ** 2))})
run.summary["best_val_acc"] = round(1.0 / (1.0 + float(np.mean((X @ w - y) ** 2))), 6)
"""


def _cli(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_reproduction_from_a_fresh_clone_after_the_authors_clone_is_deleted(
    tmp_path: Path, store_uri: str
) -> None:
    env = base_env(store_uri, tmp_path)
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    (origin / "train.py").write_text(DIGITS_SCRIPT)
    (origin / "data").mkdir()
    make_data(origin / "data" / "digits.csv")
    git(origin, "add", "train.py", "data/digits.csv")
    subprocess.run(["git", "commit", "-qm", "digits"], cwd=origin, env=env, check=True)

    author = tmp_path / "author-clone"
    git(tmp_path, "clone", "-q", str(origin), str(author))
    res = subprocess.run(
        [sys.executable, "train.py"], cwd=author, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    (listed,) = json.loads(_cli(["ls", "--json"], tmp_path, env).stdout)
    run = json.loads(_cli(["show", listed["id"], "--json"], tmp_path, env).stdout)
    recorded = run["datasets"][0]["path"]
    assert recorded == str(author / "data" / "digits.csv")
    shutil.rmtree(author)  # the author's clone is gone, with the absolute path recorded in it

    fresh = tmp_path / "fresh-clone"
    git(tmp_path, "clone", "-q", str(origin), str(fresh))

    dry = _cli(["repro", run["id"], "--dry-run"], fresh, env)
    assert dry.returncode == 0, dry.stderr
    assert "data:     digits: ok (same sha256 in repository: " in dry.stdout
    assert str(fresh / "data" / "digits.csv") in dry.stdout
    assert "blocked:" not in dry.stdout

    out = _cli(["repro", run["id"], "--json"], fresh, env)  # no --force
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["verdict"] == "reproduced", result["reason"]
    (check,) = result["plan"]["data"]
    assert check["status"] == "ok" and check["source"] == "repository"
    assert check["path"] == recorded and not Path(recorded).exists()
    shown = json.loads(_cli(["show", run["id"], "--json"], tmp_path, env).stdout)["repro"]
    assert shown["verdict"] == "reproduced"
    assert shown["verdicts"][0]["details"]["forced"] is False


KILLED_SCRIPT = """\
import os
import signal
import sys
from pathlib import Path

import labledger

run = labledger.init(config={"steps": 40}, seed=11)
x = 1.0
for step in range(40):
    x = x * 0.9 + 0.01 * step
    run.log({"x": x}, step=step)
    if step == 24 and Path(sys.argv[1]).exists():
        run._capture_thread.join()  # the record (code, command) is written before the kill
        run.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # the original dies here; the reproduction goes on
run.summary["final"] = x
"""


def test_killed_run_is_compared_over_the_steps_it_recorded(project: Project) -> None:
    (project.repo / "killed.py").write_text(KILLED_SCRIPT)
    flag = project.other / "kill-me"
    flag.write_text("")
    res = subprocess.run(
        [sys.executable, "killed.py", str(flag)],
        cwd=project.repo,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == -9
    original = project.cli_json("ls", "--json")[0]
    assert original["status"] == "crashed"
    flag.unlink()

    dry = project.cli("repro", original["id"], "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        "caveat:   the original crashed (last step 24): it is compared only over the steps "
        "it recorded, the reproduction at those same steps" in dry.stdout
    )

    rc, result, err = project.repro(original["id"])
    assert rc == 0, (result["reason"], err[-2000:])
    assert result["verdict"] == "reproduced"
    rows = {m["key"]: m for m in result["metrics"]}
    assert rows["x"]["status"] == "identical" and rows["x"]["step"] == 24
    repro_run = project.cli_json("show", result["repro_run_id"], "--json")
    assert repro_run["status"] == "finished" and repro_run["summary"]["final"] is not None
    assert repro_run["metrics"]["x"]["last_step"] == 39  # it ran the whole script


def test_reproductions_are_left_out_of_best_export_and_pandas(project: Project) -> None:
    original_id = project.train()
    rc, result, err = project.repro(original_id)
    assert rc == 0, (result["reason"], err[-2000:])
    repro_id = result["repro_run_id"]
    shown = project.cli_json("show", repro_id, "--json")
    assert shown["job_type"] == "repro" and shown["parent_run_id"] == original_id
    assert shown["repro_of"] == original_id
    assert project.cli_json("show", original_id, "--json")["repro_of"] is None

    best = project.cli_json("best", "-m", "w0", "--json")
    assert [r["id"] for r in best] == [original_id]
    with_repro = project.cli_json("best", "-m", "w0", "--json", "--include-repro")
    assert {r["id"] for r in with_repro} == {original_id, repro_id}

    csv = project.cli("export", "--format", "json")
    assert csv.returncode == 0, csv.stderr
    assert [r["id"] for r in json.loads(csv.stdout)] == [original_id]
    both = project.cli("export", "--format", "json", "--include-repro")
    assert {r["id"] for r in json.loads(both.stdout)} == {original_id, repro_id}

    with Ledger(project.store_uri) as ledger:
        assert list(ledger.to_pandas()["id"]) == [original_id]
        assert set(ledger.to_pandas(include_repro=True)["id"]) == {original_id, repro_id}
        assert ledger.count() == 1 and ledger.count(include_repro=True) == 2
        assert [r["id"] for r in ledger.best("w0", mode="min")] == [original_id]
        (proj,) = ledger.projects()
        assert proj["runs"] == 1 and proj["repro_runs"] == 1
        # the runs themselves stay readable: ls and runs() list them with their job type
        assert {r["id"] for r in ledger.runs()} == {original_id, repro_id}


def test_a_child_seed_never_changes_its_parents(store_uri: str) -> None:
    parent = labledger.init("p", store=store_uri, seed=0, capture=False, system_metrics=False)
    child = labledger.init(
        "p",
        store=store_uri,
        parent_run_id=parent.id,
        seed=7,
        capture=False,
        system_metrics=False,
    )
    child.finish()
    # a later plain seed_everything goes to the newest active run, never over a parent's seed
    grandchild = labledger.init(
        "p", store=store_uri, parent_run_id=parent.id, capture=False, system_metrics=False
    )
    labledger.seed_everything(5)
    grandchild.finish()
    parent.finish()
    with Ledger(store_uri) as ledger:
        seeds = {r["id"]: (r["seed"], r["env"].get("seed", {}).get("seed")) for r in ledger.runs()}
    assert seeds[parent.id] == (0, 0)
    assert seeds[child.id] == (7, 7)
    assert seeds[grandchild.id] == (5, 5)
