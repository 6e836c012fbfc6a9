"""Classify noisy 1-D waveforms (sine, square, triangle, sawtooth) with a small Conv1D."""
import keras
import numpy as np
from keras import layers
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)


def make_signals(n=1600, length=128, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, length, endpoint=False)
    labels = rng.integers(0, 4, size=n)
    freq = rng.uniform(2.0, 6.0, size=(n, 1))
    phase = rng.uniform(0.0, 1.0, size=(n, 1))
    cycle = (freq * t + phase) % 1.0
    waves = np.stack([
        np.sin(2 * np.pi * cycle),
        np.sign(np.sin(2 * np.pi * cycle)),
        4 * np.abs(cycle - 0.5) - 1,
        2 * cycle - 1,
    ])
    x = waves[labels, np.arange(n)] + rng.normal(0.0, 0.8, size=(n, length))
    return x[..., None].astype("float32"), labels


x, y = make_signals()
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)

model = keras.Sequential()
model.add(keras.Input(shape=(128, 1)))
model.add(layers.Conv1D(4, 3, activation="relu"))
model.add(layers.GlobalAveragePooling1D())
model.add(layers.Dense(4, activation="softmax"))

model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3, batch_size=32, validation_split=0.1, verbose=2)

loss, acc = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy: {acc:.4f}")
