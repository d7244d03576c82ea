"""autolog(): the import hook, bad input, and that `import labledger` stays cheap."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import labledger

from .conftest import EXAMPLES, ROOT, ledger, one_run


@pytest.mark.slow
def test_autolog_patches_a_framework_imported_after_it(store: str, tmp_path: Path) -> None:
    # the example calls autolog() before importing xgboost: the import hook patches it
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "autolog_example.py")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rec = one_run(store, "integrations-autolog")
    assert rec["status"] == "finished"
    assert rec["config"]["max_depth"] == 3
    assert len(ledger(store).history(rec["id"], "validation_0-mlogloss")) == 8
    assert {a["name"] for a in ledger(store).get(rec["id"])["artifacts"]} == {
        "integrations-autolog-xgboost-model",  # <project>-<family>-model
        "feature_importance",
    }


def test_autolog_names_the_project_after_the_entry_script(store: str, tmp_path: Path) -> None:
    script = tmp_path / "train_digits.py"
    script.write_text(
        "import labledger\n"
        "labledger.autolog(['xgboost'])\n"
        "import numpy as np, xgboost as xgb\n"
        "X = np.arange(40.0).reshape(20, 2); y = (X[:, 0] > 20).astype(int)\n"
        "xgb.train({'objective': 'binary:logistic', 'nthread': 1}, xgb.DMatrix(X, label=y), 2)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LABLEDGER_PROJECT"}
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT / "src")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rec = one_run(store, "train_digits")  # not the folder's name
    assert rec["status"] == "finished" and rec["seed"] == 0  # the booster's own seed
    assert [d["name"] for d in rec["datasets"]] == ["train"]


def test_autolog_rejects_unknown_frameworks() -> None:
    with pytest.raises(labledger.UsageError, match="unknown framework 'tensorflow'"):
        labledger.autolog(["tensorflow"])
    with pytest.raises(labledger.UsageError, match="log_models"):
        labledger.autolog(["keras"], log_models="yes")  # type: ignore[arg-type]


def test_import_labledger_loads_no_integration_or_framework() -> None:
    code = (
        "import sys, labledger\n"
        "mods = ('labledger.integrations', 'torch', 'lightning', 'keras', 'transformers', "
        "'xgboost', 'lightgbm', 'sklearn', 'optuna', 'hydra')\n"
        "print(','.join(m for m in mods if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert out.stdout.strip() == ""
