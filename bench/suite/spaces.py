"""The KerasTuner side of each task: the script's own data, and the search a user would write.

Each `build_*` is the model family of its task's script as a user would put it into KerasTuner:
the script's layers with their sizes, kernels, depth and learning rate as hyperparameters, each
defaulting to the weak script's value (KerasTuner 1.4's searches draw even their first trial at
random: the defaults only say where the script sits in the space). The epochs are declared by
the search (bench/search_space.py), from `epochs` in the registry. bench/optuna_search.py calls
the same `build_*` with Optuna behind KerasTuner's `hp`: the space is written once.
Every build seeds Keras as the scripts do, so a trial with the script's values is the script.

`load_*` return exactly the script's data and split: x_train, x_test, y_train, y_test. Keras and
scikit-learn are imported inside the functions: the registry is read without them.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

SUITE = Path(__file__).resolve().parent
MODEL_SEED = 0  # every script calls keras.utils.set_random_seed(0) before it builds its model
LEARNING_RATES = [1e-4, 1e-3, 1e-2]  # KerasTuner's own getting-started choice


def seeded_keras() -> Any:
    import keras

    keras.utils.set_random_seed(MODEL_SEED)
    return keras


def script_function(script: str, name: str) -> Any:
    """The function `name` defined in the task script `script`, taken from its source (so the
    generated data is the script's, not a copy of it that could drift)."""
    import numpy as np

    tree = ast.parse((SUITE / script).read_text(encoding="utf-8"))
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    namespace: dict[str, Any] = {"np": np}
    exec(compile(ast.Module(body=found, type_ignores=[]), script, "exec"), namespace)  # noqa: S102
    return namespace[name]


def dense_stack(keras: Any, hp: Any, units: list[int], default_units: int, depth: int) -> list:
    """`layers` hidden Dense layers of `units` units (relu), the MLP tasks' searched body."""
    count = hp.Int("layers", 1, 3, default=depth)
    width = hp.Choice("units", units, default=default_units)
    return [keras.layers.Dense(width, activation="relu") for _ in range(count)]


def classifier(keras: Any, model: Any, learning_rate: float, optimizer: str = "adam") -> Any:
    maker = keras.optimizers.SGD if optimizer == "sgd" else keras.optimizers.Adam
    model.compile(
        optimizer=maker(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# -- digits as images, rows or pixels ------------------------------------------------------------


def digits_split(x: Any, **split: Any) -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    target = load_digits().target
    return tuple(train_test_split(x, target, random_state=0, **split))


def load_digit_rows() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_digits

    return digits_split(load_digits().images.astype("float32") / 16.0, test_size=0.2)


def load_digit_images() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_digits

    images = load_digits().images.reshape(-1, 8, 8, 1).astype("float32") / 16.0
    return digits_split(images, test_size=0.2)


def load_digit_pixels(**split: Any) -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_digits

    split = split or {"test_size": 0.2}
    return digits_split(load_digits().data.astype("float32") / 16.0, **split)


def load_digit_halves() -> tuple[Any, Any, Any, Any]:
    x_train, x_test, y_train, y_test = load_digit_pixels(test_size=0.2)
    return [x_train[:, :32], x_train[:, 32:]], [x_test[:, :32], x_test[:, 32:]], y_train, y_test


def build_lstm_digits(hp: Any) -> Any:
    keras = seeded_keras()
    units = hp.Choice("units", [4, 8, 16, 32, 64, 128], default=4)
    rate = hp.Choice("learning_rate", LEARNING_RATES, default=1e-3)
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8)),
            keras.layers.LSTM(units),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    return classifier(keras, model, rate)


def build_undertrained_gru(hp: Any) -> Any:
    keras = seeded_keras()
    units = hp.Choice("units", [8, 16, 32, 64, 128], default=32)
    rate = hp.Choice("learning_rate", [1e-3, 3e-3, 1e-2], default=3e-3)
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8)),
            keras.layers.GRU(units),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    return classifier(keras, model, rate)


def build_sgd_slow_cnn(hp: Any) -> Any:
    keras = seeded_keras()
    filters = hp.Choice("filters", [8, 16, 32, 64], default=16)
    kernel = hp.Choice("kernel", [3, 5], default=3)
    rate = hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=1e-3)
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            keras.layers.Conv2D(filters, (kernel, kernel), activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    return classifier(keras, model, rate, optimizer="sgd")


def build_digit_mlp(hp: Any) -> Any:
    """The subclassed model's family: its hidden Dense layers before the classifier."""
    keras = seeded_keras()
    body = dense_stack(keras, hp, [8, 16, 32, 64, 128, 256], 8, depth=1)
    rate = hp.Choice("learning_rate", LEARNING_RATES, default=1e-3)
    model = keras.Sequential(
        [keras.Input(shape=(64,)), *body, keras.layers.Dense(10, activation="softmax")]
    )
    return classifier(keras, model, rate)


def build_two_inputs(hp: Any) -> Any:
    keras = seeded_keras()
    units = hp.Choice("units", [4, 8, 16, 32, 64, 128], default=4)
    rate = hp.Choice("learning_rate", LEARNING_RATES, default=1e-3)
    top = keras.Input(shape=(32,), name="top")
    bottom = keras.Input(shape=(32,), name="bottom")
    a = keras.layers.Dense(units, activation="relu")(top)
    b = keras.layers.Dense(units, activation="relu")(bottom)
    merged = keras.layers.concatenate([a, b])
    out = keras.layers.Dense(10, activation="softmax")(merged)
    return classifier(keras, keras.Model(inputs=[top, bottom], outputs=out), rate)


# -- signals, tabular data, regression -----------------------------------------------------------


def load_signals() -> tuple[Any, Any, Any, Any]:
    from sklearn.model_selection import train_test_split

    x, y = script_function("conv1d_signal.py", "make_signals")()
    return tuple(train_test_split(x, y, test_size=0.25, random_state=0))


def build_conv1d_signal(hp: Any) -> Any:
    keras = seeded_keras()
    filters = hp.Choice("filters", [4, 8, 16, 32, 64], default=4)
    kernel = hp.Choice("kernel", [3, 5, 7, 9], default=3)
    depth = hp.Int("conv_layers", 1, 3, default=1)
    rate = hp.Choice("learning_rate", LEARNING_RATES, default=1e-3)
    model = keras.Sequential([keras.Input(shape=(128, 1))])
    for _ in range(depth):
        model.add(keras.layers.Conv1D(filters, kernel, activation="relu"))
    model.add(keras.layers.GlobalAveragePooling1D())
    model.add(keras.layers.Dense(4, activation="softmax"))
    return classifier(keras, model, rate)


def load_breast_cancer_scaled() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0, stratify=data.target
    )
    scaler = StandardScaler().fit(x_train)
    return (
        scaler.transform(x_train).astype("float32"),
        scaler.transform(x_test).astype("float32"),
        y_train,
        y_test,
    )


def build_mlp_tabular(hp: Any) -> Any:
    keras = seeded_keras()
    body = dense_stack(keras, hp, [2, 4, 8, 16, 32, 64], 2, depth=1)
    rate = hp.Choice("learning_rate", [1e-3, 1e-2, 1e-1], default=1e-2)  # SGD's default 0.01
    model = keras.Sequential(
        [keras.Input(shape=(30,)), *body, keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def load_wine_scaled() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_wine(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y
    )
    scaler = StandardScaler()
    return scaler.fit_transform(x_train), scaler.transform(x_test), y_train, y_test


def build_fast_lr_wine(hp: Any) -> Any:
    keras = seeded_keras()
    body = dense_stack(keras, hp, [8, 16, 32, 64, 128], 32, depth=2)
    rate = hp.Choice("learning_rate", [1e-3, 1e-2, 1e-1, 1.0, 3.0], default=3.0)
    model = keras.Sequential(
        [keras.Input(shape=(13,)), *body, keras.layers.Dense(3, activation="softmax")]
    )
    return classifier(keras, model, rate)


def load_diabetes_split() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    return tuple(
        train_test_split(x.astype("float32"), y.astype("float32"), test_size=0.2, random_state=0)
    )


def build_regression_mae(hp: Any) -> Any:
    keras = seeded_keras()
    body = dense_stack(keras, hp, [4, 8, 16, 32, 64], 4, depth=1)
    rate = hp.Choice("learning_rate", [1e-3, 1e-2, 1e-1], default=1e-2)
    model = keras.Sequential([keras.Input(shape=(10,)), *body, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=rate), loss="mse", metrics=["mae"])
    return model


def build_overfit_diabetes(hp: Any) -> Any:
    """The over-fitting MLP's family: its width and depth, and dropout after each hidden layer as
    a user adds it against over-fitting."""
    keras = seeded_keras()
    depth = hp.Int("layers", 1, 3, default=3)
    units = hp.Choice("units", [32, 64, 128, 256, 512], default=512)
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.0)
    rate = hp.Choice("learning_rate", LEARNING_RATES, default=1e-2)
    model = keras.Sequential([keras.Input(shape=(10,))])
    for _ in range(depth):
        model.add(keras.layers.Dense(units, activation="relu"))
        if dropout > 0:  # no Dropout(0.0): the script's values build the script's model
            model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(1))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=rate), loss="mse", metrics=["mae"])
    return model
