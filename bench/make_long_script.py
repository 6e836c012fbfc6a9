"""A realistic ~300-line Keras training script for benchmarks: the kind of file `mutate` meets.

A CNN on scikit-learn's 8x8 digits, written the way people write them: argparse options, helper
functions, data loading and augmentation, `model.add` layers, callbacks, a training-curve plot,
evaluation with a confusion matrix, comments everywhere. Deterministic: the same text every run.

    python bench/make_long_script.py OUT.py    # write it (the benchmark writes it to a temp dir)
"""

from __future__ import annotations

import sys
from pathlib import Path

LONG_SCRIPT = '''\
#!/usr/bin/env python3
"""Train a small convolutional network on the scikit-learn digits data set.

The script is meant to be run by the CI job after every push: it trains, evaluates, writes the
accuracy to accuracy.txt (the next job reads it) and saves the training curves as a PNG.

Usage:
    python train_digits.py --epochs 12 --batch-size 64 --out results/
"""

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import classification_report, confusion_matrix
from sklearn.model_selection import train_test_split

from keras.callbacks import EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
from keras.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from keras.models import Sequential
from keras.optimizers import Adam
from keras.utils import to_categorical

LOG = logging.getLogger("train_digits")

# The digits are 8x8 grey images with values 0..16; the network sees them as 8x8x1 in [0, 1].
IMAGE_SIZE = 8
CHANNELS = 1
NUM_CLASSES = 10
PIXEL_MAX = 16.0

# Where the CI job looks for the results.
DEFAULT_OUT = "results"
ACCURACY_FILE = "accuracy.txt"
HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"


def parse_args(argv=None):
    """The command line: everything the tuning job may want to change without editing code."""
    parser = argparse.ArgumentParser(description="Train a CNN on the digits data set.")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam step size")
    parser.add_argument("--validation-split", type=float, default=0.15)
    parser.add_argument("--test-size", type=float, default=0.2, help="held-out fraction")
    parser.add_argument("--seed", type=int, default=1234, help="for numpy, random and keras")
    parser.add_argument("--augment", action="store_true", help="random shifts of one pixel")
    parser.add_argument("--patience", type=int, default=4, help="early-stopping patience")
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder for the results")
    parser.add_argument("--no-plot", action="store_true", help="skip the training curves")
    parser.add_argument("--verbose", "-v", action="count", default=0)
    return parser.parse_args(argv)


def set_seed(seed):
    """Make a run repeatable (as far as the backend allows)."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import keras

        keras.utils.set_random_seed(seed)
    except (ImportError, AttributeError):
        LOG.warning("could not seed keras; results may vary a little")


def setup_logging(verbosity):
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def load_data(test_size, seed):
    """Digits as (x_train, y_train), (x_test, y_test), scaled to [0, 1] and one-hot encoded."""
    digits = load_digits()
    images = digits.images.astype("float32") / PIXEL_MAX
    images = images.reshape((-1, IMAGE_SIZE, IMAGE_SIZE, CHANNELS))
    labels = to_categorical(digits.target, NUM_CLASSES)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_size, random_state=seed, stratify=digits.target
    )
    LOG.info("train %s, test %s", x_train.shape, x_test.shape)
    return (x_train, y_train), (x_test, y_test)


def shift_images(images, max_shift=1, rng=None):
    """Shift every image by up to `max_shift` pixels in each direction, padding with zeros."""
    rng = rng or np.random.default_rng()
    shifted = np.zeros_like(images)
    for i, image in enumerate(images):
        dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
        rolled = np.roll(np.roll(image, dy, axis=0), dx, axis=1)
        # np.roll wraps around; blank the rows and columns that came from the other side.
        if dy > 0:
            rolled[:dy, :, :] = 0
        elif dy < 0:
            rolled[dy:, :, :] = 0
        if dx > 0:
            rolled[:, :dx, :] = 0
        elif dx < 0:
            rolled[:, dx:, :] = 0
        shifted[i] = rolled
    return shifted


def augment(x, y, copies=1, seed=0):
    """The training set plus `copies` shifted versions of it."""
    rng = np.random.default_rng(seed)
    xs, ys = [x], [y]
    for _ in range(copies):
        xs.append(shift_images(x, rng=rng))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def class_balance(y):
    """How many examples of each class: a quick check that the split is stratified."""
    counts = np.bincount(np.argmax(y, axis=1), minlength=NUM_CLASSES)
    return {str(digit): int(count) for digit, count in enumerate(counts)}


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

def build_model(input_shape=(IMAGE_SIZE, IMAGE_SIZE, CHANNELS), num_classes=NUM_CLASSES):
    """Two small convolutions: the images are only 8x8, so one pooling step is all they take."""
    model = Sequential()
    model.add(Conv2D(16, (3, 3), activation="relu", padding="same", input_shape=input_shape))
    model.add(BatchNormalization())
    model.add(Conv2D(32, (3, 3), activation="relu", padding="same"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Dropout(0.25))
    model.add(Flatten())
    model.add(Dense(64, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(num_classes, activation="softmax"))
    return model


def compile_model(net, learning_rate):
    net.compile(
        optimizer=Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return net


def make_callbacks(out_dir, patience):
    """Stop when validation loss stalls, lower the rate before that, keep the best weights."""
    checkpoint = ModelCheckpoint(
        str(out_dir / "best.keras"), monitor="val_accuracy", save_best_only=True, verbose=0
    )
    early = EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    plateau = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, patience // 2))
    return [checkpoint, early, plateau]


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def save_history(history, path):
    """The per-epoch metrics as JSON, so later jobs can compare runs without re-training."""
    data = {key: [float(v) for v in values] for key, values in history.history.items()}
    path.write_text(json.dumps(data, indent=2))
    return data


def plot_curves(history, path):
    """Loss and accuracy per epoch, training and validation side by side."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # the CI container has no display
        import matplotlib.pyplot as plt
    except ImportError:
        LOG.warning("matplotlib is not installed; no curves written")
        return None
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs_run = range(1, len(history.history["loss"]) + 1)
    ax_loss.plot(epochs_run, history.history["loss"], label="train")
    ax_loss.plot(epochs_run, history.history["val_loss"], label="validation")
    ax_loss.set_title("loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.legend()
    ax_acc.plot(epochs_run, history.history["accuracy"], label="train")
    ax_acc.plot(epochs_run, history.history["val_accuracy"], label="validation")
    ax_acc.set_title("accuracy")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylim(0.0, 1.0)
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def evaluate(net, x_test, y_test):
    """Test loss and accuracy, plus the per-class report the developer gets by email."""
    loss, accuracy = net.evaluate(x_test, y_test, verbose=0)
    predicted = np.argmax(net.predict(x_test, verbose=0), axis=1)
    actual = np.argmax(y_test, axis=1)
    report = classification_report(actual, predicted, digits=3)
    matrix = confusion_matrix(actual, predicted)
    # The digits most often confused, e.g. 8 read as 1: the first thing to look at.
    off_diagonal = matrix - np.diag(np.diag(matrix))
    worst = np.unravel_index(np.argmax(off_diagonal), off_diagonal.shape)
    return {
        "loss": float(loss),
        "accuracy": float(accuracy),
        "report": report,
        "most_confused": [int(worst[0]), int(worst[1]), int(off_diagonal[worst])],
    }


def write_accuracy(out_dir, accuracy):
    """One number, as a percentage, for the Jenkins job that decides whether to tune again."""
    path = out_dir / ACCURACY_FILE
    path.write_text(f"{accuracy * 100:.2f}\\n")
    return path


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main(argv=None):
    args = parse_args(argv)
    setup_logging(args.verbose)
    set_seed(args.seed)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    (x_train, y_train), (x_test, y_test) = load_data(args.test_size, args.seed)
    if args.augment:
        x_train, y_train = augment(x_train, y_train, copies=1, seed=args.seed)
        LOG.info("augmented training set: %s", x_train.shape)
    LOG.debug("class balance: %s", class_balance(y_train))

    model = build_model()
    compile_model(model, args.learning_rate)
    if args.verbose:
        model.summary(print_fn=LOG.info)

    started = time.time()
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_split=args.validation_split,
        callbacks=make_callbacks(out_dir, args.patience),
        verbose=2 if args.verbose else 0,
    )
    elapsed = time.time() - started
    LOG.info("trained %d epochs in %.1f s", len(history.history["loss"]), elapsed)

    save_history(history, out_dir / HISTORY_FILE)
    if not args.no_plot:
        plot_curves(history, out_dir / CURVES_FILE)

    results = evaluate(model, x_test, y_test)
    write_accuracy(out_dir, results["accuracy"])
    print(results["report"])
    print(f"test accuracy: {results['accuracy']:.4f}")
    print(f"test loss: {results['loss']:.4f}")
    true_digit, read_as, times = results["most_confused"]
    print(f"most confused: {true_digit} read as {read_as} ({times} times)")
    # Summary for the job log, one line, easy to grep.
    summary = {
        "accuracy": round(results["accuracy"], 4),
        "epochs": len(history.history["loss"]),
        "seconds": round(elapsed, 1),
        "params": int(model.count_params()),
    }
    print("SUMMARY " + json.dumps(summary, sort_keys=True))
    return 0 if results["accuracy"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
'''


def long_script() -> str:
    """The benchmark script's text (about 300 lines)."""
    return LONG_SCRIPT


def write_long_script(path: Path) -> Path:
    path = Path(path)
    path.write_text(LONG_SCRIPT, encoding="utf-8")
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/make_long_script.py OUT.py")
    print(write_long_script(Path(sys.argv[1])))
