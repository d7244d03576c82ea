"""Every integration records the framework's seed and fingerprints the data it sees, each in
the framework's own idiom, so a one-line integration run passes a project policy
``--require seed --require dataset`` (``policy_missing``: the server's own check)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

import labledger
from labledger.capture import data as capture_data

from .conftest import artifacts_of, ledger, one_run, policy_missing, series

os.environ.setdefault("KERAS_BACKEND", "torch")


def _digits() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600], X[600:800], y[600:800]


# -- fingerprints of data in memory ---------------------------------------------------


def test_data_in_memory_is_fingerprinted_once_per_object(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd
    import torch

    calls: list[str] = []
    real = capture_data._describe

    def counting(obj: Any) -> Any:
        calls.append(type(obj).__name__)
        return real(obj)

    monkeypatch.setattr(capture_data, "_describe", counting)
    a = np.arange(12, dtype="float32").reshape(3, 4)
    first = capture_data.fingerprint_data(a, "train")
    again = capture_data.fingerprint_data(a, "train")
    assert first == again and calls == ["ndarray"]  # hashed once, however often it is seen
    assert first is not None and first["shape"] == [3, 4] and first["dtype"] == "float32"
    # same bytes, same digest; another dtype, shape or value: another digest
    assert capture_data.fingerprint_data(a.copy(), "x")["sha256"] == first["sha256"]  # type: ignore[index]
    for other in (a.astype("float64"), a.reshape(4, 3), a + 1):
        assert capture_data.fingerprint_data(other, "x")["sha256"] != first["sha256"]  # type: ignore[index]
    # frames (object columns too), tensors, and an (X, y) pair combine into one digest
    df = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]})
    f1 = capture_data.fingerprint_data(df, "df")
    f2 = capture_data.fingerprint_data(df.assign(s=["a", "c"]), "df")
    assert f1 and f2 and f1["kind"] == "pandas" and f1["sha256"] != f2["sha256"]
    t = torch.arange(6).reshape(2, 3)
    ft = capture_data.fingerprint_data(t, "t")
    assert ft is not None and ft["kind"] == "torch" and ft["shape"] == [2, 3]
    pair = capture_data.fingerprint_data((a, np.zeros(3)), "train")
    assert pair is not None and len(pair["parts"]) == 2 and pair["sha256"] != first["sha256"]
    # a torch DataLoader over a TensorDataset: the tensors behind it
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(t, t), batch_size=1)
    fl = capture_data.fingerprint_data(loader, "train")
    assert fl is not None and [p["sha256"] for p in fl["parts"]] == [ft["sha256"]] * 2
    assert capture_data.fingerprint_data(object(), "x") is None
    assert first["digest"] == "full"
    # past FULL_DIGEST_MAX bytes: 64 evenly spaced 1 MiB windows and the length, said so
    monkeypatch.setattr(capture_data, "FULL_DIGEST_MAX", 1 << 20)
    big = np.zeros(80 * (1 << 20) // 8)
    fb = capture_data.fingerprint_data(big, "big")
    assert fb is not None and fb["digest"] == "sampled" and fb["size"] == 80 << 20
    changed = big.copy()
    changed[0] = 1.0  # inside the first window
    assert capture_data.fingerprint_data(changed, "big")["sha256"] != fb["sha256"]  # type: ignore[index]


def test_log_dataset_takes_arrays_and_record_seed_does_not_reseed(store: str) -> None:
    import random

    with labledger.init("memdata") as run:
        random.seed(5)
        expected = random.random()
        random.seed(5)
        assert run.record_seed(11, source="test") is True
        assert random.random() == expected  # recorded, nothing seeded again
        assert run.record_seed(2**40, source="test") is False  # not a seed: ignored
        run.log_dataset(np.ones((4, 2)), name="train")
        with pytest.raises(labledger.UsageError, match="cannot fingerprint"):
            run.log_dataset(object(), name="odd")
    rec = one_run(store, "memdata")
    assert rec["seed"] == 11 and rec["env"]["seed"]["seeded"] == ["test"]
    assert policy_missing(rec) == []


# -- scikit-learn --------------------------------------------------------------------


def test_sklearn_random_state_is_the_seed_and_the_data_train_and_test(store: str) -> None:
    from sklearn.linear_model import LogisticRegression

    from labledger.integrations.sklearn import fit

    X, y, Xt, yt = _digits()
    model = LogisticRegression(max_iter=200, random_state=3)
    fit(model, X, y, X_test=Xt, y_test=yt, project="sk-seed")
    labledger.active_run().finish()  # type: ignore[union-attr]
    rec = one_run(store, "sk-seed")
    assert rec["seed"] == 3 and rec["env"]["seed"]["seeded"] == ["sklearn.random_state"]
    data = {d["name"]: d for d in rec["datasets"]}
    assert set(data) == {"train", "test"}
    assert data["train"]["shape"] == [[600, 64], [600]]
    s = rec["summary"]
    assert s["test_accuracy"] == pytest.approx(model.score(Xt, yt))
    for key in ("precision", "recall", "f1", "roc_auc", "log_loss"):
        assert 0 <= s[f"test_{key}"] <= (10 if key == "log_loss" else 1), key
    assert policy_missing(rec) == []


def test_sklearn_regressor_metrics(store: str) -> None:
    from sklearn.linear_model import Ridge

    from labledger.integrations.sklearn import fit

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + 0.1 * rng.normal(size=80)
    fit(Ridge(random_state=0), X[:60], y[:60], X_test=X[60:], y_test=y[60:], project="sk-reg")
    labledger.active_run().finish()  # type: ignore[union-attr]
    s = one_run(store, "sk-reg")["summary"]
    assert s["test_rmse"] == pytest.approx(s["test_mse"] ** 0.5)
    assert s["test_r2"] > 0.9 and s["test_mae"] > 0


def test_autolog_search_has_a_child_per_candidate_cv_results_and_score_after_fit(
    store: str, no_autolog: None
) -> None:
    labledger.autolog(["sklearn"])
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    X, y, Xt, yt = _digits()
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [2, 4, 8]}, cv=3)
    search.fit(X, y)
    score = search.score(Xt, yt)  # after the fit, on held-out data: the fit's run records it
    from labledger.integrations._common import finish_kept

    finish_kept()
    L = ledger(store)
    runs = L.runs()
    parent = next(r for r in runs if r["parent_run_id"] is None)
    children = [r for r in runs if r["parent_run_id"] == parent["id"]]
    assert parent["status"] == "finished" and parent["seed"] == 0
    assert parent["summary"]["test_score"] == pytest.approx(score)
    assert {d["name"] for d in parent["datasets"]} == {"train", "test"}
    assert parent["summary"]["candidates"] == 3
    assert sorted(c["config"]["max_depth"] for c in children) == [2, 4, 8]
    best = max(children, key=lambda c: c["summary"]["mean_test_score"])
    assert best["summary"]["rank_test_score"] == 1
    assert best["config"]["max_depth"] == search.best_params_["max_depth"]
    assert all(c["job_type"] == "candidate" and policy_missing(c) == [] for c in children)
    assert policy_missing(parent) == []
    arts = artifacts_of(store, parent["id"])
    table = next(a for n, a in arts.items() if n.endswith("-DecisionTreeClassifier-cv-results"))
    assert table["kind"] == "table"
    assert any(n.endswith("-DecisionTreeClassifier-model") for n in arts)


# -- boosting ----------------------------------------------------------------------------


def test_xgboost_seed_data_rounds_early_stopping_and_best_round(store: str) -> None:
    xgb = pytest.importorskip("xgboost")
    from labledger.integrations.xgboost import LabledgerCallback

    X, y, Xt, yt = _digits()
    dtrain, dvalid = xgb.DMatrix(X, label=y), xgb.DMatrix(Xt, label=yt)
    params = {"objective": "multi:softprob", "num_class": 10, "max_depth": 2, "seed": 5}
    params |= {"nthread": 1, "eta": 0.8, "eval_metric": "mlogloss"}
    cb = LabledgerCallback(project="xgb-es")
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=200,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=2,
        verbose_eval=False,
        callbacks=[cb],
    )
    cb.run.finish()  # type: ignore[union-attr]
    rec = one_run(store, "xgb-es")
    assert rec["seed"] == 5 and rec["env"]["seed"]["seeded"] == ["xgboost.seed"]
    assert rec["config"]["num_boost_round"] == 200 and rec["config"]["early_stopping_rounds"] == 2
    assert {d["name"] for d in rec["datasets"]} == {"train", "validation"}
    s = rec["summary"]
    assert s["best_iteration"] == booster.best_iteration < 199
    assert s["best_score"] == pytest.approx(booster.best_score)
    valid = dict(series(store, rec["id"], "valid-mlogloss"))
    assert s["best/valid-mlogloss"] == pytest.approx(valid[booster.best_iteration])
    assert s["best/valid-mlogloss"] == pytest.approx(min(valid.values()))
    assert policy_missing(rec) == []


def test_lightgbm_seed_data_early_stopping_and_best_iteration(store: str) -> None:
    lgb = pytest.importorskip("lightgbm")
    from labledger.integrations.lightgbm import labledger_callback

    X, y, Xt, yt = _digits()
    dtrain = lgb.Dataset(X, label=y)
    dvalid = lgb.Dataset(Xt, label=yt, reference=dtrain)
    params = {"objective": "multiclass", "num_class": 10, "num_leaves": 4, "verbose": -1}
    params |= {"num_threads": 1, "learning_rate": 0.9, "seed": 9}
    cb = labledger_callback(project="lgb-es")
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=200,
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[cb, lgb.early_stopping(2, verbose=False)],
    )
    cb.log_booster(booster)  # stopped early: the booster training returned
    cb.run.finish()  # type: ignore[union-attr]
    rec = one_run(store, "lgb-es")
    assert rec["seed"] == 9
    assert rec["config"]["num_boost_round"] == 200 and rec["config"]["early_stopping_rounds"] == 2
    data = {d["name"]: d for d in rec["datasets"]}
    assert set(data) == {"train", "validation"}  # raw data freed: the binary dataset's digest
    assert data["train"]["kind"] == "lightgbm-binary"
    s = rec["summary"]
    assert 0 < s["best_iteration"] == booster.best_iteration < 200
    assert s["best_step"] == booster.best_iteration - 1
    assert s["best_score"] == pytest.approx(booster.best_score["valid"]["multi_logloss"])
    assert policy_missing(rec) == []


# -- Keras -----------------------------------------------------------------------------


def test_keras_set_random_seed_after_init_batch_size_summary_and_evaluate(store: str) -> None:
    keras = pytest.importorskip("keras")
    from labledger.integrations.keras import LabledgerCallback

    run = labledger.init("keras-seed")
    keras.utils.set_random_seed(4)  # after init: still the run's seed
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(
        x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0,
        callbacks=[LabledgerCallback()],
    )  # fmt: skip
    result = model.evaluate(x[:8], y[:8], verbose=0, return_dict=True)  # no callback passed
    run.finish()
    rec = one_run(store, "keras-seed")
    assert rec["seed"] == 4 and rec["env"]["seed"]["seeded"] == ["keras.set_random_seed"]
    assert rec["config"]["fit"]["batch_size"] == 16 and rec["config"]["fit"]["epochs"] == 2
    assert rec["summary"]["test/loss"] == pytest.approx(result["loss"])
    data = {d["name"]: d for d in rec["datasets"]}
    assert data["train"]["shape"] == [[48, 4], [48]]
    assert data["validation"]["shape"] == [[16, 4], [16]]
    assert data["test"]["shape"] == [[8, 4], [8]]
    family = model.name  # the Keras model's name: sequential, sequential_1 ...
    arts = artifacts_of(store, rec["id"])
    assert arts[f"keras-seed-{family}-model-summary"]["kind"] == "text"
    assert arts[f"keras-seed-{family}-model"]["kind"] == "model"
    assert policy_missing(rec) == []


# -- Hugging Face Transformers ------------------------------------------------------------


def test_transformers_training_arguments_seed_and_loader_data(
    store: str, example: Any, tmp_path: Any
) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    run = example("transformers_example").main(output_dir=str(tmp_path / "hf"), steps=4)
    run.finish()
    rec = one_run(store, "integrations-transformers")
    assert rec["seed"] == 0  # TrainingArguments(seed=0)
    assert rec["env"]["seed"]["seeded"] == ["transformers.TrainingArguments.seed"]
    data = {d["name"]: d for d in rec["datasets"]}
    assert data["train"]["shape"] == [[64, 12], [64]]  # the dataset's ids and labels
    assert data["validation"]["shape"] == [[32, 12], [32]]
    assert policy_missing(rec) == []


# -- Optuna ----------------------------------------------------------------------------


def test_optuna_sampler_seed_data_from_trials_and_pruned_out_of_best(store: str) -> None:
    optuna = pytest.importorskip("optuna")
    from sklearn.tree import DecisionTreeClassifier

    from labledger.integrations.optuna import LabledgerCallback
    from labledger.integrations.sklearn import fit

    X, y, Xt, yt = _digits()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="trees", direction="maximize", sampler=optuna.samplers.TPESampler(seed=0)
    )

    def objective(trial: Any) -> float:
        depth = trial.suggest_int("depth", 1, 6)
        if trial.number == 1:
            trial.report(10.0, 0)  # a pruned trial keeps a tempting intermediate value
            raise optuna.TrialPruned()
        model = fit(DecisionTreeClassifier(max_depth=depth), X, y, log_model=False)
        return float(model.score(Xt, yt))

    cb = LabledgerCallback(project="opt-seed", metric_name="acc")
    study.optimize(cb.track(objective), n_trials=4, callbacks=[cb])
    cb.finish()
    L = ledger(store)
    parent = L.get(cb.run.id)  # type: ignore[union-attr]
    assert parent["seed"] == 0 and parent["env"]["seed"]["seeded"] == ["optuna.sampler"]
    assert {d["name"] for d in parent["datasets"]} == {"train"}  # what the trials fit on
    assert parent["summary"]["pruned_trials"] == 1
    assert policy_missing(parent) == []
    children = L.runs(filter=f'parent_run_id = "{parent["id"]}"')
    assert all(policy_missing(c) == [] for c in children if c["status"] == "finished")
    # the pruned trial's summary value would top the leaderboard: left out unless asked
    pruned = next(c for c in children if c["status"] == "pruned")
    pruned_run = labledger.init("opt-seed", name="pruned-stand-in", capture=False)
    pruned_run.summary["acc"] = 99.0
    pruned_run.finish("pruned")
    best = L.best("acc", project="opt-seed")
    assert best and all(row["id"] != pruned_run.id for row in best)
    with_pruned = L.best("acc", project="opt-seed", include_pruned=True)
    assert with_pruned[0]["id"] == pruned_run.id
    assert pruned["job_type"] == "trial"
