"""The Keras callback against real Keras 3 on the torch back end."""

from __future__ import annotations

import os
from typing import Any

import pytest

from .conftest import artifacts_of, ledger, one_run, series

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")


def test_callback_records_fit_params_epoch_metrics_and_model(store: str, example: Any) -> None:
    run = example("keras_example").main(epochs=3)
    run.finish()  # waits for the artifact uploads too
    rec = one_run(store, "integrations-keras")
    assert rec["config"]["fit"]["epochs"] == 3
    assert rec["config"]["optimizer"]["learning_rate"] == pytest.approx(0.01)
    assert rec["config"]["model"]["params"] == 8 * 16 + 16 + 16 + 1
    assert [s for s, _ in series(store, rec["id"], "val_loss")] == [0, 1, 2]
    assert 0.0 <= rec["summary"]["accuracy"] <= 1.0
    model = artifacts_of(store, rec["id"])["integrations-keras-sequential-model"]
    assert model["kind"] == "model" and model["size"] > 0


def test_a_failing_hook_warns_and_training_goes_on(store: str) -> None:
    import numpy as np

    import labledger
    from labledger.integrations.keras import LabledgerCallback

    finished = labledger.init("gone")
    finished.finish()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((8, 2), dtype="float32")
    with pytest.warns(RuntimeWarning, match="tracking failed"):
        hist = model.fit(
            x, x[:, :1], epochs=2, verbose=0, callbacks=[LabledgerCallback(run=finished)]
        )
    assert len(hist.history["loss"]) == 2


def test_autolog_patches_fit_without_changing_the_weights(store: str, no_autolog: None) -> None:
    import numpy as np

    import labledger

    def train() -> list[Any]:
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
        model.fit(x, x.sum(axis=1), epochs=2, batch_size=16, verbose=0)
        return [np.array(w) for w in model.get_weights()]

    plain = train()
    labledger.autolog("keras", log_models=False)
    tracked = train()
    assert all(np.array_equal(a, b) for a, b in zip(plain, tracked, strict=False))
    run = labledger.active_run()
    assert run is not None  # autolog made one; the script never called init()
    run.finish()
    rec = ledger(store).get(run.id)
    assert len(series(store, rec["id"], "loss")) == 2
    assert rec["artifacts"] == []  # log_models=False
