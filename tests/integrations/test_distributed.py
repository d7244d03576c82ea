"""Distributed training makes exactly one run: rank 0 records, other ranks do not.

Two real CPU processes on the gloo back end: once through plain torch.distributed, once
through Lightning's DDP strategy (which starts the second process itself)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import EXAMPLES, ROOT, ledger

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # two processes each importing torch

TORCH_DIST = textwrap.dedent(
    """
    import os, sys
    import torch.distributed as dist
    import torch.multiprocessing as mp

    def worker(rank):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1])
        dist.init_process_group("gloo", rank=rank, world_size=2)
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression
        from labledger.integrations.sklearn import fit
        X, y = load_digits(return_X_y=True)
        fit(LogisticRegression(max_iter=50), X[:300] / 16, y[:300], project="ddp-torch", log_model=False)
        dist.barrier()
        dist.destroy_process_group()

    if __name__ == "__main__":
        mp.spawn(worker, nprocs=2)
    """
)

LIGHTNING_DDP = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import lightning_example

    if __name__ == "__main__":
        lightning_example.main(epochs=1, accelerator="cpu", devices=2, strategy="ddp")
    """
)


def _free_port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _run(script: Path, *args: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    out = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-4000:]


def test_torch_distributed_two_gloo_ranks_make_one_run(store: str, tmp_path: Path) -> None:
    script = tmp_path / "ddp_torch.py"
    script.write_text(TORCH_DIST)
    _run(script, _free_port(), cwd=tmp_path)
    runs = ledger(store).runs(project="ddp-torch")
    assert len(runs) == 1
    assert runs[0]["config"]["estimator_class"] == "LogisticRegression"


def test_lightning_ddp_two_cpu_processes_make_one_run(store: str, tmp_path: Path) -> None:
    script = tmp_path / "ddp_lightning.py"
    script.write_text(LIGHTNING_DDP)
    _run(script, str(EXAMPLES), cwd=tmp_path)
    runs = ledger(store).runs(project="integrations-lightning")
    assert len(runs) == 1, [(r["id"], r["status"]) for r in runs]
    assert runs[0]["status"] == "finished"
    config = runs[0]["config"]
    assert {k: v for k, v in config.items() if k != "trainer"} == {"lr": 0.05, "hidden": 16}
    assert config["trainer"]["num_devices"] == 2 and config["trainer"]["strategy"] == "DDPStrategy"
    # each rank sees half the data: 4 of 8 batches per epoch, logged once (by rank 0)
    assert len(ledger(store).history(runs[0]["id"], "train/loss")) == 4
