"""labledger replicate RUN --seeds K: the recorded code and data with new seeds; the new
runs join the run's replicate set (real git, real subprocesses, the real CLI)."""

from __future__ import annotations

import json

from _rhelpers import Project

from labledger.repro._replicate import new_seeds, rewrite_seed_args


def test_new_seeds_skip_the_used_ones_and_seed_arguments_are_rewritten() -> None:
    assert new_seeds([0, 2, None], 3) == [1, 3, 4]
    assert rewrite_seed_args(["--seed", "7", "--lr", "1"], 3, ["seed"]) == [
        "--seed",
        "3",
        "--lr",
        "1",
    ]
    assert rewrite_seed_args(["--random-state=7", "x"], 4, ["random_state"]) == [
        "--random-state=4",
        "x",
    ]


def test_replicate_runs_new_seeds_that_join_the_replicate_set(project: Project) -> None:
    original_id = project.train()
    original = project.cli_json("show", original_id, "--json")
    res = project.cli("replicate", original_id[:8], "--seeds", "2", "-m", "w0", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert len(out["runs"]) == 2 and out["failed"] == []
    assert original["seed"] not in out["seeds"]
    for rid, seed in zip(out["runs"], out["seeds"], strict=True):
        run = project.cli_json("show", rid, "--json")
        assert run["seed"] == seed
        assert run.get("job_type") != "repro" and run.get("parent_run_id") is None
        assert run["summary"]["lr_used"] == original["summary"]["lr_used"]  # the patched code
        assert run["env"]["git"]["commit"] == original["env"]["git"]["commit"]
    assert out["set"]["n"] == 3 and set(out["set"]["runs"]) == {original_id, *out["runs"]}
    assert out["set"]["std"] > 0  # other seeds, other draws
    rows = project.cli_json("best", "-m", "w0", "--by", "config", "--json")
    assert [r["n"] for r in rows] == [3]
