"""A GRU over digit rows, stopped after one epoch: the model is adequate, its training is not."""
import keras
from keras import layers
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)

digits = load_digits()
x = digits.images.astype("float32") / 16.0  # 8 rows (timesteps) of 8 pixels
x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.2, random_state=0)

model = keras.Sequential([
    keras.Input(shape=(8, 8)),
    layers.GRU(32),
    layers.Dense(10, activation="softmax"),
])
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=0.003),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
model.fit(x_train, y_train, epochs=1, batch_size=32, validation_split=0.1, verbose=2)

loss, acc = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy: {acc:.4f}")
