"""The demo: a real hyperparameter grid trained on scikit-learn's bundled digits data.

Every run registers itself with its config, seed and environment, fingerprints the
dataset file, logs per-epoch loss and accuracy, saves the trained model as an artifact
and ends with test accuracy and macro F1. No download.

Under ``labledger repro`` only the grid point being reproduced is trained again.
"""

from __future__ import annotations

import pickle
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import RunRecord

__all__ = ["DEMO_GRID", "demo_config", "run_demo"]

# A fractional design over the full grid (2 x 2 x 2 x 2 x 2 = 32 combinations):
# 8 runs, every level of every factor appears 4 times.
DEMO_GRID: list[dict[str, Any]] = [
    {"lr": 0.001, "hidden": 64, "activation": "relu", "batch_size": 32, "optimizer": "adam"},
    {"lr": 0.01, "hidden": 64, "activation": "tanh", "batch_size": 32, "optimizer": "sgd"},
    {"lr": 0.001, "hidden": 32, "activation": "tanh", "batch_size": 64, "optimizer": "adam"},
    {"lr": 0.01, "hidden": 32, "activation": "relu", "batch_size": 64, "optimizer": "sgd"},
    {"lr": 0.01, "hidden": 64, "activation": "relu", "batch_size": 64, "optimizer": "adam"},
    {"lr": 0.001, "hidden": 64, "activation": "tanh", "batch_size": 64, "optimizer": "sgd"},
    {"lr": 0.01, "hidden": 32, "activation": "tanh", "batch_size": 32, "optimizer": "adam"},
    {"lr": 0.001, "hidden": 32, "activation": "relu", "batch_size": 32, "optimizer": "sgd"},
]


def demo_config(params: dict[str, Any], epochs: int) -> dict[str, Any]:
    return {**params, "epochs": epochs, "dataset": "sklearn.digits", "test_size": 0.25}


def train_one(
    params: dict[str, Any], *, epochs: int, seed: int, store: str | None, project: str
) -> str:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, f1_score, log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    import labledger

    config = demo_config(params, epochs)
    with labledger.init(project, config=config, seed=seed, store=store, tags=["demo"]) as run:
        # the file load_digits reads: its fingerprint ties every result to the exact data
        digits = resources.files("sklearn.datasets.data") / "digits.csv.gz"
        run.log_dataset(str(digits), name="digits")
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, random_state=seed, stratify=y
        )
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        classes = np.unique(y)
        model = MLPClassifier(
            hidden_layer_sizes=(params["hidden"],),
            activation=params["activation"],
            solver=params["optimizer"],
            learning_rate_init=params["lr"],
            # we feed mini-batches of params["batch_size"] ourselves; "auto" makes
            # partial_fit take each one whole
            batch_size="auto",
            momentum=0.9,
            random_state=seed,
        )
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        for epoch in range(epochs):
            order = rng.permutation(len(X_train))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                for i in range(0, len(order), params["batch_size"]):
                    idx = order[i : i + params["batch_size"]]
                    model.partial_fit(X_train[idx], y_train[idx], classes=classes)
            train_proba = model.predict_proba(X_train)
            test_proba = model.predict_proba(X_test)
            run.log(
                {
                    "train/loss": log_loss(y_train, train_proba, labels=classes),
                    "train/acc": accuracy_score(y_train, classes[train_proba.argmax(1)]),
                    "val/loss": log_loss(y_test, test_proba, labels=classes),
                    "val/acc": accuracy_score(y_test, classes[test_proba.argmax(1)]),
                },
                step=epoch,
            )
        pred = model.predict(X_test)
        run.summary["test_acc"] = float(accuracy_score(y_test, pred))
        run.summary["test_f1_macro"] = float(f1_score(y_test, pred, average="macro"))
        # wall time is not a result (it differs on every re-run): it stays in the
        # run's runtime, not in the summary that `labledger repro` compares
        del t0
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pkl"
            path.write_bytes(pickle.dumps({"scaler": scaler, "model": model}))
            run.log_model(path, name="digits-mlp").wait(60)  # stored before tmp goes
        return run.id


def run_demo(
    *,
    store: str | None = None,
    project: str = "digits-demo",
    epochs: int = 20,
    runs: int | None = None,
    seed: int = 7,
    echo: Callable[[str], None] = print,
) -> list[RunRecord]:
    """Train the demo grid and return the runs, best test accuracy first."""
    from ._ledger import Ledger
    from .tracking import is_repro_target

    grid = DEMO_GRID[: runs or len(DEMO_GRID)]
    t0 = time.perf_counter()
    ids = []
    for i, params in enumerate(grid, 1):
        if not is_repro_target(demo_config(params, epochs)):
            continue  # `labledger repro` re-runs one grid point, with its own seed
        desc = ", ".join(f"{k}={v}" for k, v in params.items())
        echo(f"[{i}/{len(grid)}] training MLP on digits: {desc}")
        ids.append(train_one(params, epochs=epochs, seed=seed + i, store=store, project=project))
    with Ledger(store) as ledger:
        results = [ledger.get(rid) for rid in ids]
    results.sort(key=lambda r: (-r["summary"]["test_acc"], -r["summary"]["test_f1_macro"]))
    echo(f"trained {len(results)} runs in {time.perf_counter() - t0:.1f}s")
    return results
