"""scikit-learn + labledger: a random forest on digits."""

from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from labledger.integrations.sklearn import fit  # labledger


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    model = RandomForestClassifier(n_estimators=20, random_state=0)
    fit(
        model, X_train, y_train, X_test=X_test, y_test=y_test, project="integrations-sklearn"
    )  # labledger
    return model


if __name__ == "__main__":
    main()
