"""Citing a replicate set ("val_acc 0.902 ± 0.004 (mean ± std, n = 4 seeds; …)") and
checking it; the five-engineer scene from runs to a cited set."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import labledger
from labledger._author import local_author
from labledger.cli import cli


def _cli(uri: str, *args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "--store", uri], catch_exceptions=False)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, list[str]]]:
    """Five engineers, four seeds each of their configuration; eve's is ana's config
    with one more key (a code variant recorded as config: augment)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('cite') / 'ledger.db'}"
    rng = random.Random(22)
    people = {
        "ana": ({"lr": 0.1}, 0.902),
        "ben": ({"lr": 0.05}, 0.899),
        "cem": ({"lr": 0.3}, 0.880),
        "dia": ({"lr": 0.01}, 0.894),
        "eve": ({"lr": 0.1, "augment": "flip"}, 0.910),
    }
    ids: dict[str, list[str]] = {}
    mp = pytest.MonkeyPatch()
    try:
        for who, (cfg, mean) in people.items():
            mp.setenv("GIT_AUTHOR_EMAIL", f"{who}@lab")
            local_author.cache_clear()
            for seed in range(4):
                with labledger.init(
                    "lecture", store=uri, capture=False, config={**cfg, "seed": seed}, seed=seed
                ) as run:
                    run.summary["val_acc"] = round(rng.gauss(mean, 0.004), 5)
                ids.setdefault(who, []).append(run.id)
    finally:
        mp.undo()
        local_author.cache_clear()
    return uri, ids


def test_cite_a_replicate_set_and_check_it(scene: tuple[str, dict[str, list[str]]]) -> None:
    uri, ids = scene
    res = _cli(uri, "cite", ids["ana"][2], "--set", "--metric", "val_acc")
    assert res.exit_code == 0, res.output
    text = res.output.strip()
    assert text.startswith("val_acc 0.90") and "± 0.00" in text
    assert "(mean ± std, n = 4 seeds; runs " in text
    assert all(i[:12] in text for i in ids["ana"]) and ids["ben"][0][:12] not in text
    ok = _cli(uri, "check", f"We reach {text} on the test set.")
    assert ok.exit_code == 0 and ok.output.startswith("ok"), ok.output
    mean = text.split()[1]
    wrong = text.replace(mean, f"{float(mean) + 0.05:.3f}", 1)
    bad = _cli(uri, "check", wrong)
    assert bad.exit_code == 1 and "mean of val_acc is" in bad.output
    # a run of another configuration slipped into the list is not a replicate set
    forged = text.replace(ids["ana"][3][:12], ids["ben"][0][:12])
    bad = _cli(uri, "check", "--json", forged)
    problems = json.loads(bad.output)[0]["problems"]
    assert any("not one replicate set" in p for p in problems)
    assert any("is not the record of these runs" in p for p in problems)


def test_a_single_seed_is_not_cited_as_a_set(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'l.db'}"
    with labledger.init("p", store=uri, capture=False, config={"lr": 1}) as run:
        run.summary["val_acc"] = 0.9
    res = CliRunner().invoke(cli, ["cite", run.id, "--set", "-m", "val_acc", "--store", uri])
    assert res.exit_code == 1 and "one seed, noise unknown" in str(res.exception)


def test_five_engineers_board_importance_and_cited_winner(
    scene: tuple[str, dict[str, list[str]]],
) -> None:
    uri, _ids = scene
    rows = json.loads(_cli(uri, "best", "-m", "val_acc", "--by", "config", "--json").output)
    assert len(rows) == 5 and {r["n"] for r in rows} == {4}
    assert rows[0]["authors"] == ["eve@lab"] and rows[0]["config"]["augment"] == "flip"
    cem = next(r for r in rows if r["config"]["lr"] == 0.3)
    assert cem["tied_with_best"] is False
    imp = json.loads(_cli(uri, "importance", "-m", "val_acc", "--json").output)
    floor = imp[0]["noise_floor"]
    assert floor is not None and 0 < floor < 0.5 and {"lr", "augment"} <= {i["key"] for i in imp}
    cited = _cli(uri, "cite", rows[0]["runs"][0], "--set", "-m", "val_acc").output.strip()
    assert f"{rows[0]['mean']:.3f}" in cited and _cli(uri, "check", cited).exit_code == 0


def test_leaderboard_by_config_ranks_sealed_values_unless_amended(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'a.db'}"
    for lr, values in ((0.1, (0.80, 0.81)), (0.2, (0.70, 0.71))):
        for seed, v in enumerate(values):
            with labledger.init(
                "p", store=uri, capture=False, config={"lr": lr, "seed": seed}
            ) as run:
                run.summary["val_acc"] = v
    loser = run.id  # lr 0.2, seed 1
    res = _cli(uri, "edit", loser, "--summary", "val_acc=0.99", "--reason", "re-evaluated")
    assert res.exit_code == 0, res.output
    sealed = json.loads(_cli(uri, "best", "-m", "val_acc", "--by", "config", "--json").output)
    assert sealed[0]["config"]["lr"] == 0.1 and sealed[1]["mean"] == pytest.approx(0.705)
    amended = json.loads(
        _cli(uri, "best", "-m", "val_acc", "--by", "config", "--amended", "--json").output
    )
    assert amended[0]["config"]["lr"] == 0.2 and amended[0]["mean"] == pytest.approx(0.845)
