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
