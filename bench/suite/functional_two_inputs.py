"""A functional model with two inputs: the top and the bottom half of each digit image."""
import keras
from keras import layers
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)

digits = load_digits()
x = digits.data.astype("float32") / 16.0
top_train, top_test, bottom_train, bottom_test, y_train, y_test = train_test_split(
    x[:, :32], x[:, 32:], digits.target, test_size=0.2, random_state=0
)

top = keras.Input(shape=(32,), name="top")
bottom = keras.Input(shape=(32,), name="bottom")
a = layers.Dense(4, activation="relu")(top)
b = layers.Dense(4, activation="relu")(bottom)
merged = layers.concatenate([a, b])
out = layers.Dense(10, activation="softmax")(merged)
model = keras.Model(inputs=[top, bottom], outputs=out)

model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit([top_train, bottom_train], y_train, epochs=5, batch_size=32, validation_split=0.1, verbose=2)

loss, acc = model.evaluate([top_test, bottom_test], y_test, verbose=0)
print(f"test accuracy: {acc:.4f}")
