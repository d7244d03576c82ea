"""autolog: one line, then plain framework code (scikit-learn and XGBoost here)."""

import labledger

labledger.autolog()  # labledger

import xgboost as xgb  # noqa: E402  (imported after autolog: patched by the import hook)
from sklearn.datasets import load_digits  # noqa: E402


def main():
    X, y = load_digits(return_X_y=True)
    with labledger.init("integrations-autolog"):  # labledger (optional: else each fit makes a run)
        model = xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1, random_state=0)
        model.fit(X[:1200], y[:1200], eval_set=[(X[1200:], y[1200:])], verbose=False)
    return model


if __name__ == "__main__":
    main()
