"""``labledger demo``: a real grid on scikit-learn's digits, ending with the leaderboard."""

from __future__ import annotations

import json
import re
from typing import Any

from .conftest import Script

GRID_KEYS = ("lr", "hidden", "activation", "batch_size", "optimizer")


def test_demo_trains_a_grid_and_prints_the_leaderboard(
    script: Script, store_uri: str, ledger_of: Any
) -> None:
    epochs = 2  # the default is 20; two keep the test short and still show per-epoch series
    out = script.cli(
        "demo", "--runs", "6", "--epochs", str(epochs), "--store", store_uri, env={"COLUMNS": "200"}
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr

    led = ledger_of(store_uri)
    runs = led.runs(project="digits-demo")
    assert len(runs) == 6
    assert {r["status"] for r in runs} == {"finished"}
    # a grid over learning rate, hidden size, activation, batch size and optimizer
    for key in GRID_KEYS:
        assert len({r["config"][key] for r in runs}) >= 2, key
    assert len({tuple(r["config"][k] for k in GRID_KEYS) for r in runs}) == 6

    for r in runs:
        full = led.get(r["id"])
        for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
            h = led.history(r["id"], key)
            assert h.steps.tolist() == list(range(epochs)), key  # one point per epoch
        s = full["summary"]
        assert 0.0 <= s["test_acc"] <= 1.0 and 0.0 <= s["test_f1_macro"] <= 1.0
        assert "train_time_s" not in s and full["runtime_s"] > 0  # wall time is no result
        assert full["seed"] is not None  # every demo run is seeded
        assert s["test_acc"] > 0.2  # real training on 10 classes beats chance (0.1)

    best = max(runs, key=lambda r: (r["summary"]["test_acc"], r["summary"]["test_f1_macro"]))
    text = out.stdout
    # leaderboard rows, best first, in test_acc order
    rows = re.findall(r"│\s*(\d+)\s*│\s*([0-9a-f]{8})\s*│\s*([0-9.]+)\s*│", text)
    assert [int(n) for n, _, _ in rows] == list(range(1, 7))
    assert rows[0][1] == best["id"][:8]
    accs = [float(a) for _, _, a in rows]
    assert accs == sorted(accs, reverse=True)
    # the best run with its full id and its exact config, then how to look further
    assert f"best run {best['id']}" in text
    (cfg_line,) = [line for line in text.splitlines() if line.startswith("exact config: ")]
    assert json.loads(cfg_line.removeprefix("exact config: ")) == best["config"]
    assert "labledger ls --project digits-demo" in text
    assert f"labledger show {best['id'][:8]}" in text


def test_demo_usage_errors_exit_2(script: Script, store_uri: str) -> None:
    for args in (["--runs", "0"], ["--runs", "9"], ["--epochs", "zero"]):
        out = script.cli("demo", *args, "--store", store_uri)
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr
