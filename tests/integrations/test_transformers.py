"""The TrainerCallback against a real Trainer and a 2-layer BERT built from a config."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import artifacts_of, one_run, series

pytest.importorskip("transformers")
pytest.importorskip("accelerate")


def test_callback_records_args_model_config_metrics_and_final_model(
    store: str, example: Any, tmp_path: Any
) -> None:
    run = example("transformers_example").main(output_dir=str(tmp_path / "hf"), steps=4)
    run.finish()  # waits for the artifact uploads too
    rec = one_run(store, "integrations-transformers")
    assert rec["config"]["args"]["max_steps"] == 4
    assert rec["config"]["args"]["per_device_train_batch_size"] == 8
    assert rec["config"]["model"]["num_hidden_layers"] == 2
    assert rec["config"]["model"]["num_parameters"] > 0
    assert [s for s, _ in series(store, rec["id"], "train/loss")] == [2, 4]
    assert [s for s, _ in series(store, rec["id"], "eval/loss")] == [4]
    assert rec["summary"]["global_step"] == 4
    assert rec["summary"]["train_loss"] > 0  # the mean over training, from the last record
    assert artifacts_of(store, rec["id"])["integrations-transformers-bert-model"]["kind"] == "model"


def _trainer(example: Any, tmp_path: Any, cb: Any, compute_metrics: Any, **extra_args: Any) -> Any:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    mod = example("transformers_example")
    config = BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    args = TrainingArguments(
        output_dir=str(tmp_path / "hf"),
        max_steps=4,
        per_device_train_batch_size=8,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        **extra_args,
    )
    return Trainer(
        model=BertForSequenceClassification(config),
        args=args,
        train_dataset=mod.TokenIds(32, 0),
        eval_dataset=mod.TokenIds(24, 1),
        compute_metrics=compute_metrics,
        callbacks=[cb] if cb is not None else None,
    )


def test_eval_predictions_become_confusion_matrix_and_curves(
    store: str, example: Any, tmp_path: Any
) -> None:
    import json

    import numpy as np

    import labledger
    from labledger.integrations.transformers import LabledgerCallback

    seen: list[int] = []

    def accuracy(pred: Any) -> dict[str, float]:
        seen.append(len(pred.label_ids))
        return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}

    cb = LabledgerCallback(
        project="hf-media", log_model=False, labels=["no7", "has7"], log_histograms=True
    )
    trainer = _trainer(example, tmp_path, cb, cb.compute_metrics(accuracy))
    trainer.train()
    trainer.predict(trainer.eval_dataset)
    run = cb.run
    assert run is not None
    run.finish()
    assert seen == [24, 24, 24]  # the user's compute_metrics still runs, on everything
    eval_steps = [s for s, _ in series(store, run.id, "eval/accuracy")]
    assert eval_steps == [2, 4]
    led = labledger.Ledger(store)
    media: dict[str, list[dict[str, Any]]] = {}
    for m in led.media(run.id):
        media.setdefault(m["key"], []).append(m)
    assert [m["step"] for m in media["eval/confusion_matrix"]] == eval_steps
    assert [m["step"] for m in media["test/confusion_matrix"]] == [4]  # trainer.predict
    body = json.loads(led.media_bytes(run.id, media["eval/confusion_matrix"][-1]))
    assert body["labels"] == ["no7", "has7"] and int(np.sum(body["matrix"])) == 24
    for key in ("eval/pr_curve", "eval/roc_curve"):
        assert [m["step"] for m in media[key]] == eval_steps
        assert all(m["kind"] == "curve" and 0.0 <= m["meta"]["auc"] <= 1.0 for m in media[key])
    hist = [k for k in media if k.startswith("weights/")]
    assert "weights/classifier.weight" in hist
    assert media["weights/classifier.weight"][0]["kind"] == "histogram"
    assert media["weights/classifier.weight"][0]["meta"]["count"] == 2 * 16


def test_autolog_wraps_a_trainers_own_compute_metrics(
    store: str, example: Any, tmp_path: Any, no_autolog: None
) -> None:
    import labledger

    labledger.autolog(["transformers"], log_models=False)

    def no_metrics(pred: Any) -> dict[str, float]:
        return {}

    trainer = _trainer(example, tmp_path, None, no_metrics)
    assert trainer.compute_metrics is not no_metrics
    assert trainer.compute_metrics.__wrapped__ is no_metrics
    trainer.train()
    run = labledger.active_run()
    assert run is not None
    run.finish()
    keys = {m["key"] for m in labledger.Ledger(store).media(run.id)}
    assert keys == {"eval/confusion_matrix", "eval/pr_curve", "eval/roc_curve"}


def test_batch_eval_metrics_batches_are_gathered(store: str, example: Any, tmp_path: Any) -> None:
    import labledger
    from labledger.integrations.transformers import LabledgerCallback

    calls: list[bool] = []

    def per_batch(pred: Any, compute_result: bool = False) -> dict[str, float]:
        calls.append(compute_result)
        return {"seen": 1.0} if compute_result else {}

    cb = LabledgerCallback(project="hf-batches", log_model=False, max_predictions=20)
    trainer = _trainer(
        example,
        tmp_path,
        cb,
        cb.compute_metrics(per_batch),
        batch_eval_metrics=True,
        per_device_eval_batch_size=8,
    )
    trainer.train()
    run = cb.run
    assert run is not None
    run.finish()
    assert calls.count(True) == 2 and len(calls) == 6  # 3 batches per evaluation
    cms = [m for m in labledger.Ledger(store).media(run.id) if m["key"] == "eval/confusion_matrix"]
    assert [m["step"] for m in cms] == [2, 4]
    assert [m["meta"]["total"] for m in cms] == [20, 20]  # 24 gathered, max_predictions kept
