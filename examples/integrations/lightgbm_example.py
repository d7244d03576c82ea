"""LightGBM + labledger: digits (shipped with scikit-learn), 10 boosting rounds."""

import lightgbm as lgb
from sklearn.datasets import load_digits

from labledger.integrations.lightgbm import labledger_callback  # labledger


def main(rounds: int = 10):
    X, y = load_digits(return_X_y=True)
    dtrain = lgb.Dataset(X[:1200], label=y[:1200])
    dvalid = lgb.Dataset(X[1200:], label=y[1200:], reference=dtrain)
    params = {
        "objective": "multiclass",
        "num_class": 10,
        "num_leaves": 7,
        "learning_rate": 0.2,
        "verbose": -1,
        "num_threads": 1,
        "seed": 0,
    }
    cb = labledger_callback(project="integrations-lightgbm")  # labledger
    booster = lgb.train(
        params,
        dtrain,
        rounds,
        valid_sets=[dtrain, dvalid],
        valid_names=["train", "valid"],
        callbacks=[cb],  # labledger
    )
    return booster, cb.run


if __name__ == "__main__":
    main()
