"""Replicate sets, the honest leaderboard (best --by config) and provenance columns."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from _qhelpers import insert, make_run
from click.testing import CliRunner

from labledger import Ledger
from labledger.analysis import ONE_SEED, config_leaderboard, replicate_sets, seed_keys
from labledger.cli import cli

C1, C2 = "a" * 40, "b" * 40
DATA = [{"name": "train", "sha256": "e" * 64}]


def _run(
    acc: float,
    *,
    config: dict[str, Any],
    seed: int | None = None,
    commit: str = C1,
    patch: str | None = None,
    data: list[dict[str, Any]] | None = None,
    author: str | None = None,
) -> dict[str, Any]:
    r = make_run(
        config=config,
        summary={"val_acc": acc},
        seed=seed,
        env={"git": {"commit": commit, "dirty": patch is not None, "diff_sha256": patch}},
        datasets=DATA if data is None else data,
    )
    r["author"] = author
    return r


def test_runs_differing_only_in_seed_form_one_replicate_set() -> None:
    runs = [
        _run(0.9, config={"lr": 0.1, "seed": 1}, seed=1),
        _run(0.9, config={"lr": 0.1, "seed": 2}, seed=2),
        _run(0.9, config={"lr": 0.1, "train": {"random_state": 7}}, seed=3),  # nested seed key
        _run(0.9, config={"lr": 0.2, "seed": 1}),  # another config
        _run(0.9, config={"lr": 0.1, "seed": 4}, commit=C2),  # another commit
        _run(0.9, config={"lr": 0.1, "seed": 5}, patch="p" * 64),  # uncommitted change
        _run(0.9, config={"lr": 0.1}, data=[{"name": "train", "sha256": "f" * 64}]),  # data
        _run(0.9, config={"lr": 0.1}, data=[{"name": "train", "sha256": "f" * 64}]),
    ]
    sets = replicate_sets(runs)
    assert [len(s.runs) for s in sets] == [3, 1, 1, 1, 2]
    assert sets[0].run_ids == [r["id"] for r in runs[:3]]
    assert sets[0].seeds == [1, 2, 3]
    assert sets[0].identity["config"] == {"lr": 0.1}


def test_seed_keys_are_configurable() -> None:
    assert "random_state" in seed_keys({})
    assert seed_keys({"LABLEDGER_SEED_KEYS": "init_seed, Shuffle"}) == ("init_seed", "shuffle")
    runs = [
        _run(0.9, config={"lr": 0.1, "init_seed": 1}),
        _run(0.9, config={"lr": 0.1, "init_seed": 2}),
    ]
    assert len(replicate_sets(runs)) == 2
    assert len(replicate_sets(runs, ("init_seed",))) == 1


def _draw(rng: random.Random, mean: float, lr: float, n: int = 5) -> list[dict[str, Any]]:
    return [_run(rng.gauss(mean, 0.01), config={"lr": lr, "seed": s}, seed=s) for s in range(n)]


@pytest.mark.parametrize("draw", range(8))
def test_equal_true_means_are_tied_and_a_clearly_worse_one_is_not(draw: int) -> None:
    rng = random.Random(1000 + draw)  # seeded: the test is deterministic
    runs = _draw(rng, 0.90, 0.1) + _draw(rng, 0.90, 0.2) + _draw(rng, 0.86, 0.3)
    rows = config_leaderboard(runs, "val_acc")
    by_lr = {r["config"]["lr"]: r for r in rows}
    assert {r["n"] for r in rows} == {5}
    assert by_lr[0.3]["rank"] == 3 and by_lr[0.3]["tied_with_best"] is False
    assert by_lr[0.1]["tied_with_best"] and by_lr[0.2]["tied_with_best"]
    for r in rows:
        assert r["ci_low"] < r["mean"] < r["ci_high"]
        assert r["std"] > 0


def test_a_single_seed_says_noise_unknown() -> None:
    rows = config_leaderboard(
        [_run(0.91, config={"lr": 0.1}), *_draw(random.Random(1), 0.88, 0.2, n=3)], "val_acc"
    )
    assert rows[0]["n"] == 1 and rows[0]["note"] == ONE_SEED
    assert rows[0]["std"] is None and rows[0]["ci_low"] is None
    assert rows[1]["tied_with_best"] is None  # the top has no spread to test against


def test_min_mode_ranks_the_lowest_mean_first() -> None:
    runs = _draw(random.Random(2), 0.3, 0.1) + _draw(random.Random(3), 0.5, 0.2)
    rows = config_leaderboard(runs, "val_acc", mode="min")
    assert rows[0]["config"]["lr"] == 0.1 and rows[1]["tied_with_best"] is False


def _five_engineers() -> list[dict[str, Any]]:
    """Five engineers, four runs each (four seeds of one configuration per person); the
    fifth changed the code (an uncommitted patch) with the same config as the first."""
    rng = random.Random(5)
    runs = []
    people = [("ana", 0.1, 0.902, None), ("ben", 0.05, 0.899, None), ("cem", 0.2, 0.88, None)]
    people += [("dia", 0.01, 0.895, None), ("eli", 0.1, 0.91, "p" * 64)]
    for who, lr, mean, patch in people:
        for seed in range(4):
            runs.append(
                _run(
                    rng.gauss(mean, 0.004),
                    config={"lr": lr, "seed": seed},
                    seed=seed,
                    patch=patch,
                    author=f"{who}@lab",
                )
            )
    return runs


def test_five_engineers_end_to_end_through_the_cli(store: Any, any_store_uri: str) -> None:
    runs = _five_engineers()
    insert(store, runs)
    res = CliRunner().invoke(
        cli,
        ["best", "--metric", "val_acc", "--by", "config", "--json", "--store", any_store_uri],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 5 and all(r["n"] == 4 for r in rows)
    for key in ("config", "mean", "std", "n", "ci_low", "ci_high", "tied_with_best", "runs"):
        assert all(key in r for r in rows)
    assert rows[0]["patch_sha256"] == "p" * 64  # the code variant is its own configuration
    assert rows[0]["authors"] == ["eli@lab"]
    assert {r["config"]["lr"] for r in rows if r["tied_with_best"] is False} >= {0.2}
    assert sum(len(r["runs"]) for r in rows) == 20
    table = CliRunner().invoke(
        cli, ["best", "-m", "val_acc", "--by", "config", "--store", any_store_uri]
    )
    assert table.exit_code == 0 and "±" in table.output and "worse" in table.output
    # the Python API gives the same rows; reproductions stay out by default
    ledger = Ledger(store, reap=False)
    assert [r["set"] for r in ledger.leaderboard("val_acc")] == [r["set"] for r in rows]


def test_export_and_to_pandas_carry_provenance_columns(store: Any, tmp_path: Any) -> None:
    runs = _five_engineers()[:6]
    insert(store, runs)
    ledger = Ledger(store, reap=False)
    df = ledger.to_pandas()
    for col in ("commit", "dirty", "patch_sha256", "datasets", "seed", "author"):
        assert col in df.columns
    assert "replicate_set" in df.columns and "repro_verdict" in df.columns
    assert set(df["commit"]) == {C1}
    assert set(df["datasets"]) == {f"train={'e' * 64}"}
    assert df["replicate_set"].nunique() == 2  # ana's four seeds, ben's two
    out = ledger.export(tmp_path / "runs.json")
    rows = json.loads(out.read_text())
    assert {r["author"] for r in rows} == {"ana@lab", "ben@lab"}
    assert {r["replicate_set"] for r in rows} == set(df["replicate_set"])
    assert all(r["dirty"] is False for r in rows)


def test_importance_reports_the_seed_noise_floor_and_code_factors() -> None:
    from labledger.analysis import importance

    runs = _five_engineers()
    items = importance(runs, "val_acc")
    by_key = {it["key"]: it for it in items}
    assert by_key["git.patch"]["source"] == "code" and by_key["git.patch"]["kind"] == "categorical"
    assert "git.commit" not in by_key  # the same commit everywhere: not a factor
    floor = by_key["lr"]["noise_floor"]
    assert floor is not None and 0 < floor < 0.3  # seed noise 0.004 against 0.88..0.91
    assert all(it["noise_floor"] == floor for it in items)
    # pure noise: every run one configuration, the floor is the whole variance
    rng = random.Random(9)
    noise = [_run(rng.gauss(0.9, 0.01), config={"lr": 0.1, "seed": s}, seed=s) for s in range(8)]
    noise += [_run(0.9, config={"lr": 0.1, "x": 1, "seed": 1})]
    assert importance(noise, "val_acc")[0]["noise_floor"] == 1.0


def test_changed_packages_and_data_are_factors() -> None:
    from labledger.analysis._importance import code_factors

    a = _run(0.9, config={})
    a["env"]["packages"] = {"numpy": "1.0", "torch": "2.0"}
    b = _run(0.9, config={}, data=[{"name": "train", "sha256": "f" * 64}])
    b["env"]["packages"] = {"numpy": "1.0", "torch": "2.1", "timm": "1.0"}
    fa, fb = code_factors([a, b])
    assert fa["packages.torch"] == "2.0" and fb["packages.torch"] == "2.1"
    assert fa["packages.timm"] is None and "packages.numpy" not in fa
    assert fa["data.train"] != fb["data.train"]


def test_seed_keys_are_not_importance_factors() -> None:
    from labledger.analysis import importance

    keys = {it["key"] for it in importance(_five_engineers(), "val_acc")}
    assert "seed" not in keys and "lr" in keys
