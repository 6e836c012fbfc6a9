"""A Bidirectional LSTM on generated sequences, its epochs read from the environment: a probe."""
import os

import keras
import numpy as np
from keras import layers

EPOCHS = int(os.environ.get("EPOCHS", 2))
keras.utils.set_random_seed(5)
rng = np.random.default_rng(5)
n, steps = 2000, 30
x = rng.normal(size=(n, steps, 3)).astype("float32")
# label: does the running sum of channel 0 ever exceed 3?
y = (np.cumsum(x[:, :, 0], axis=1).max(axis=1) > 3).astype("int32")
split = 1600
model = keras.Sequential()
model.add(layers.Input((steps, 3)))
model.add(layers.Bidirectional(layers.LSTM(2)))
model.add(layers.Dense(1, activation="sigmoid"))
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
model.fit(x[:split], y[:split], epochs=EPOCHS, batch_size=64, validation_data=(x[split:], y[split:]))
print(model.evaluate(x[split:], y[split:]))
