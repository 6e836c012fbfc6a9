"""The benchmark suite: weak starting scripts of different kinds, each with a target a good model
of its family reaches, and the KerasTuner search a user would write for that family.

Each task is one script beside this file, written as a user would: a self-contained Keras
training script, seeded with `keras.utils.set_random_seed(0)` as the fixtures are (the script's
seed fixes its model, as a user's does; `mutate tune`'s noise runs move it to measure the
spread, and a KerasTuner search's seed is its oracle's), data only from scikit-learn's bundled
sets or generated, printing its test metric. `bench/bench_suite.py` runs `mutate tune` on a
fresh copy of it against the KerasTuner searches of `space`.

Targets were calibrated on this machine (2 cores, shared): the weak script is clearly below its
target, and a good model of the same family (in the space) reaches it from each of the model
seeds 0, 1 and 2 in seconds of training; each task's `calibration` says what was measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from search_runs import TuneScript
from search_space import DIGITS, Space

from suite import spaces

SUITE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Task:
    """One weak script, the number it must reach, and the KerasTuner search of its family."""

    name: str  # the script is suite/<name>.py
    kind: str  # what makes it a different task, in a few words
    target: float
    space: Space
    calibration: str  # the weak script's value, and the good model that reaches the target

    @property
    def script(self) -> Path:
        return SUITE / f"{self.name}.py"

    @property
    def metric(self) -> str:
        return self.space.metric

    @property
    def mode(self) -> str:
        return self.space.mode

    def for_mutate(self) -> TuneScript:
        """The script as `mutate tune` is given it: its default metric is the test accuracy."""
        metric = None if self.metric == "accuracy" else self.metric
        return TuneScript(self.script, metric, self.mode, self.name)


TASKS: tuple[Task, ...] = (
    Task(
        "lstm_digits",
        "recurrent: one small LSTM over digit rows",
        0.95,
        Space(spaces.load_digit_rows, spaces.build_lstm_digits, (5, 10, 20, 40, 80), 5, 32),
        "LSTM(4), 5 epochs: 0.13; LSTM(32), Adam 1e-2, 20 epochs: 0.953 / 0.972 / 0.972",
    ),
    Task(
        "sgd_slow_cnn",
        "learning-rate-limited: plain SGD at 1e-3",
        0.95,
        Space(spaces.load_digit_images, spaces.build_sgd_slow_cnn, (10, 20, 40, 80), 10, 32),
        "SGD 1e-3, 10 epochs: 0.07; SGD 1e-1, 40 epochs: 0.972 / 0.953 / 0.964",
    ),
    Task(
        "conv1d_signal",
        "Conv1D on generated 1-D signals",
        0.85,
        Space(spaces.load_signals, spaces.build_conv1d_signal, (3, 6, 12, 24, 48), 3, 32),
        "Conv1D(4, 3), 3 epochs: 0.36 / 0.27 / 0.27; 2 x Conv1D(32, 9), Adam 1e-2, 24 epochs: 0.853 / 0.890 / 0.870",
    ),
    Task(
        "mlp_tabular",
        "Dense MLP on tabular data (breast cancer), SGD",
        0.94,
        Space(
            spaces.load_breast_cancer_scaled, spaces.build_mlp_tabular, (3, 6, 12, 25, 50), 3, 32
        ),
        "Dense(2), SGD 0.01, 3 epochs: 0.71 / 0.46 / 0.60; Dense(16), SGD 0.1, 25 epochs: 0.942 / 0.959 / 0.959",
    ),
    Task(
        "regression_mae",
        "regression, judged by a loss (MAE, lower is better)",
        48.0,
        Space(
            spaces.load_diabetes_split,
            spaces.build_regression_mae,
            (20, 40, 80, 160),
            20,
            32,
            metric="mae",
            mode="min",
        ),
        "Dense(4), 20 epochs: MAE 143 / 125 / 124; Dense(32), Adam 0.1, 80 epochs: 46.5 / 46.2 / 46.2",
    ),
    Task(
        "undertrained_gru",
        "under-trained: a fair GRU stopped after one epoch",
        0.95,
        Space(spaces.load_digit_rows, spaces.build_undertrained_gru, (1, 2, 4, 8, 16, 32), 1, 32),
        "GRU(32), 1 epoch: 0.42 / 0.36 / 0.57; the same, 16 epochs: 0.958 / 0.964 / 0.964",
    ),
    Task(
        "fast_lr_wine",
        "learning rate far too large: Adam at 3.0 thrashes",
        0.95,
        Space(spaces.load_wine_scaled, spaces.build_fast_lr_wine, (5, 10, 20, 40), 20, 16),
        "Adam 3.0, 20 epochs: 0.63 / 0.76 / 0.57; Adam 1e-2: 1.0 / 1.0 / 1.0",
    ),
    Task(
        "functional_two_inputs",
        "functional model with two inputs",
        0.95,
        Space(spaces.load_digit_halves, spaces.build_two_inputs, (5, 10, 20, 40), 5, 32),
        "Dense(4) per input, 5 epochs: 0.24 / 0.28 / 0.25; Dense(64), Adam 1e-2, 20 epochs: 0.975 / 0.981 / 0.981",
    ),
    Task(
        "subclassed_mlp",
        "subclassed keras.Model (layers in __init__, wiring in call)",
        0.95,
        Space(spaces.load_digit_pixels, spaces.build_digit_mlp, (5, 10, 20, 40), 5, 32),
        "Dense(8), 5 epochs: 0.53 / 0.39 / 0.41; Dense(64), Adam 1e-2, 20 epochs: 0.975 / 0.975 / 0.978",
    ),
    Task(
        "cnn_no_validation",
        "a weak digits CNN without validation data",
        0.95,
        DIGITS,
        "Conv2D(4, 3), 2 epochs: 0.33; Conv2D(32) + Dense(64), 16 epochs: 0.983 (model seed 0 only)",
    ),
    Task(
        "overfit_diabetes",
        "over-fitting: a wide, deep MLP trained long (diabetes, MAE)",
        48.0,
        Space(
            spaces.load_diabetes_split,
            spaces.build_overfit_diabetes,
            (10, 25, 50, 100),
            100,
            16,
            metric="mae",
            mode="min",
        ),
        "3 x Dense(512), Adam 1e-2, 100 epochs: MAE 57.5 / 60.9 / 67.7 (training MAE 23); the same with Dropout(0.5): 43.9 / 45.7 / 45.8, or for 10 epochs: 45.3 / 45.5 / 44.5",
    ),
)


def task_named(name: str) -> Task:
    for task in TASKS:
        if task.name == name:
            return task
    raise KeyError(f"no task {name!r} in the suite; tasks are: {', '.join(NAMES)}")


NAMES = tuple(task.name for task in TASKS)
__all__ = ["DIGITS", "NAMES", "SUITE", "TASKS", "Task", "task_named"]
