"""The Lightning logger against real Lightning (CPU, generated data)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import artifacts_of, ledger, one_run, policy_missing, series

pl = pytest.importorskip("lightning.pytorch")


def test_logger_records_hparams_step_and_epoch_metrics_and_checkpoint(
    store: str, example: Any
) -> None:
    run = example("lightning_example").main(epochs=2)
    run.flush()
    rec = one_run(store, "integrations-lightning")
    assert {k: v for k, v in rec["config"].items() if k != "trainer"} == {"lr": 0.05, "hidden": 16}
    assert rec["job_type"] == "train"
    steps = [s for s, _ in series(store, rec["id"], "train/loss")]
    assert steps == list(range(16))  # 8 batches x 2 epochs, at the trainer's global step
    assert [v for _, v in series(store, rec["id"], "epoch")][-1] == 1.0
    assert len(series(store, rec["id"], "val/loss")) == 2
    # finalize() flushed but did not finish: a later log_model works (the trap)
    assert rec["status"] == "running"
    run.log_model(__file__, name="extra")
    run.finish()
    rec = ledger(store).get(run.id)
    assert rec["status"] == "finished"
    model = "integrations-lightning-Regressor-model"  # <project>-<family>-model
    assert {a["name"] for a in rec["artifacts"]} >= {model, "extra"}
    assert artifacts_of(store, rec["id"])[model]["kind"] == "model"
    # L.seed_everything(7) before the logger, the Trainer's settings, the loaders' data
    assert rec["seed"] == 7 and rec["env"]["seed"]["seeded"] == ["lightning.seed_everything"]
    assert rec["config"]["trainer"]["max_epochs"] == 2
    assert rec["config"]["trainer"]["accumulate_grad_batches"] == 1
    assert rec["config"]["trainer"]["precision"] == "32-true"
    data = {d["name"]: d for d in rec["datasets"]}
    assert set(data) == {"train", "validation"} and data["train"]["kind"] == "torch"
    assert data["train"]["shape"] == [[256, 4], [256, 1]]
    assert policy_missing(rec) == []


def test_log_model_all_logs_every_checkpoint(store: str, example: Any) -> None:
    from labledger.integrations.lightning import LabledgerLogger

    mod = example("lightning_example")
    logger = LabledgerLogger(project="ckpt", log_model="all")
    ckpt = pl.callbacks.ModelCheckpoint(save_top_k=-1, every_n_epochs=1)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=logger,
        callbacks=[ckpt],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(mod.Regressor(), mod.data())
    logger.finish()
    rec = one_run(store, "ckpt")
    versions = [
        a for a in ledger(store).get(rec["id"])["artifacts"] if a["name"] == "ckpt-Regressor-model"
    ]
    assert rec["status"] == "finished"
    assert versions  # the latest version listed; both checkpoints were logged as versions
    assert max(int(a["version"]) for a in versions) >= 1


def _weights(model: Any) -> list[Any]:
    return [p.detach().clone() for p in model.parameters()]


def test_autolog_adds_the_logger_and_does_not_change_training(
    store: str, example: Any, no_autolog: None
) -> None:
    import torch

    import labledger

    mod = example("lightning_example")

    def train() -> Any:
        pl.seed_everything(0, verbose=False)
        model = mod.Regressor()
        trainer = pl.Trainer(
            max_epochs=1,
            logger=False,
            enable_checkpointing=False,
            log_every_n_steps=1,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(model, mod.data())
        return model

    plain = _weights(train())
    labledger.autolog(["lightning"])
    with labledger.init("auto-lightning") as run:
        tracked = _weights(train())
    assert all(torch.equal(a, b) for a, b in zip(plain, tracked, strict=False))
    rec = ledger(store).get(run.id)
    assert rec["config"]["lr"] == 0.05
    assert "train/loss" in rec["summary"]
