"""best, diff, compare, importance, export, ls and watch through the real CLI and the Python API."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from _qhelpers import insert, make_run
from click.testing import CliRunner

from labledger import Ledger
from labledger._exceptions import InvalidFilterError, UsageError
from labledger.cli import cli
from labledger.store import open_store


def _cli(uri: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--store", uri], catch_exceptions=False)
    return result


@pytest.fixture
def leaderboard_store(store: Any) -> Any:
    insert(
        store,
        [
            make_run(
                name="alpha",
                config={"lr": 0.1, "opt": "sgd"},
                metrics={"val_acc": [0.5, 0.7]},
                seed=1,
                env={
                    "git": {"commit": "c" * 40, "dirty": True, "diff_sha256": "d" * 64},
                    "packages": {"numpy": "1.0", "torch": "2.0"},
                    "python": {"version": "3.11.1"},
                },
                datasets=[{"name": "train", "sha256": "e" * 64, "size": 10, "path": "/d"}],
            ),
            make_run(
                name="bravo",
                config={"lr": 0.01, "opt": "adam"},
                metrics={"val_acc": [0.9]},
                seed=2,
                env={
                    "git": {"commit": "f" * 40, "dirty": False},
                    "packages": {"numpy": "1.1", "scipy": "1.0"},
                    "python": {"version": "3.11.2"},
                },
            ),
            make_run(
                name="charlie", config={"lr": 0.001, "opt": "adam"}, metrics={"val_acc": [math.nan]}
            ),
            make_run(
                name="delta",
                config={"lr": 0.001, "opt": "adam"},
                summary={"val_acc": 0.8},
                status="failed",
            ),
            make_run(name="echo", config={"lr": 0.5}),
        ],
    )
    return store


def test_best_ranks_numeric_values_with_provenance(leaderboard_store: Any) -> None:
    uri = leaderboard_store.uri
    out = _cli(uri, "best", "--metric", "val_acc", "--json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["name"] for r in rows] == [
        "bravo",
        "delta",
        "alpha",
    ]  # NaN and missing values are not ranked
    assert [r["rank"] for r in rows] == [1, 2, 3]
    a = rows[2]
    assert a["config"] == {"lr": 0.1, "opt": "sgd"}
    assert a["git_commit"] == "c" * 40 and a["git_dirty"] is True and a["patch_captured"] is True
    assert a["seed"] == 1 and a["datasets"] == [{"name": "train", "sha256": "e" * 64}]
    assert a["runtime_s"] == pytest.approx(10.0)
    low = json.loads(
        _cli(uri, "best", "--metric", "val_acc", "--min", "--top", "1", "--json").output
    )
    assert [r["name"] for r in low] == ["alpha"]
    adam = json.loads(
        _cli(uri, "best", "-m", "val_acc", "-f", 'status = "finished"', "--json").output
    )
    assert [r["name"] for r in adam] == ["bravo", "alpha"]
    table = _cli(uri, "best", "--metric", "val_acc")
    assert "cccccccc+dirty" in table.output and "dddddddd" in table.output


def test_best_reports_filter_errors_against_the_users_text(leaderboard_store: Any) -> None:
    with pytest.raises(InvalidFilterError) as info:
        Ledger(leaderboard_store, reap=False).best("val_acc", filter="status > 3")
    assert info.value.expression == "status > 3" and info.value.position == 9
    res = CliRunner().invoke(
        cli, ["best", "-m", "val_acc", "-f", "status >", "--store", leaderboard_store.uri]
    )
    assert res.exit_code != 0


def test_diff_shows_only_differences(leaderboard_store: Any) -> None:
    uri = leaderboard_store.uri
    d = json.loads(_cli(uri, "diff", "alpha", "bravo", "--json").output)
    keys = {e["key"] for e in d["config"]}
    assert keys == {"lr", "opt"}
    assert [e["key"] for e in d["summary"]] == ["val_acc"]
    assert d["seed"][0]["a"] == 1 and d["seed"][0]["b"] == 2
    assert d["datasets"][0]["only"] == "a"
    env = d["environment"]
    assert env["same"] is False
    assert env["packages"]["added"] == {"scipy": "1.0"} and env["packages"]["removed"] == {
        "torch": "2.0"
    }
    assert env["packages"]["changed"]["numpy"] == {"a": "1.0", "b": "1.1"}
    assert env["git"]["commit"] == {"a": "c" * 40, "b": "f" * 40}
    same = json.loads(_cli(uri, "diff", "charlie", "delta", "--json").output)
    assert same["config"] == []
    every = json.loads(_cli(uri, "diff", "charlie", "delta", "--all", "--json").output)
    assert {e["key"] for e in every["config"]} == {"lr", "opt"} and all(
        e["same"] for e in every["config"]
    )
    text = _cli(uri, "diff", "alpha", "bravo").output
    assert "numpy" in text and "scipy" in text and "lr" in text


def test_compare_puts_differing_keys_first(leaderboard_store: Any) -> None:
    uri = leaderboard_store.uri
    t = json.loads(_cli(uri, "compare", "bravo", "charlie", "delta", "--json").output)
    assert t["names"] == ["bravo", "charlie", "delta"]
    differs = [r["key"] for r in t["rows"] if r["differs"]]
    same = [r["key"] for r in t["rows"] if not r["differs"]]
    assert "config.lr" in differs and "config.opt" in same
    assert t["rows"][: len(differs)] == [r for r in t["rows"] if r["differs"]]
    assert "config.lr" in _cli(uri, "compare", "bravo", "charlie").output


def _synthetic(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    runs = []
    for _ in range(n):
        lr = 10 ** rng.uniform(-5, -1)  # strong: spans decades, should be log-scaled
        dropout = rng.uniform(0.0, 0.5)  # weak
        noise_key = rng.choice(["x", "y", "z"])  # no effect
        acc = 0.9 - 0.1 * abs(math.log10(lr) + 3) + 0.04 * dropout + rng.gauss(0, 0.003)
        cfg = {"lr": lr, "dropout": dropout, "noise": noise_key, "const": 7}
        if rng.random() < 0.1:
            del cfg["noise"]  # missing in some runs
        runs.append(make_run(config=cfg, metrics={"val_acc": [acc]}))
    return runs


def test_importance_ranks_strong_weak_and_irrelevant_keys(store: Any, tmp_path: Path) -> None:
    insert(store, _synthetic(200))
    items = Ledger(store, reap=False).importance("val_acc")
    by_key = {it["key"]: it for it in items}
    assert [it["key"] for it in items[:3]] == ["lr", "dropout", "noise"]
    assert (
        by_key["lr"]["importance"] > by_key["dropout"]["importance"] > by_key["noise"]["importance"]
    )
    assert by_key["lr"]["log_scale"] is True and by_key["dropout"]["log_scale"] is False
    assert by_key["dropout"]["spearman"] > 0  # a positive effect has a positive sign
    assert by_key["noise"]["kind"] == "categorical" and by_key["noise"]["missing"] > 0
    assert by_key["const"]["constant"] is True and by_key["const"]["importance"] == 0
    plot = tmp_path / "imp.png"
    res = _cli(store.uri, "importance", "--metric", "val_acc", "--plot", str(plot), "--json")
    assert res.exit_code == 0
    assert json.loads(res.output)[0]["key"] == "lr"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_importance_needs_enough_runs(store: Any) -> None:
    insert(store, _synthetic(3))
    with pytest.raises(UsageError, match="at least"):
        Ledger(store, reap=False).importance("val_acc")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_writes_one_row_per_run(leaderboard_store: Any, tmp_path: Path, fmt: str) -> None:
    import pandas as pd

    out = tmp_path / f"runs.{fmt}"
    res = _cli(
        leaderboard_store.uri,
        "export",
        "--format",
        fmt,
        "-o",
        str(out),
        "-f",
        'config.opt = "adam"',
        "--json",
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"path": str(out), "format": fmt, "runs": 3}
    df = {"csv": pd.read_csv, "parquet": pd.read_parquet, "json": pd.read_json}[fmt](out)
    assert sorted(df["name"]) == ["bravo", "charlie", "delta"]
    assert {"config.lr", "config.opt", "summary.val_acc", "id", "status"} <= set(df.columns)
    assert float(df.loc[df["name"] == "delta", "summary.val_acc"].iloc[0]) == pytest.approx(0.8)


def test_export_json_writes_non_finite_values_nested_in_lists(store: Any, tmp_path: Path) -> None:
    insert(store, [make_run(name="odd", config={"betas": [0.9, math.nan], "clip": math.inf})])
    out = Ledger(store, reap=False).export(tmp_path / "runs.json")
    (row,) = json.loads(out.read_text())
    assert row["config.betas"] == [0.9, "NaN"]
    assert row["config.clip"] == "Infinity"


def test_to_pandas_flattens_config_and_summary(leaderboard_store: Any) -> None:
    df = Ledger(leaderboard_store, reap=False).to_pandas(filter="config.lr <= 0.01")
    assert sorted(df["name"]) == ["bravo", "charlie", "delta"]
    assert set(df["config.opt"]) == {"adam"}


def test_ls_filter_sort_limit_columns(leaderboard_store: Any) -> None:
    uri = leaderboard_store.uri
    res = _cli(
        uri,
        "ls",
        "--filter",
        "config.lr < 0.2",
        "--sort",
        "-summary.val_acc",
        "--limit",
        "2",
        "--json",
    )
    assert [r["name"] for r in json.loads(res.output)] == ["bravo", "delta"]
    table = _cli(uri, "ls", "--sort", "config.lr", "--columns", "config.lr,summary.val_acc")
    assert "config.lr" in table.output and "0.001" in table.output
    bad = CliRunner().invoke(cli, ["ls", "--filter", "config.lr <<", "--store", uri])
    assert bad.exit_code != 0


def test_watch_follows_a_finished_run_to_its_end(leaderboard_store: Any) -> None:
    res = _cli(leaderboard_store.uri, "watch", "alpha", "--json", "--interval", "0.05")
    assert res.exit_code == 0, res.output
    snap = json.loads(res.output)
    assert (
        snap["status"] == "finished" and snap["metrics"] == {"val_acc": 0.7} and snap["step"] == 1
    )
    text = _cli(leaderboard_store.uri, "watch", "alpha")
    assert "val_acc" in text.output and "▁█" in text.output


def test_watch_follows_a_live_run(tmp_path: Path) -> None:
    import threading

    import labledger

    uri = f"sqlite:///{tmp_path / 'live.db'}"
    run = labledger.init("live", store=uri, capture=False)
    run.log({"loss": 1.0})
    run.flush()

    def finish_later() -> None:
        for i in range(5):
            run.log({"loss": 1.0 / (i + 2)})
        run.flush()
        run.finish()

    timer = threading.Timer(0.5, finish_later)
    timer.start()
    res = _cli(uri, "watch", run.id[:8], "--json", "--interval", "0.1", "--timeout", "20")
    timer.join()
    lines = [json.loads(chunk) for chunk in res.output.replace("}\n{", "}\x00{").split("\x00")]
    assert lines[0]["status"] == "running"
    assert lines[-1]["status"] == "finished" and lines[-1]["step"] == 5
    open_store(uri).close()


def test_sql_export_rows_equal_the_generic_rows(leaderboard_store: Any) -> None:
    from labledger.analysis import runs_to_rows, sql_export_rows

    ledger = Ledger(leaderboard_store, reap=False)
    for flt in (None, 'config.opt = "adam"'):
        fast = sql_export_rows(leaderboard_store, filter=flt)
        slow = runs_to_rows(ledger.runs(filter=flt))
        assert fast is not None
        for a, b in zip(fast, slow, strict=True):
            a.pop("runtime_s"), b.pop("runtime_s")
            assert json.dumps(a, sort_keys=True, default=str) == json.dumps(
                b, sort_keys=True, default=str
            )
