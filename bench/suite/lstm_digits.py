"""Handwritten digits read as sequences: each 8x8 image is 8 rows of 8 pixels, fed to an LSTM."""
import keras
from keras import layers
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)

digits = load_digits()
x = digits.images.astype("float32") / 16.0  # (1797, 8, 8): 8 timesteps of 8 features
y = digits.target
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)

model = keras.Sequential([
    keras.Input(shape=(8, 8)),
    layers.LSTM(4),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=5, batch_size=32, validation_split=0.1, verbose=2)

loss, acc = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy: {acc:.4f}")
