"""Digits CNN trained in a main() with early stopping."""
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def build(num_filters=4):
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(num_filters, kernel_size=3, activation="relu", input_shape=(8, 8, 1)),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(epochs=3):
    tf.keras.utils.set_random_seed(7)
    digits = load_digits()
    x = digits.images[..., None] / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target, test_size=0.25, random_state=7)
    model = build()
    stop = tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model.fit(x_tr, y_tr, validation_split=0.15, epochs=epochs, batch_size=32, callbacks=[stop], verbose=0)
    _, acc = model.evaluate(x_te, y_te, verbose=0)
    print("accuracy", acc)


if __name__ == "__main__":
    main()
