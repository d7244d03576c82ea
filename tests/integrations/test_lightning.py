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


class _Classifier(pl.LightningModule):  # type: ignore[misc]
    """Three classes from 4 features; validation_step returns its logits and targets."""

    def __init__(self) -> None:
        super().__init__()
        import torch

        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
        )

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        import torch

        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        import torch

        x, y = batch
        logits = self.net(x)
        self.log("val/loss", torch.nn.functional.cross_entropy(logits, y))
        return {"preds": logits, "target": y}

    def configure_optimizers(self) -> Any:
        import torch

        return torch.optim.Adam(self.parameters(), lr=0.05)


def _class_data(n: int, seed: int, classes: int) -> Any:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long() if classes == 3 else (x[:, 0] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=16)


def _media(store: str, run_id: str) -> dict[str, list[dict[str, Any]]]:
    by_key: dict[str, list[dict[str, Any]]] = {}
    for m in ledger(store).media(run_id):
        by_key.setdefault(m["key"], []).append(m)
    return by_key


def test_evaluation_callback_logs_confusion_matrix_and_histograms_per_epoch(store: str) -> None:
    import json

    import numpy as np

    from labledger.integrations.lightning import LabledgerEvaluation, LabledgerLogger

    pl.seed_everything(3)
    logger = LabledgerLogger(project="lightning-media", log_model=False)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=logger,
        callbacks=[LabledgerEvaluation(labels=["a", "b", "c"], log_histograms=True)],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=2,
    )
    trainer.fit(_Classifier(), _class_data(128, 0, 3), _class_data(64, 1, 3))
    run = logger.experiment
    logger.finish()
    media = _media(store, run.id)
    val_steps = [s for s, _ in series(store, run.id, "val/loss")]
    assert len(val_steps) == 2
    # one matrix per validation epoch at the step of val/loss; the sanity check left out
    cms = media["val/confusion_matrix"]
    assert [m["step"] for m in cms] == val_steps and cms[0]["kind"] == "confusion_matrix"
    body = json.loads(ledger(store).media_bytes(run.id, cms[-1]))
    assert body["labels"] == ["a", "b", "c"] and np.array(body["matrix"]).shape == (3, 3)
    assert int(np.sum(body["matrix"])) == 64
    assert "val/roc_curve" not in media  # three classes: no binary curve
    hist = sorted(k for k in media if k.startswith("weights/"))
    assert hist == [
        "weights/net.0.bias",
        "weights/net.0.weight",
        "weights/net.2.bias",
        "weights/net.2.weight",
    ]
    steps = [m["step"] for m in media["weights/net.0.weight"]]  # after each training epoch
    assert len(steps) == 2 and val_steps[0] <= steps[0] < val_steps[1] <= steps[1]
    assert media["weights/net.0.weight"][0]["meta"]["count"] == 32


def test_binary_outputs_give_pr_and_roc_curves(store: str) -> None:
    from labledger.integrations.lightning import LabledgerEvaluation, LabledgerLogger

    class Binary(_Classifier):
        def __init__(self) -> None:
            super().__init__()
            import torch

            self.net = torch.nn.Sequential(torch.nn.Linear(4, 2))

    pl.seed_everything(4)
    logger = LabledgerLogger(project="lightning-binary", log_model=False)
    trainer = pl.Trainer(
        max_epochs=3,
        logger=logger,
        callbacks=[LabledgerEvaluation(every_n_epochs=2, max_predictions=40)],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(Binary(), _class_data(128, 0, 2), _class_data(64, 1, 2))
    run = logger.experiment
    logger.finish()
    media = _media(store, run.id)
    val_steps = [s for s, _ in series(store, run.id, "val/loss")]
    assert [m["step"] for m in media["val/confusion_matrix"]] == [val_steps[1]]  # 2nd epoch
    assert media["val/confusion_matrix"][0]["meta"]["total"] == 40  # max_predictions
    for key in ("val/pr_curve", "val/roc_curve"):
        (curve,) = media[key]
        assert curve["kind"] == "curve" and 0.0 <= curve["meta"]["auc"] <= 1.0
    assert media["val/roc_curve"][0]["meta"]["auc"] > 0.7
    assert not [k for k in media if k.startswith("weights/")]  # histograms are opt-in


def test_autolog_adds_the_evaluation_callback(store: str, no_autolog: None) -> None:
    import labledger
    from labledger.integrations.lightning import LabledgerEvaluation

    labledger.autolog(["lightning"], log_models=False)
    pl.seed_everything(5)
    with labledger.init("auto-eval") as run:
        trainer = pl.Trainer(
            max_epochs=1,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
        )
        assert sum(isinstance(c, LabledgerEvaluation) for c in trainer.callbacks) == 1
        trainer.fit(_Classifier(), _class_data(64, 0, 3), _class_data(32, 1, 3))
    cms = [m for m in ledger(store).media(run.id) if m["key"] == "val/confusion_matrix"]
    assert len(cms) == 1 and cms[0]["meta"]["total"] == 32
