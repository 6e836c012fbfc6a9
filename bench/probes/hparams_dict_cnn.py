"""A digits CNN whose hyperparameters are one dict, read as CONFIG["..."]: a probe."""
import keras
from sklearn.datasets import load_digits

keras.utils.set_random_seed(4)
CONFIG = {"filters": 4, "hidden": 16, "epochs": 2, "lr": 1e-3, "batch_size": 32}

digits = load_digits()
x = digits.images[..., None] / 16.0
y = digits.target

model = keras.Sequential([
    keras.Input((8, 8, 1)),
    keras.layers.Conv2D(CONFIG["filters"], 3, activation="relu"),
    keras.layers.Flatten(),
    keras.layers.Dense(CONFIG["hidden"], activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(keras.optimizers.Adam(CONFIG["lr"]), "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[:1400], y[:1400], epochs=CONFIG["epochs"], batch_size=CONFIG["batch_size"], validation_split=0.1)
print(model.evaluate(x[1400:], y[1400:]))
