"""Keras 3 (torch backend) + labledger: a small classifier on generated data."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

from labledger.integrations.keras import LabledgerCallback  # labledger


def main(epochs: int = 3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy"]
    )
    cb = LabledgerCallback(project="integrations-keras")  # labledger
    model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=32,
        validation_split=0.25,
        verbose=0,
        callbacks=[cb],  # labledger
    )
    return cb.run


if __name__ == "__main__":
    main()
