"""The search space of `mutate tune` on fixtures/cnn_digits.py, as KerasTuner sees it.

    python bench/search_space.py kerastuner --method random|hyperband|bayesian --seed S \
        --targets T [T...] --max-trials N --time-cap SECONDS --dir DIR --out OUT.jsonl \
        [--task NAME] [--every-epoch]
    python bench/search_space.py replay [--repeat R] --out OUT.json SCRIPT...

`kerastuner` runs one KerasTuner search in this process (so TensorFlow is imported once, and that
import is counted) and writes one JSON line per trial to OUT: its seconds, its test accuracy, its
hyperparameters, and `time.monotonic()` at its end (CLOCK_MONOTONIC is system-wide on Linux, so
the parent reads it as seconds since it started this process). It stops as soon as a trial's
model reaches the highest target TEST accuracy (the number `mutate tune` optimises), or at
`--max-trials` (RandomSearch and BayesianOptimization), or at `--time-cap` seconds after this
process started. One search thus times every target: the parent reads when each was first met.

A `Space` is what one search covers: the script's data, the model family a user would search, how
each model is fitted and the metric judged on the test set. Without `--task` it is the digits CNN
below; `--task NAME` takes the space of a task of the suite (bench/suite/). `--every-epoch`
evaluates the test set at the end of every epoch (not only at a trial's end) and writes a `met`
line the first time a target is met, so a target's time is the end of the epoch that met it.
What a search child does whatever searches (the data, the fit, the clock, the lines) is `Child`;
bench/optuna_search.py drives the same `Child` with Optuna instead of KerasTuner.

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
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
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


def reached(value: float | None, target: float, mode: str = "max") -> bool:
    """Whether `value` meets `target`: at least it (accuracy), or at most it (mode "min": a loss)."""
    if value is None:
        return False
    if mode == "min":
        return value <= target + TARGET_TOLERANCE
    return value >= target - TARGET_TOLERANCE


@dataclass(frozen=True)
class Space:
    """One KerasTuner search's ground: the script's data, the model family and how it is fitted.

    `build(hp)` declares the model's hyperparameters and returns the compiled model; the epochs
    are declared by the search (a choice among `epochs` for RandomSearch and Bayesian, the
    resource up to `epochs[-1]` for Hyperband). `metric` is the key of `evaluate(...,
    return_dict=True)` judged on the test set, and its validation twin is the objective.
    """

    load_data: Callable[[], tuple[Any, Any, Any, Any]]  # x_train, x_test, y_train, y_test
    build: Callable[[Any], Any]
    epochs: tuple[int, ...]
    default_epochs: int
    batch_size: int
    validation_split: float = VALIDATION_SPLIT
    metric: str = "accuracy"
    mode: str = "max"


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


def build_digits(hp):
    """The digits CNN's hyperparameters, from the weak script's values."""
    return build_model(
        filters=hp.Choice("filters", FILTERS, default=WEAK["filters"]),
        kernel=hp.Choice("kernel", KERNELS, default=WEAK["kernel"]),
        conv_blocks=hp.Int("conv_blocks", *CONV_BLOCKS, default=WEAK["conv_blocks"]),
        dense_layers=hp.Int("dense_layers", *DENSE_LAYERS, default=WEAK["dense_layers"]),
    )


DIGITS = Space(load_data, build_digits, tuple(EPOCHS), WEAK["epochs"], BATCH_SIZE)


def space_of(task: str | None) -> Space:
    """The digits CNN's space, or the space of the suite's task `task` (bench/suite/)."""
    if task is None:
        return DIGITS
    from suite import task_named  # bench/ is this script's folder, first on sys.path

    return task_named(task).space


# -- the search child: what every anchor shares -------------------------------------------------


class Stop(Exception):
    """Ends a search child before its searcher would: at the target, or at the time cap."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Child:
    """One anchor's search process, whatever searches: the task's data and how a trial fits on
    it, the test set evaluated at epochs' ends (kept off the clock), the targets no epoch has met
    yet, the deadline, and the JSON lines the parent reads. `stop` is the Stop its searcher lets
    through (KerasTuner's must be a FatalError)."""

    def __init__(self, args: argparse.Namespace, stop: type[Stop] = Stop) -> None:
        import keras

        self.args = args
        self.space = space_of(args.task)
        self.x_train, self.x_test, self.y_train, self.y_test = self.space.load_data()
        self.import_seconds = time.monotonic() - STARTED
        self.deadline = STARTED + args.time_cap
        self.stop = stop
        self.highest = max(args.targets)
        self.pending = sorted(set(args.targets))  # --every-epoch: the targets no epoch met yet
        self.measuring = 0.0  # seconds spent so far evaluating the test set at epochs' ends
        self.trials = 0  # trials finished
        self.out = open(args.out, "a", encoding="utf-8")  # noqa: SIM115 - open for the search
        self.deadline_callback, self.paced_callback = callback_types(keras, self)

    def emit(self, record: dict[str, Any], at: float | None = None) -> None:
        """One line; `measuring` lets the parent take our own test evaluations off the clock."""
        now = time.monotonic() if at is None else at
        record["elapsed"] = round(now - STARTED, 3)
        record["monotonic"] = now
        record["measuring"] = round(self.measuring, 3)
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def test_value(self, model: Any) -> float:
        results = model.evaluate(self.x_test, self.y_test, verbose=0, return_dict=True)
        return float(results[self.space.metric])

    def check_deadline(self) -> None:
        if time.monotonic() >= self.deadline:
            raise self.stop("time_cap")

    def fit(self, model: Any, epochs: int, callbacks: list, **kwargs: Any) -> tuple[Any, dict]:
        """Fit a trial's model as the script does, paced: its history, and its summary line."""
        paced = self.paced_callback()
        history = model.fit(
            self.x_train,
            self.y_train,
            epochs=epochs,
            batch_size=self.space.batch_size,
            validation_split=self.space.validation_split,
            verbose=0,
            callbacks=[*callbacks, self.deadline_callback(), paced],
            **kwargs,
        )
        last = {
            "test_value": self.test_value(model),
            "epochs_trained": len(history.history.get("loss", [])),
            "epochs_to": int(epochs),
            "initial_epoch": int(kwargs.get("initial_epoch", 0)),
            **{k: v for k, v in paced.size().items() if k != "seconds"},
        }
        return history, last

    def trial_ended(self, record: dict[str, Any], last: dict[str, Any]) -> None:
        """A trial's line, after its searcher's own bookkeeping; the search stops at the
        highest target."""
        self.trials += 1
        self.emit({"event": "trial", "trial": self.trials, **record, **last})
        print(
            f"trial {self.trials}: {record.get('hp')} -> test {last.get('test_value')}",
            file=sys.stderr,
            flush=True,
        )
        if reached(last.get("test_value"), self.highest, self.space.mode):
            raise self.stop("target")

    def search(self, run: Callable[[], Any], reason: str) -> None:
        """`run` the searcher between the start and end lines; `reason` if it ends on its own."""
        self.emit({"event": "start", "import_and_data_seconds": round(self.import_seconds, 3)})
        try:
            run()
        except Stop as stop:
            reason = stop.reason
        self.emit({"event": "end", "reason": reason, "trials": self.trials})
        self.out.close()


def callback_types(keras: Any, child: Child) -> tuple[type, type]:
    """The Keras callbacks every trial's fit gets: the deadline, and the pace (with
    --every-epoch, the test metric at each epoch's end and the `met` lines)."""

    class Deadline(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            child.check_deadline()

    class Paced(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.began, self.epochs, self.measured = time.monotonic(), 0, 0.0

        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1
            if not child.args.every_epoch:
                return
            ended = time.monotonic()
            value = child.test_value(self.model)
            size = self.size(ended)
            self.measured += time.monotonic() - ended
            for target in [t for t in child.pending if reached(value, t, child.space.mode)]:
                child.pending.remove(target)
                record = {"event": "met", "target": target, "trial": child.trials + 1}
                child.emit({**record, "epoch": epoch + 1, "test_value": value, **size}, at=ended)
            child.measuring += time.monotonic() - ended
            if not child.pending:
                raise child.stop("target")

        def size(self, now: float | None = None) -> dict[str, Any]:
            """The model's parameters and the fit's pace so far, our test evaluations left out."""
            seconds = (now or time.monotonic()) - self.began - self.measured
            return {
                "params": int(self.model.count_params()),
                "seconds_per_epoch": round(seconds / max(self.epochs, 1), 4),
                "seconds": round(seconds, 3),  # the fit so far (a trial line has its own)
            }

    return Deadline, Paced


# -- the KerasTuner child --------------------------------------------------------------------


def run_kerastuner(args: argparse.Namespace) -> int:
    import keras_tuner as kt

    class KerasTunerStop(Stop, kt.errors.FatalError):
        """KerasTuner lets a FatalError through its search."""

    child = Child(args, KerasTunerStop)
    space = child.space
    with_epochs = args.method in TUNED_EPOCHS

    class TaskHyperModel(kt.HyperModel):
        last: dict[str, Any] = {}

        def build(self, hp):
            model = space.build(hp)
            if with_epochs:  # declared after the model's, as before spaces: the same draws
                hp.Choice("epochs", list(space.epochs), default=space.default_epochs)
            return model

        def fit(self, hp, model, *fit_args, **kwargs):
            kwargs.pop("verbose", None)
            epochs = kwargs.pop("epochs", None) or hp.get("epochs")
            callbacks = kwargs.pop("callbacks", [])
            history, TaskHyperModel.last = child.fit(model, epochs, callbacks, **kwargs)
            return history

    class Timed:
        """Times every trial and stops the search at the target test accuracy or the time cap."""

        trial_started = 0.0

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            # KerasTuner 1.4.8 imports tensorboard here for every trial on the TF backend, even
            # with no TensorBoard callback; TF 2.21 no longer installs tensorboard. We pass none.
            return None

        def pre_create_trial(self):
            child.check_deadline()
            super().pre_create_trial()

        def on_trial_begin(self, trial):
            TaskHyperModel.last = {}
            self.trial_started = time.monotonic()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)  # the oracle's bookkeeping and saving count too
            values = {
                key: value
                for key, value in trial.hyperparameters.values.items()
                if not key.startswith("tuner/") or key == "tuner/epochs"
            }
            record = {
                "trial_id": trial.trial_id,
                "status": str(trial.status),
                "seconds": round(time.monotonic() - self.trial_started, 3),
                "val_score": trial.score,  # the objective, on the validation split
                "hp": values,
            }
            child.trial_ended(record, TaskHyperModel.last)

    common = {
        "objective": kt.Objective(f"val_{space.metric}", direction=space.mode),
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
        kwargs = {"max_epochs": space.epochs[-1], "factor": HYPERBAND_FACTOR}
    tuner_class = type(f"Timed{base.__name__}", (Timed, base), {})
    tuner = tuner_class(TaskHyperModel(), **common, **kwargs)
    reason = "exhausted" if args.method == "hyperband" else "max_trials"
    child.search(lambda: tuner.search(verbose=0), reason)
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


def add_search_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every search child takes (KerasTuner's here, Optuna's in optuna_search.py)."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--targets", "--target", type=float, nargs="+", required=True, help="stop at the highest"
    )
    parser.add_argument("--max-trials", type=int, default=20, help="not Hyperband's")
    parser.add_argument("--time-cap", type=float, default=300.0, help="seconds from start")
    parser.add_argument("--out", required=True, help="JSON lines, appended")
    parser.add_argument("--task", help="a task of bench/suite/ (default: the digits CNN)")
    parser.add_argument(
        "--every-epoch", action="store_true", help="test at every epoch's end, not a trial's"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tuner = commands.add_parser("kerastuner", help="one KerasTuner search, one line per trial")
    tuner.add_argument("--method", choices=METHODS, required=True)
    tuner.add_argument("--dir", required=True, help="KerasTuner's directory")
    add_search_flags(tuner)
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
