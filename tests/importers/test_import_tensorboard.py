"""``labledger import tensorboard`` on event files written by the real TensorBoard writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorboard")
pytest.importorskip("torch")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

ROOT = Path(__file__).resolve().parents[2]

# torch.utils.tensorboard.SummaryWriter, as training code uses it (in a subprocess)
WRITE_EVENTS = r"""
import json, sys, time
from torch.utils.tensorboard import SummaryWriter
logdir = sys.argv[1]
out = {}
for name, lr in [("run_a", 0.1), ("run_b", 0.001)]:
    w = SummaryWriter(f"{logdir}/{name}")
    pts = []
    for step in range(0, 300, 3):
        wall = 1_700_000_000.0 + step
        loss = lr * 100 / (step + 1)
        w.add_scalar("train/loss", loss, step, walltime=wall)
        pts.append([step, loss, wall])
    if name == "run_a":  # what labledger has no rich results for yet: counted, not dropped
        import numpy as np
        w.add_histogram("weights", np.arange(100.0), 0)
        w.add_image("sample", np.zeros((3, 8, 8)), 0)
        w.add_text("notes", "hello", 0)
    w.add_hparams({"lr": lr, "optimizer": "adam", "batch": 32, "amsgrad": False},
                  {"hparam/best_loss": pts[-1][1]}, run_name="hp")
    w.close()
    out[name] = pts
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("tb") / "mnist-logs"
    out = subprocess.run(
        [sys.executable, "-c", WRITE_EVENTS, str(d)], capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return d, json.loads(out.stdout.strip().splitlines()[-1])


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update({"PYTHONPATH": str(ROOT / "src"), "LABLEDGER_CONSOLE": "off"})
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_scalars_with_wall_times_and_hparams_are_imported_once(
    logdir: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    from labledger import Ledger

    folder, written = logdir
    target = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = cli("import", "tensorboard", str(folder), "--store", target, "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    # one run per training run: add_hparams' own folder joins the run it belongs to
    assert summary["runs"] == 2 and summary["errors"] == []
    assert summary["not_imported"] == {"histograms": 1, "images": 1, "text": 1}
    plain = cli("import", "tensorboard", str(folder), "--store", f"{target}-plain.db")
    assert plain.returncode == 0, plain.stderr
    assert "not imported" in plain.stderr and "1 histograms, 1 images, 1 text" in plain.stderr
    ledger = Ledger(target)  # SQLite: nothing to leak
    runs = {r["name"]: r for r in ledger.runs(project="mnist-logs")}
    assert set(runs) == {"run_a", "run_b"}
    assert runs["run_a"]["env"]["tensorboard"]["not_imported"] == {
        "histograms": 1,
        "images": 1,
        "text": 1,
    }
    assert runs["run_b"]["env"]["tensorboard"]["not_imported"] == {}
    for name, pts in written.items():
        run = runs[name]
        hist = ledger.history(run["id"], "train/loss")
        assert [p[0] for p in hist.to_list()] == [p[0] for p in pts]
        assert [p[1] for p in hist.to_list()] == pytest.approx([p[1] for p in pts], rel=1e-6)
        assert [p[2] for p in hist.to_list()] == pytest.approx([p[2] for p in pts])
        # the end is the last event: add_hparams (written after the curves, at the real
        # time, while the curves carry made-up wall times) now belongs to the run
        assert run["created_at"] <= pts[0][2] and run["ended_at"] >= pts[-1][2]
        hp = run
        assert hp["config"]["optimizer"] == "adam" and hp["config"]["batch"] == 32
        assert hp["config"]["amsgrad"] == 0  # torch writes a bool hparam as a number
        assert hp["summary"]["hparam/best_loss"] == pytest.approx(pts[-1][1], rel=1e-6)
    assert [r["name"] for r in ledger.runs(filter="config.lr < 0.01")] == ["run_b"]
    again = json.loads(
        cli("import", "tensorboard", str(folder), "--store", target, "--json").stdout
    )
    assert again["runs"] == 0 and again["skipped"] == 2
