"""``labledger import wandb`` on run directories written by the real ``wandb`` client.

The client runs in offline mode in a subprocess (no account, no network), as a training
script would use it: config, ``wandb.log`` with and without explicit steps, nested
dicts, a summary override, ``wandb.save``, a failed run, and a log cut short the way a
killed process leaves it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("wandb")

ROOT = Path(__file__).resolve().parents[2]

WRITE_RUNS = r"""
import json, math, sys, wandb
settings = wandb.Settings(x_stats_sampling_interval=0.1)
out = {}
run = wandb.init(project="digits", mode="offline", name="mlp-good", tags=["baseline", "mlp"],
                 notes="first try", group="sweep-1", job_type="train", settings=settings,
                 config={"lr": 0.01, "layers": [64, 32], "optim": {"name": "adam", "beta1": 0.9}})
run.config.update({"epochs": 30})
loss = []
for s in range(30):
    v = 1.0 / (s + 1)
    loss.append(v)
    wandb.log({"train/loss": v, "val": {"acc": s / 30}})
wandb.log({"test/acc": 0.93}, step=40)
run.summary["best_val_acc"] = 0.97
with open("model.pt", "wb") as f:
    f.write(b"weights" * 100)
wandb.save("model.pt", policy="now")
out["good"] = {"id": run.id, "loss": loss}
run.finish()

run = wandb.init(project="digits", mode="offline", name="mlp-bad", settings=settings,
                 config={"lr": 10.0})
for s in range(5):
    wandb.log({"train/loss": float(s)})
out["failed"] = {"id": run.id}
run.finish(exit_code=1)

run = wandb.init(project="digits", mode="offline", name="mlp-cut", settings=settings)
for s in range(200):
    wandb.log({"train/loss": 1.0 / (s + 1), "pad": "x" * 200})
out["cut"] = {"id": run.id}
run.finish()
print(json.dumps(out))
"""


def _git(cwd: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="Ada",
        GIT_AUTHOR_EMAIL="ada@example.com",
        GIT_COMMITTER_NAME="Ada",
        GIT_COMMITTER_EMAIL="ada@example.com",
    )
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    work = tmp_path_factory.mktemp("wb") / "project"
    work.mkdir()
    _git(work, "init", "-q")
    (work / "train.py").write_text(WRITE_RUNS)
    _git(work, "add", "train.py")
    _git(work, "commit", "-q", "-m", "train")
    commit = _git(work, "rev-parse", "HEAD")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "LABLEDGER_"))}
    env.update(
        {
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "WANDB_DIR": str(work),
            "WANDB_CONFIG_DIR": str(work / ".wbconfig"),
            "WANDB_CACHE_DIR": str(work / ".wbcache"),
            "WANDB_DATA_DIR": str(work / ".wbdata"),
            "HOME": str(work),
        }
    )
    out = subprocess.run(
        [sys.executable, "train.py"], cwd=work, env=env, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    written = json.loads(out.stdout.strip().splitlines()[-1])
    # the third run's log cut in the middle of a record, as a SIGKILL leaves it
    cut = next((work / "wandb").glob(f"offline-run-*-{written['cut']['id']}"))
    log = next(cut.glob("run-*.wandb"))
    data = log.read_bytes()
    log.write_bytes(data[: len(data) // 2 + 3])
    return work / "wandb", written, commit


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update({"PYTHONPATH": str(ROOT / "src"), "LABLEDGER_CONSOLE": "off"})
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )


def _by_name(store: str) -> dict[str, dict[str, Any]]:
    from labledger import Ledger

    return {r["name"]: r for r in Ledger(store).runs(project="digits")}


def test_import_keeps_config_history_summary_git_and_files(
    wandb_dir: tuple[Path, dict[str, Any], str], store_uri: str, tmp_path: Path
) -> None:
    from labledger import Ledger

    src, written, commit = wandb_dir
    out = cli("import", "wandb", str(src), "--store", store_uri, "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["runs"] == 3 and summary["skipped"] == 0 and summary["errors"] == []
    runs = _by_name(store_uri)
    good = runs["mlp-good"]
    assert good["status"] == "finished"
    assert good["config"] == {
        "lr": 0.01,
        "layers": [64, 32],
        "optim": {"name": "adam", "beta1": 0.9},
        "epochs": 30,
    }
    assert sorted(good["tags"]) == ["baseline", "mlp"]
    assert good["notes"] == "first try"
    assert good["group"] == "sweep-1" and good["job_type"] == "train"
    assert good["env"]["git"]["commit"] == commit
    assert good["env"]["wandb"]["run_id"] == written["good"]["id"]
    assert good["env"]["command"]["argv"][0].endswith("train.py")
    ledger = Ledger(store_uri)
    hist = ledger.history(good["id"], "train/loss")
    assert hist.steps.tolist() == list(range(30))
    assert hist.values.tolist() == pytest.approx(written["good"]["loss"])
    assert (hist.timestamps >= good["created_at"] - 1).all()
    val = ledger.history(good["id"], "val/acc")
    assert val.values.tolist()[-1] == pytest.approx(29 / 30)
    assert ledger.history(good["id"], "test/acc").steps.tolist() == [40]
    # a summary value the history does not give is kept; the rest come from the series
    assert good["summary"]["best_val_acc"] == pytest.approx(0.97)
    assert good["summary"]["train/loss"] == pytest.approx(1 / 30)
    assert any(k.startswith("system/wandb/") for k in good["summary"])
    # wandb.save's file is an artifact with its bytes
    got = cli(
        "artifacts", "get", "digits/model.pt:v0", "-o", str(tmp_path / "dl"), "--store", store_uri
    )
    assert got.returncode == 0, got.stderr
    files = [p for p in (tmp_path / "dl").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in files] == [b"weights" * 100]

    failed = runs["mlp-bad"]
    assert failed["status"] == "failed" and failed["exit_code"] == 1
    assert ledger.history(failed["id"], "train/loss").values.tolist() == [0, 1, 2, 3, 4]

    # the cut log: what came before the damage, and no exit record -> crashed
    cut = runs["mlp-cut"]
    assert cut["status"] == "crashed" and cut["ended_at"] is None
    cut_loss = ledger.history(cut["id"], "train/loss")
    assert 0 < len(cut_loss) < 200
    assert cut_loss.values.tolist() == pytest.approx([1 / (s + 1) for s in range(len(cut_loss))])
    assert cut["env"]["wandb"]["skipped_values"] >= len(cut_loss)  # the "pad" strings


def test_import_is_idempotent_and_project_can_be_renamed(
    wandb_dir: tuple[Path, dict[str, Any], str], store_uri: str
) -> None:
    from labledger.importers import import_wandb

    src, _, _ = wandb_dir
    first = import_wandb(src, store_uri, project="digits-wb")
    assert first.runs == 3 and not first.errors
    again = import_wandb(src, store_uri, project="digits-wb")
    assert again.runs == 0 and again.skipped == 3 and again.points == 0
    from labledger import Ledger

    assert len(Ledger(store_uri).runs(project="digits-wb")) == 3


def test_one_run_directory_and_a_folder_without_runs(
    wandb_dir: tuple[Path, dict[str, Any], str], store_uri: str, tmp_path: Path
) -> None:
    src, written, _ = wandb_dir
    one = next(src.glob(f"offline-run-*-{written['failed']['id']}"))
    out = cli("import", "wandb", str(one), "--store", store_uri, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["runs"] == 1
    empty = tmp_path / "nothing"
    empty.mkdir()
    bad = cli("import", "wandb", str(empty), "--store", store_uri)
    assert bad.returncode != 0
    assert "no W&B run directories" in bad.stderr


def test_reader_refuses_a_file_that_is_not_a_log(tmp_path: Path) -> None:
    from labledger.importers._wandb import WandbLogError, read_records

    p = tmp_path / "run-x.wandb"
    p.write_bytes(b"not a log at all")
    with pytest.raises(WandbLogError, match="not a W&B transaction log"):
        list(read_records(p))
