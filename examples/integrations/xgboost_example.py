"""XGBoost + labledger: digits (shipped with scikit-learn), 10 boosting rounds."""

import xgboost as xgb
from sklearn.datasets import load_digits

from labledger.integrations.xgboost import LabledgerCallback  # labledger


def main(rounds: int = 10):
    X, y = load_digits(return_X_y=True)
    dtrain = xgb.DMatrix(X[:1200], label=y[:1200])
    dvalid = xgb.DMatrix(X[1200:], label=y[1200:])
    params = {
        "objective": "multi:softprob",
        "num_class": 10,
        "max_depth": 3,
        "eta": 0.3,
        "eval_metric": "mlogloss",
        "nthread": 1,
        "seed": 0,
    }
    cb = LabledgerCallback(project="integrations-xgboost")  # labledger
    booster = xgb.train(
        params,
        dtrain,
        rounds,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        verbose_eval=False,
        callbacks=[cb],  # labledger
    )
    return booster, cb.run


if __name__ == "__main__":
    main()
