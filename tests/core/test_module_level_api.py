"""W&B habits: ``labledger.log``, ``labledger.config``, ``labledger.summary`` and
``labledger.finish`` act on the active run, and say what to do when there is none."""

from __future__ import annotations

import pytest

import labledger


def test_module_level_calls_without_a_run_name_init() -> None:
    with pytest.raises(labledger.NoActiveRunError, match=r"labledger\.init"):
        labledger.log({"loss": 1.0})
    with pytest.raises(labledger.NoActiveRunError, match=r"labledger\.config needs"):
        _ = labledger.config
    assert not hasattr(labledger, "summary")  # an AttributeError too, for introspection
    assert isinstance(labledger.NoActiveRunError("log"), labledger.UsageError)
    labledger.finish()  # nothing going: a no-op, so a script's last line never fails


def test_module_level_calls_act_on_the_active_run(store_uri: str) -> None:
    run = labledger.init("habits", store=store_uri, config={"lr": 0.1})
    labledger.config["batch_size"] = 32
    labledger.config.update({"epochs": 3})
    for step in range(3):
        labledger.log({"loss": 1.0 / (step + 1)})
    labledger.log({"val/acc": 0.8}, step=10)
    labledger.summary["best_acc"] = 0.9
    assert labledger.config is run.config
    labledger.finish()
    assert labledger.active_run() is None
    rec = labledger.Ledger(store_uri).get(run.id)
    assert rec["status"] == "finished"
    assert rec["config"] == {"lr": 0.1, "batch_size": 32, "epochs": 3}
    assert rec["summary"]["best_acc"] == 0.9
    hist = labledger.Ledger(store_uri).history(run.id, "loss")
    assert hist.steps.tolist() == [0, 1, 2]
    assert labledger.Ledger(store_uri).history(run.id, "val/acc").steps.tolist() == [10]


def test_finish_passes_the_status(store_uri: str) -> None:
    run = labledger.init("habits", store=store_uri)
    labledger.log({"loss": 2.0})
    labledger.finish("killed")
    assert labledger.Ledger(store_uri).get(run.id)["status"] == "killed"
