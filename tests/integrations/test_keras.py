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


def _media(store: str, run_id: str) -> dict[str, list[dict[str, Any]]]:
    by_key: dict[str, list[dict[str, Any]]] = {}
    for m in ledger(store).media(run_id):
        by_key.setdefault(m["key"], []).append(m)
    return by_key


def test_validation_predictions_become_confusion_matrix_curves_and_histograms(
    store: str,
) -> None:
    import json

    import numpy as np

    import labledger
    from labledger.integrations.keras import LabledgerCallback

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    cb = LabledgerCallback(
        project="keras-media",
        predictions_every=2,
        labels=["neg", "pos"],
        log_histograms=True,
        log_model=False,
    )
    model.fit(
        x[:192],
        y[:192],
        validation_data=(x[192:], y[192:]),
        epochs=4,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    run = cb.run
    assert run is not None
    run.finish()
    media = _media(store, run.id)
    # every 2nd epoch: epochs 1 and 3 (step = epoch, as val_loss)
    assert [m["step"] for m in media["val/confusion_matrix"]] == [1, 3]
    assert [m["step"] for m in media["val/roc_curve"]] == [1, 3]
    assert [m["step"] for m in media["val/pr_curve"]] == [1, 3]
    cm = media["val/confusion_matrix"][-1]
    assert cm["kind"] == "confusion_matrix"
    body = json.loads(labledger.Ledger(store).media_bytes(run.id, cm))
    assert body["labels"] == ["neg", "pos"] and np.sum(body["matrix"]) == 64
    assert np.array(body["matrix"]).shape == (2, 2)
    for key in ("val/roc_curve", "val/pr_curve"):
        assert all(m["kind"] == "curve" and 0.0 <= m["meta"]["auc"] <= 1.0 for m in media[key])
    assert media["val/roc_curve"][-1]["meta"]["auc"] > 0.8  # it learned something
    # one histogram per weight tensor per epoch
    hist = [k for k in media if k.startswith("weights/")]
    assert len(hist) == 4  # 2 kernels, 2 biases
    for k in hist:
        assert [m["step"] for m in media[k]] == [0, 1, 2, 3]
        assert media[k][0]["kind"] == "histogram"
    kernel = next(k for k in hist if k.endswith("kernel"))
    assert media[kernel][0]["meta"]["count"] in (4 * 8, 8 * 2)


def test_regression_and_no_validation_data_log_no_media(store: str, example: Any) -> None:
    import numpy as np

    from labledger.integrations.keras import LabledgerCallback

    x = np.random.default_rng(1).normal(size=(64, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    cb = LabledgerCallback(project="keras-regression", log_model=False)
    model.fit(x, x.sum(axis=1) * 0.37, validation_split=0.25, epochs=2, verbose=0, callbacks=[cb])
    assert cb.run is not None
    cb.run.finish()
    assert _media(store, cb.run.id) == {}
    assert len(series(store, cb.run.id, "val_loss")) == 2
