"""`labledger repro` end to end on a real git repository with uncommitted changes."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from _rhelpers import Project, git, make_data, tree_state


def test_repro_reproduces_metrics_exactly_from_the_patched_code(project: Project) -> None:
    original_id = project.train()
    original = project.cli_json("show", original_id, "--json")
    assert original["env"]["git"]["dirty"] is True
    assert original["summary"]["lr_used"] == 0.05  # the uncommitted edit was what ran
    before = tree_state(project.repo)

    rc, result, _ = project.repro(original_id[:8])

    assert rc == 0, result
    assert result["verdict"] == "reproduced"
    assert {m["key"]: m["status"] for m in result["metrics"]} == {
        "loss": "identical",
        "lr_used": "identical",
        "w0": "identical",
    }
    repro_run = project.cli_json("show", result["repro_run_id"], "--json")
    assert repro_run["parent_run_id"] == original_id
    assert repro_run["project"] == original["project"]

    # the results match; system/* (the machine's load, sampled once by a short run) is
    # not a result and may differ or be absent on either side
    def results(summary: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in summary.items() if not k.startswith("system/")}

    assert results(repro_run["summary"]) == results(original["summary"])
    assert set(results(original["summary"])) >= {"loss", "lr_used", "w0"}
    assert repro_run["seed"] == original["seed"]
    # the user's working tree, index, HEAD and worktree list are exactly as before
    assert tree_state(project.repo) == before
    # the verdict is stored on both runs and shown by show and ls
    assert project.cli_json("show", original_id, "--json")["repro"]["verdict"] == "reproduced"
    shown = project.cli_json("show", result["repro_run_id"], "--json")["repro"]
    assert (shown["verdict"], shown["role"], shown["reproduction_of"]) == (
        "reproduced",
        "reproduction",
        original_id,
    )
    listed = {r["id"]: r["repro"] for r in project.cli_json("ls", "--json")}
    assert listed == {original_id: "reproduced", result["repro_run_id"]: "reproduced"}
    table = project.cli("ls")
    assert "✓ reproduced" in table.stdout
    text = project.cli("show", original_id)
    assert "reproductions" in text.stdout and result["repro_run_id"][:8] in text.stdout


def test_committed_code_alone_would_not_reproduce(project: Project) -> None:
    """Guards the test above: without the patch the numbers differ, so 'identical' means the patch was applied."""
    original_id = project.train()
    original = project.cli_json("show", original_id, "--json")
    clean = project.repo.parent / "clean"
    git(project.repo, "worktree", "add", "-q", "--detach", str(clean), "HEAD")
    res = subprocess.run(
        [sys.executable, "train.py", str(project.data)],
        cwd=clean,
        env={**project.env, "LABLEDGER_REPRO_SEED": str(original["seed"])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    latest = project.cli_json("ls", "--json")[0]
    assert latest["summary"]["lr_used"] == 0.1
    assert latest["summary"]["loss"] != original["summary"]["loss"]


def test_dry_run_prints_the_plan_and_changes_nothing(project: Project) -> None:
    original_id = project.train()
    before = tree_state(project.repo)

    res = project.cli("repro", original_id, "--dry-run")

    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert f"git commit {git(project.repo, 'rev-parse', 'HEAD')[:12]} + uncommitted patch" in out
    assert "command:  python <checkout>/train.py" in out
    assert "data:     train: ok" in out
    assert "dry run: nothing was checked out or run" in out
    assert tree_state(project.repo) == before
    runs = project.cli_json("ls", "--json")
    assert [r["id"] for r in runs] == [original_id]
    assert runs[0]["repro"] is None  # nothing stored


def test_changed_dataset_stops_the_run_and_is_recorded(project: Project) -> None:
    original_id = project.train()
    make_data(project.data, seed=1)  # same path, other content

    rc, result, _ = project.repro(original_id)

    assert rc == 1
    assert result["verdict"] == "not-reproducible"
    assert "dataset train is changed" in result["reason"]
    assert result["repro_run_id"] is None
    assert [d["status"] for d in result["plan"]["data"]] == ["changed"]
    # nothing ran, so nothing is stored: a verdict exists only with its reproduction run
    assert project.cli_json("show", original_id, "--json")["repro"]["verdicts"] == []
    assert result["verdict_id"] is None and any(
        "no verdict is stored" in n for n in result["notes"]
    )
    assert len(project.cli_json("ls", "--json")) == 1  # nothing ran

    rc, forced, _ = project.repro(original_id, "--force")
    assert forced["repro_run_id"] is not None
    assert forced["verdict"] == "not-reproduced"  # other data, other numbers
    assert "forced past: dataset train is changed" in forced["reason"]
    stored = project.cli_json("show", original_id, "--json")["repro"]["verdicts"][0]
    assert stored["verdict"] == "not-reproduced" and stored["details"]["forced"]
    assert stored["details"]["data"][0]["status"] == "changed"
    assert stored["by"] == "t@example.com"  # who reproduced


def test_unseeded_run_is_not_reproducible_with_the_reason(project: Project) -> None:
    script = (project.repo / "train.py").read_text()
    unseeded = script.replace("seed = labledger.seed_everything()", "seed = None  # nobody seeds")
    (project.repo / "unseeded.py").write_text(unseeded)
    original_id = project.train("unseeded.py")

    rc, result, _ = project.repro(original_id)

    assert rc == 1
    assert result["verdict"] == "not-reproducible"
    assert "recorded no seed" in result["reason"]
    assert result["repro_run_id"] is None

    rc, forced, _ = project.repro(original_id, "--force")
    assert rc == 1
    assert forced["repro_run_id"] is not None
    assert forced["verdict"] == "not-reproduced"
    assert {m["key"]: m["status"] for m in forced["metrics"]}["w0"] == "differs"


def test_in_dir_keeps_the_checkout_with_the_patch_applied(project: Project) -> None:
    original_id = project.train()
    target = project.other / "checkout"

    rc, result, _ = project.repro(original_id, "--in", str(target))

    assert rc == 0 and result["verdict"] == "reproduced"
    assert (target / "train.py").read_text() == (project.repo / "train.py").read_text()
    assert (target / "helper.py").read_text() == (project.repo / "helper.py").read_text()
    again = project.cli("repro", original_id, "--in", str(target))
    assert again.returncode == 1
    assert "choose a new or empty directory" in again.stderr
    assert "Traceback" not in again.stderr


def test_falls_back_to_a_clone_of_the_remote_when_the_repository_is_gone(project: Project) -> None:
    bare = project.repo.parent / "remote.git"
    git(project.repo.parent, "clone", "-q", "--bare", str(project.repo), str(bare))
    git(project.repo, "remote", "add", "origin", str(bare))
    original_id = project.train()
    project.repo.rename(project.repo.parent / "moved-away")

    rc, result, _ = project.repro(original_id)

    assert result["plan"]["code"]["method"] == "clone"
    assert rc == 0 and result["verdict"] == "reproduced", result
