"""Per-step overhead of every integration, printed as medians.

    python benchmarks/bench_integrations.py              # 5 repeats of 5 epochs x 200 steps
    python benchmarks/bench_integrations.py --quick      # 3 repeats of 3 epochs x 100 steps
    python benchmarks/bench_integrations.py --hooks-only # only the per-step hooks (all frameworks)

The per-step hooks timed: Lightning ``log_metrics``, Keras ``on_train_batch_end``,
Transformers ``on_log``, XGBoost ``after_iteration``, LightGBM's callback per iteration;
and the one-off costs: a scikit-learn fit's record (params, seed, data fingerprints,
metrics on 1,000 x 64 training and test arrays) and an Optuna trial's child run.

First the integration's own per-step hook is timed directly (median over many calls):
on a shared machine that is the steadier figure. Then whole epochs:

Each framework trains the same small MLP on generated data (CPU) with and without the
integration, alternating, in the DEFAULT configuration (environment capture and
system metrics on; a fresh SQLite store in a temporary folder). An epoch's time is
measured by a timing callback from epoch start to epoch end; the overhead per step is
(median epoch time with - median epoch time without) / steps per epoch. Lightning logs
every step (``log_every_n_steps=1``: the integration's worst case); Keras is measured
with its default (epoch metrics) and with ``log_every_n_batches=1``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("LABLEDGER_CONSOLE", "off")


def _steady_run(project: str) -> Any:
    """A run in the default configuration, started before training and past its one-off
    environment capture (a few CPU-seconds in a background thread, see bench_capture.py),
    so the epochs measure the steady per-step cost."""
    import labledger

    run = labledger.init(project)
    thread = getattr(run, "_capture_thread", None)
    if thread is not None:
        thread.join(60)
    return run


def _lightning(steps: int, epochs: int, tracked: bool) -> list[float]:
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from labledger.integrations.lightning import LabledgerLogger

    class Net(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
            )

        def training_step(self, batch: Any, _: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train/loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    times: list[float] = []

    class Timer(pl.Callback):
        def on_train_epoch_start(self, *a: Any) -> None:
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, *a: Any) -> None:
            times.append(time.perf_counter() - self.t0)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps * 16, 32, generator=g)
    data = DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=16)
    logger = LabledgerLogger(_steady_run("bench-lightning"), log_model=False) if tracked else False
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=logger,
        callbacks=[Timer()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(Net(), data)
    if tracked:
        logger.experiment.finish()
    return times[1:]  # the first epoch warms up


def _keras(steps: int, epochs: int, mode: str) -> list[float]:
    import keras
    import numpy as np

    from labledger.integrations.keras import LabledgerCallback

    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter() - self.t0)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * 16, 32)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    callbacks: list[Any] = [Timer()]
    cb = None
    if mode != "off":
        cb = LabledgerCallback(
            project="bench-keras",
            log_model=False,
            log_every_n_batches=1 if mode == "every-batch" else None,
        )
        callbacks.append(cb)
    model.fit(x, x.sum(axis=1), epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks)
    if cb is not None and cb.run is not None:
        cb.run.finish()
    return times[1:]


def _hook_costs(n: int, repeats: int) -> dict[str, float]:
    """Median time of the integration's own per-step hook, in microseconds per step.

    Epoch timings on a busy machine vary by more than the overhead itself; this times
    exactly what the integration adds to a training step: Lightning's call of
    ``log_metrics`` with a tensor loss at the global step, and Keras's
    ``on_train_batch_end`` (default: a counter; every batch: a ``run.log``).
    """
    import keras
    import torch

    from labledger.integrations.keras import LabledgerCallback
    from labledger.integrations.lightning import LabledgerLogger

    out: dict[str, float] = {}
    logger = LabledgerLogger(project="bench-hooks", log_model=False)
    loss = torch.tensor(0.25)
    step = 0
    per_call: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            logger.log_metrics({"train/loss": loss, "epoch": 0}, step=step)
            step += 1
        per_call.append((time.perf_counter() - t0) / n)
    out["lightning log_metrics"] = statistics.median(per_call) * 1e6
    logger.finish()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    for mode, every in (
        ("keras on_train_batch_end (default)", None),
        ("keras on_train_batch_end (every batch)", 1),
    ):
        cb = LabledgerCallback(project="bench-hooks", log_model=False, log_every_n_batches=every)
        cb.set_model(model)
        cb.set_params({"epochs": 1, "steps": n})
        cb.on_train_begin()
        logs = {"loss": 0.25}
        per_call = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b in range(n):
                cb.on_train_batch_end(b, logs)
            per_call.append((time.perf_counter() - t0) / n)
        out[mode] = statistics.median(per_call) * 1e6
        cb.finish()
    out.update(_more_hooks(n, repeats))
    return out


def _timed(fn: Any, n: int, repeats: int) -> float:
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        per_call.append((time.perf_counter() - t0) / n)
    return statistics.median(per_call) * 1e6


def _more_hooks(n: int, repeats: int) -> dict[str, float]:
    """The other frameworks' per-step hooks, called as the framework calls them."""
    import labledger

    out: dict[str, float] = {}
    from types import SimpleNamespace

    from labledger.integrations.transformers import LabledgerCallback as HFCallback

    hf = HFCallback(project="bench-hooks", log_model=False)
    state = SimpleNamespace(is_world_process_zero=True, global_step=0)

    def hf_step(i: int) -> None:
        state.global_step = i
        hf.on_log(None, state, None, logs={"loss": 0.25, "learning_rate": 1e-3, "epoch": 0.1})

    out["transformers on_log"] = _timed(hf_step, n, repeats)
    hf.finish()

    from labledger.integrations.xgboost import LabledgerCallback as XGBCallback

    xcb = XGBCallback(project="bench-hooks", log_model=False)
    xcb._source.get()
    log: dict[str, dict[str, list[float]]] = {"train": {"rmse": []}, "valid": {"rmse": []}}

    def xgb_step(i: int) -> None:
        log["train"]["rmse"].append(0.5)
        log["valid"]["rmse"].append(0.6)
        xcb.after_iteration(None, i, log)

    out["xgboost after_iteration"] = _timed(xgb_step, n, repeats)
    xcb.finish()

    from labledger.integrations.lightgbm import LabledgerCallback as LGBCallback

    lcb = LGBCallback(project="bench-hooks", log_model=False)
    env = SimpleNamespace(
        params={"seed": 0},
        model=None,
        iteration=0,
        begin_iteration=0,
        end_iteration=10**9,
        evaluation_result_list=[("valid", "l2", 0.5, False)],
    )
    lcb(env)  # the first call records params, seed and data (once)

    def lgb_step(i: int) -> None:
        env.iteration = i
        lcb(env)

    out["lightgbm callback"] = _timed(lgb_step, n, repeats)
    lcb.finish()

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from labledger.integrations.sklearn import log_estimator

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 64))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression(max_iter=200, random_state=0).fit(X, y)
    run = labledger.init("bench-sklearn", capture=False, system_metrics=False, console=False)
    m = max(3, n // 500)
    out["sklearn record per fit (1000x64)"] = _timed(
        lambda i: log_estimator(
            model, rng.normal(size=(1000, 64)), y, X_test=X, y_test=y, run=run, log_model=False
        ),
        m,
        repeats,
    )
    run.finish()

    import optuna

    from labledger.integrations.optuna import LabledgerCallback as OptunaCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    ocb = OptunaCallback(project="bench-optuna")

    def one_trial(i: int) -> None:
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1, callbacks=[ocb])

    plain = _timed(
        lambda i: study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1), m, repeats
    )
    out["optuna per trial (child run)"] = _timed(one_trial, m, repeats) - plain
    ocb.finish()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--hooks-only", action="store_true", help="only the per-step hooks")
    args = ap.parse_args()
    steps, epochs, repeats = (100, 3, 3) if args.quick else (200, 5, 5)
    import torch

    torch.set_num_threads(1)  # fewer threads fighting over a shared CPU: steadier epochs
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LABLEDGER_URI"] = f"sqlite:///{tmp}/bench.db"
        os.chdir(tmp)
        import warnings

        warnings.simplefilter("ignore")
        import logging

        logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
        cases = {
            "lightning": lambda t: _lightning(steps, epochs, t),
            "keras": lambda t: _keras(steps, epochs, "default" if t else "off"),
            "keras-every-batch": lambda t: _keras(steps, epochs, "every-batch" if t else "off"),
        }
        n = 2000 if args.quick else 10000
        for name, us in _hook_costs(n, 7).items():
            unit = (
                "per fit" if "per fit" in name else "per trial" if "trial" in name else "per step"
            )
            print(f"{name:40s} median {us:9.2f} us {unit} (7 repeats)")
        if args.hooks_only:
            return
        print(
            f"{steps} steps per epoch, {epochs} epochs (first dropped), {repeats} repeats, alternating"
        )
        for name, fn in cases.items():
            fn(False)  # warm up imports and kernels
            base: list[float] = []
            tracked: list[float] = []
            for _ in range(repeats):
                base += fn(False)
                tracked += fn(True)
            b, t = statistics.median(base), statistics.median(tracked)
            print(
                f"{name:18s} epoch median {b * 1e3:8.1f} ms plain, {t * 1e3:8.1f} ms tracked; "
                f"overhead per step {(t - b) / steps * 1e6:8.1f} us ({(t - b) / b * 100:+.1f}%)"
            )


if __name__ == "__main__":
    main()
