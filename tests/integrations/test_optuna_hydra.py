"""Optuna (a study as parent and child runs, pruned trials) and Hydra (jobs, multirun group)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXAMPLES, ROOT, ledger, policy_missing

optuna = pytest.importorskip("optuna")


def _cli(store: str, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args, "--store", store],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_study_is_a_parent_run_with_one_child_per_trial(store: str, example: Any) -> None:
    study, parent = example("optuna_example").main(n_trials=12)
    L = ledger(store)
    rec = L.get(parent.id)
    assert (
        rec["status"] == "finished" and rec["job_type"] == "study" and rec["group"] == "quadratic"
    )
    assert rec["config"]["direction"] == "minimize"
    children = L.runs(filter=f'parent_run_id = "{parent.id}"')
    assert len(children) == 12
    by_trial = {c["summary"]["trial_number"]: c for c in children}
    expected = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed"}
    for t in study.trials:
        child = by_trial[t.number]
        assert child["status"] == expected[t.state.name]
        assert child["config"] == t.params
        assert child["job_type"] == "trial" and child["group"] == "quadratic"
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned, "the example's pruner should prune some of 12 trials"
    assert len(L.runs(filter=f'parent_run_id = "{parent.id}" and status = "pruned"')) == len(pruned)
    best = study.best_trial
    assert rec["summary"]["best_value"] == pytest.approx(best.value)
    assert rec["summary"]["best_run_id"] == by_trial[best.number]["id"]
    assert "best" in by_trial[best.number]["tags"]
    assert by_trial[best.number]["summary"]["value"] == pytest.approx(best.value)
    # show --json lists the children; ls --tree puts them under the study
    shown = json.loads(_cli(store, "show", parent.id, "--json"))
    assert {c["id"] for c in shown["children"]} == {c["id"] for c in children}
    assert shown["group"] == "quadratic" and shown["parent_run_id"] is None
    tree = _cli(store, "ls", "--tree", "--project", "integrations-optuna")
    lines = [ln for ln in tree.splitlines() if parent.id[:8] in ln or "│   └" in ln]
    assert parent.id[:8] in lines[0] and len([ln for ln in lines if "│   └" in ln]) == 12


def test_autolog_optuna_makes_trials_children_of_the_active_run(
    store: str, no_autolog: None
) -> None:
    import labledger

    labledger.autolog(["optuna"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with labledger.init("auto-optuna") as parent:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

        def objective(trial: Any) -> float:
            inner = labledger.active_run()  # the trial's child run is active while it runs
            assert inner is not None and inner.parent_run_id == parent.id
            x = trial.suggest_float("x", 0, 1)
            if x > 0.8:
                raise optuna.TrialPruned()
            return x

        study.optimize(objective, n_trials=5)
    children = ledger(store).runs(filter=f'parent_run_id = "{parent.id}"')
    assert len(children) == 5
    assert {c["status"] for c in children} <= {"finished", "pruned"}


def test_hydra_multirun_is_a_sweep_run_with_grouped_jobs(store: str, tmp_path: Path) -> None:
    pytest.importorskip("hydra")
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "hydra_app.py"),
            "-m",
            "lr=0.05,0.2",
            "model.depth=3",
            f"data.train={EXAMPLES / 'data' / 'points.csv'}",
            f"hydra.sweep.dir={tmp_path / 'multirun'}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = ledger(store).runs(project="integrations-hydra")
    assert len(runs) == 3, [r["name"] for r in runs]
    sweep = next(r for r in runs if r["job_type"] == "sweep")
    jobs = [r for r in runs if r["job_type"] == "hydra-job"]
    assert sweep["group"] == str(tmp_path / "multirun")
    assert all(j["group"] == sweep["group"] and j["parent_run_id"] == sweep["id"] for j in jobs)
    assert sorted(j["config"]["lr"] for j in jobs) == [0.05, 0.2]
    assert all(j["config"]["model"] == {"depth": 3} for j in jobs)
    assert all("hydra" not in j["config"] for j in jobs)
    assert sorted(j["config"]["hydra_overrides"][0] for j in jobs) == ["lr=0.05", "lr=0.2"]
    assert sorted(j["summary"]["return_value"] for j in jobs) == pytest.approx([0.0325, 0.04])
    assert all(r["status"] == "finished" for r in runs)
    # cfg.seed is every job's seed, the file cfg.data.train names its dataset "train";
    # the sweep's run carries them too: all pass --require seed --require dataset
    assert all(r["seed"] == 0 and policy_missing(r) == [] for r in runs)
    assert all([d["name"] for d in r["datasets"]] == ["train"] for r in runs)
    assert len(ledger(store).runs(filter=f'group = "{sweep["group"]}"')) == 3
