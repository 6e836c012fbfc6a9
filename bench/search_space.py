"""The search space of `mutate tune` on fixtures/cnn_digits.py, as KerasTuner sees it.

    python bench/search_space.py kerastuner --method random|hyperband|bayesian --seed S \
        --targets T [T...] --max-trials N --time-cap SECONDS --dir DIR --out OUT.jsonl
    python bench/search_space.py replay [--repeat R] --out OUT.json SCRIPT...

`kerastuner` runs one KerasTuner search in this process (so TensorFlow is imported once, and that
import is counted) and writes one JSON line per trial to OUT: its seconds, its test accuracy, its
hyperparameters, and `time.monotonic()` at its end (CLOCK_MONOTONIC is system-wide on Linux, so
the parent reads it as seconds since it started this process). It stops as soon as a trial's
model reaches the highest target TEST accuracy (the number `mutate tune` optimises), or at
`--max-trials` (RandomSearch and BayesianOptimization), or at `--time-cap` seconds after this
process started. One search thus times every target: the parent reads when each was first met.

`replay` is the "warm worker": it imports Keras once and runs the given training scripts one
after another in this process (`runpy`), timing each; that is what a trial would cost if TF were
not imported again for every trial.

Keras, TensorFlow and KerasTuner are imported only inside the children: `bench_search.py` imports
this module for its constants alone.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # before any heavy import: the children's import time is counted

import argparse  # noqa: E402 - after the clock on purpose
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import runpy  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

# The weak starting model of fixtures/cnn_digits.py, as hyperparameter values.
WEAK = {"filters": 4, "kernel": 3, "conv_blocks": 1, "dense_layers": 0, "epochs": 2}
# What mutate's rules can reach from it: filters x2 up to 512, kernel 3 -> 5 -> 7, up to 4 Conv
# layers, up to 3 hidden Dense(64), epochs x2 up to 200.
FILTERS = [4, 8, 16, 32, 64, 128, 256, 512]
KERNELS = [3, 5, 7]
CONV_BLOCKS = (1, 4)
DENSE_LAYERS = (0, 3)
EPOCHS = [2, 4, 8, 16, 32, 64, 128, 200]
MAX_FILTERS = 512
DENSE_UNITS = 64
BATCH_SIZE = 16
VALIDATION_SPLIT = 0.1
MODEL_SEED = 0  # the script calls keras.utils.set_random_seed(0) before it builds the model
HYPERBAND_FACTOR = 3
METHODS = ("random", "hyperband", "bayesian")
TUNED_EPOCHS = ("random", "bayesian")  # Hyperband's epochs are its resource, not a choice
# As mutate's search.reached: Keras reports 342/360 as float32 0.949999988, below 0.95.
TARGET_TOLERANCE = 1e-6


def reached(accuracy: float | None, target: float) -> bool:
    return accuracy is not None and accuracy >= target - TARGET_TOLERANCE


def load_data():
    """Exactly the script's data, preprocessing and split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.reshape(-1, 8, 8, 1).astype("float32") / 16.0
    y = digits.target
    return train_test_split(x, y, test_size=0.2, random_state=0)


def build_model(filters: int, kernel: int, conv_blocks: int, dense_layers: int):
    """The script's model, grown the way mutate's rules grow it.

    The first Conv is the script's (valid padding, on the 8x8 input). Each further block is a copy
    of the last Conv with filters x2 (at most 512) and padding="same", then a 2x2 pooling while the
    feature map is at least 2x2 (an 8x8 digit is 1x1 after two pools: deeper blocks are Conv only).
    Hidden Dense layers of 64 units go before the output layer.
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(MODEL_SEED)
    model = keras.Sequential([keras.Input(shape=(8, 8, 1))])
    size = 8
    for block in range(conv_blocks):
        first = block == 0
        model.add(
            layers.Conv2D(
                min(filters * 2**block, MAX_FILTERS),
                (kernel, kernel),
                activation="relu",
                padding="valid" if first else "same",
            )
        )
        if first:
            size = size - kernel + 1
        if size >= 2:
            model.add(layers.MaxPooling2D(pool_size=(2, 2)))
            size //= 2
    model.add(layers.Flatten())
    for _ in range(dense_layers):
        model.add(layers.Dense(DENSE_UNITS, activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# -- the KerasTuner child --------------------------------------------------------------------


def run_kerastuner(args: argparse.Namespace) -> int:
    import keras
    import keras_tuner as kt

    x_train, x_test, y_train, y_test = load_data()
    import_seconds = time.monotonic() - STARTED
    deadline = STARTED + args.time_cap
    out = open(args.out, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole search

    def emit(record: dict[str, Any]) -> None:
        now = time.monotonic()
        record["elapsed"] = round(now - STARTED, 3)
        record["monotonic"] = now
        out.write(json.dumps(record) + "\n")
        out.flush()

    class Stop(kt.errors.FatalError):
        """Raised out of the search: KerasTuner lets a FatalError through."""

        def __init__(self, reason: str) -> None:
            super().__init__(reason)
            self.reason = reason

    class Deadline(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() >= deadline:
                raise Stop("time_cap")

    with_epochs = args.method in TUNED_EPOCHS
    highest = max(args.targets)

    class DigitsHyperModel(kt.HyperModel):
        last: dict[str, Any] = {}

        def build(self, hp):
            values = {
                "filters": hp.Choice("filters", FILTERS, default=WEAK["filters"]),
                "kernel": hp.Choice("kernel", KERNELS, default=WEAK["kernel"]),
                "conv_blocks": hp.Int("conv_blocks", *CONV_BLOCKS, default=WEAK["conv_blocks"]),
                "dense_layers": hp.Int("dense_layers", *DENSE_LAYERS, default=WEAK["dense_layers"]),
            }
            if with_epochs:
                hp.Choice("epochs", EPOCHS, default=WEAK["epochs"])
            return build_model(**values)

        def fit(self, hp, model, *fit_args, **kwargs):
            kwargs.pop("verbose", None)
            epochs = kwargs.pop("epochs", None) or hp.get("epochs")
            initial = kwargs.get("initial_epoch", 0)
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), Deadline()]
            history = model.fit(
                x_train,
                y_train,
                epochs=epochs,
                batch_size=BATCH_SIZE,
                validation_split=VALIDATION_SPLIT,
                verbose=0,
                **kwargs,
            )
            _, accuracy = model.evaluate(x_test, y_test, verbose=0)
            DigitsHyperModel.last = {
                "test_accuracy": float(accuracy),
                "epochs_trained": len(history.history.get("loss", [])),
                "epochs_to": int(epochs),
                "initial_epoch": int(initial),
            }
            return history

    class Timed:
        """Times every trial and stops the search at the target test accuracy or the time cap."""

        count = 0
        trial_started = 0.0

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            # KerasTuner 1.4.8 imports tensorboard here for every trial on the TF backend, even
            # with no TensorBoard callback; TF 2.21 no longer installs tensorboard. We pass none.
            return None

        def pre_create_trial(self):
            if time.monotonic() >= deadline:
                raise Stop("time_cap")
            super().pre_create_trial()

        def on_trial_begin(self, trial):
            DigitsHyperModel.last = {}
            self.trial_started = time.monotonic()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)  # the oracle's bookkeeping and saving count too
            Timed.count += 1
            last = DigitsHyperModel.last
            values = {
                key: value
                for key, value in trial.hyperparameters.values.items()
                if not key.startswith("tuner/") or key == "tuner/epochs"
            }
            emit(
                {
                    "event": "trial",
                    "trial": Timed.count,
                    "trial_id": trial.trial_id,
                    "status": str(trial.status),
                    "seconds": round(time.monotonic() - self.trial_started, 3),
                    "val_accuracy": trial.score,
                    "hp": values,
                    **last,
                }
            )
            print(
                f"trial {Timed.count}: {values} -> test {last.get('test_accuracy')}",
                file=sys.stderr,
                flush=True,
            )
            if reached(last.get("test_accuracy"), highest):
                raise Stop("target")

    common = {
        "objective": "val_accuracy",
        "seed": args.seed,
        "directory": args.dir,
        "project_name": f"{args.method}_{args.seed}",
        "overwrite": True,
    }
    if args.method == "random":
        base, kwargs = kt.RandomSearch, {"max_trials": args.max_trials}
    elif args.method == "bayesian":
        # KerasTuner's defaults otherwise: 3 x 5 dimensions = 15 random points before the GP.
        base, kwargs = kt.BayesianOptimization, {"max_trials": args.max_trials}
    else:
        base = kt.Hyperband
        kwargs = {"max_epochs": EPOCHS[-1], "factor": HYPERBAND_FACTOR}
    tuner_class = type(f"Timed{base.__name__}", (Timed, base), {})
    tuner = tuner_class(DigitsHyperModel(), **common, **kwargs)
    emit({"event": "start", "import_and_data_seconds": round(import_seconds, 3)})
    reason = "exhausted" if args.method == "hyperband" else "max_trials"
    try:
        tuner.search(verbose=0)
    except Stop as stop:
        reason = stop.reason
    emit({"event": "end", "reason": reason, "trials": Timed.count})
    out.close()
    return 0


# -- the warm replay ---------------------------------------------------------------------------

ACCURACY_LINE = re.compile(r"test accuracy: ([0-9.]+)")


def run_replay(args: argparse.Namespace) -> int:
    import keras
    import sklearn.datasets  # noqa: F401 - the scripts' own imports, paid once here
    import sklearn.model_selection  # noqa: F401

    import_seconds = time.monotonic() - STARTED
    runs = []
    for script in args.scripts:
        for _ in range(args.repeat):
            keras.backend.clear_session()
            printed = io.StringIO()
            started = time.monotonic()
            with contextlib.redirect_stdout(printed):
                runpy.run_path(str(script), run_name="__main__")
            seconds = time.monotonic() - started
            found = ACCURACY_LINE.findall(printed.getvalue())
            runs.append(
                {
                    "script": str(script),
                    "seconds": round(seconds, 3),
                    "test_accuracy": float(found[-1]) if found else None,
                }
            )
            print(f"{script}: {seconds:.1f} s", file=sys.stderr, flush=True)
    result = {"import_seconds": round(import_seconds, 3), "runs": runs}
    Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tuner = commands.add_parser("kerastuner", help="one KerasTuner search, one line per trial")
    tuner.add_argument("--method", choices=METHODS, required=True)
    tuner.add_argument("--seed", type=int, default=0)
    tuner.add_argument(
        "--targets", "--target", type=float, nargs="+", required=True, help="stop at the highest"
    )
    tuner.add_argument("--max-trials", type=int, default=20, help="not Hyperband's")
    tuner.add_argument("--time-cap", type=float, default=300.0, help="seconds from start")
    tuner.add_argument("--dir", required=True, help="KerasTuner's directory")
    tuner.add_argument("--out", required=True, help="JSON lines, appended")
    replay = commands.add_parser("replay", help="run scripts in one warm process, timed")
    replay.add_argument("scripts", nargs="+", type=Path)
    replay.add_argument("--repeat", type=int, default=1)
    replay.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.command == "kerastuner":
        return run_kerastuner(args)
    return run_replay(args)


if __name__ == "__main__":
    raise SystemExit(main())
