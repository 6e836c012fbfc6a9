"""A functional digits CNN with BatchNormalization and Dropout: a probe (BENCHMARKS.md, Probes)."""
from sklearn.datasets import load_digits
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(3)
d = load_digits()
x = (d.images / 16.0)[..., None].astype("float32")
y = d.target
x_train, x_test, y_train, y_test = x[:1400], x[1400:], y[:1400], y[1400:]

inputs = keras.Input(shape=(8, 8, 1))
h = layers.Conv2D(2, (3, 3), padding="same")(inputs)
h = layers.BatchNormalization()(h)
h = layers.Activation("relu")(h)
h = layers.Flatten()(h)
h = layers.Dropout(0.5)(h)
outputs = layers.Dense(10, activation="softmax")(h)
model = keras.Model(inputs=inputs, outputs=outputs)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=2, batch_size=128, validation_data=(x_test, y_test), verbose=2)
model.evaluate(x_test, y_test)
