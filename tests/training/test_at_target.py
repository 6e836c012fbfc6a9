"""A change stops at the target: the script's evaluate as the watch reads it, and the real
harness (the stopped run is, epoch for epoch, the run of the script with its epochs cut)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from harness_run import run_harness

from mutator.training.at_target import (
    EvaluateCall,
    TargetStop,
    TargetWatch,
    evaluate_call,
    line,
    one_batch,
    resolve,
)

FIT = "model.fit(x_train, y_train, epochs=40)\n"


def test_the_scripts_one_evaluate_is_read_as_written():
    call = evaluate_call(FIT + "loss, acc = model.evaluate(x_test, y_test, verbose=0)\n")
    assert call == EvaluateCall(x="x_test", y="y_test", options=())
    keywords = evaluate_call(FIT + "model.evaluate(x=data['x'], y=labels[:100], batch_size=B)\n")
    assert keywords == EvaluateCall(x="data['x']", y="labels[:100]", options=(("batch_size", "B"),))
    two_inputs = evaluate_call(FIT + "model.evaluate([top, bottom], y_test, 64)\n")
    assert two_inputs == EvaluateCall(
        x="[top, bottom]", y="y_test", options=(("batch_size", "64"),)
    )
    assert evaluate_call(FIT + "model.evaluate(test_ds)\n") == EvaluateCall("test_ds", None, ())
    scaled = "scaler = StandardScaler().fit(x_train)\n" + FIT + "model.evaluate(x_test, y_test)\n"
    assert evaluate_call(scaled) == EvaluateCall("x_test", "y_test", ())  # not a Keras fit


@pytest.mark.parametrize(
    "source",
    [
        FIT + "model.evaluate(x_test, y_test)\nmodel.evaluate(x_train, y_train)\n",  # which one?
        FIT + FIT + "model.evaluate(x_test, y_test)\n",  # two fits: the epochs cut is whose?
        FIT,  # no evaluate: the metric is read elsewhere
        FIT + "model.evaluate(scale(x_test), y_test)\n",  # a call: it may not be repeatable
        FIT + "model.evaluate(x_test, y_test, **options)\n",
        FIT + "model.evaluate(*data)\n",
        FIT + "model.evaluate(x_test, y_test, use_multiprocessing=True)\n",
        FIT + "model.evaluate(x_test, y_test, 32, x=x_test)\n",  # given twice
        "model.fit(x, y\n",  # not Python
    ],
)
def test_an_evaluate_the_watch_cannot_pass_on_exactly_leaves_it_off(source):
    assert evaluate_call(source) is None


def test_the_target_is_reached_which_way_the_metric_is_better():
    accuracy = TargetStop(target=0.95, mode="max", metric=None, epochs=40)
    assert accuracy.reached(0.95) and not accuracy.reached(0.9499) and not accuracy.reached(None)
    assert not accuracy.reached(float("nan"))
    mae = TargetStop(target=48.0, mode="min", metric="mae", epochs=40)
    assert mae.reached(47.9) and not mae.reached(48.1)
    auto = TargetStop(target=48.0, mode="auto", metric=None, epochs=40)  # the script as given
    assert auto.reached(47.9, "mae") and not auto.reached(47.9, "accuracy")
    assert auto.near(40.0, "val_mae") and not auto.near(40.0, "val_accuracy")


def test_an_epoch_is_evaluated_only_when_its_logged_figure_is_near_the_target():
    accuracy = TargetStop(target=0.95, mode="max", metric=None, epochs=40, window=0.1)
    assert not accuracy.near(0.85) and accuracy.near(0.86) and accuracy.near(0.99)
    assert accuracy.near(None)  # nothing logged: no reason to skip
    mae = TargetStop(target=50.0, mode="min", metric="mae", epochs=40, window=0.1)
    assert mae.near(54.0) and not mae.near(56.0)


def test_the_value_is_the_one_the_search_reads_from_evaluate():
    default = TargetStop(target=0.9, mode="max", metric=None, epochs=10)
    assert default.value_of({"loss": 0.3, "compile_metrics": 0.9, "accuracy": 0.92}) == (
        "accuracy",
        0.92,
    )
    assert default.value_of({"loss": 0.3}) is None  # no accuracy: nothing to stop on
    named = TargetStop(target=48.0, mode="min", metric="mae", epochs=10)
    assert named.value_of({"loss": 3000.0, "mae": 47.0}) == ("mae", 47.0)


def test_the_plan_round_trips_through_its_file_and_a_missing_one_is_none(tmp_path):
    plan = TargetStop(target=0.95, mode="max", metric="accuracy", epochs=40)
    plan.write(tmp_path)
    assert TargetStop.read(tmp_path) == plan
    assert TargetStop.read(tmp_path / "absent") is None
    script = tmp_path / "train.py"
    script.write_text(FIT + "model.evaluate(x_test, y_test)\n")
    assert TargetWatch.read(tmp_path, script) == TargetWatch(
        plan, EvaluateCall("x_test", "y_test", ()), str(script)
    )
    script.write_text(FIT)  # no evaluate to repeat
    assert TargetWatch.read(tmp_path, script) is None


def test_the_data_is_read_where_fit_was_called_and_not_before_it_exists():
    call = EvaluateCall("data['x']", "y_test", (("batch_size", "B"),))
    namespace = {"data": {"x": [1, 2]}, "y_test": [0, 1], "B": 16}
    assert resolve(call, namespace) == {"x": [1, 2], "y": [0, 1], "batch_size": 16}
    assert resolve(call, {"y_test": [0, 1], "B": 16}) is None


def test_a_small_test_set_is_one_batch_and_a_large_or_unsized_one_is_not():
    assert one_batch(np.zeros((540, 64)))
    assert one_batch([np.zeros((540, 4)), np.zeros((540, 4))])
    assert one_batch({"a": np.zeros((10, 2))})
    assert not one_batch(np.zeros((200_000, 8)))  # 1.6 million values
    assert not one_batch(np.zeros((4096, 32, 32, 3), dtype="float32"))  # colour images
    assert not one_batch(iter([1, 2]))  # a generator or a dataset: evaluate reads it
    assert not one_batch([])


def test_the_stop_reads_as_one_line():
    stopped = {"epoch": 13, "planned": 40, "key": "accuracy", "value": 0.95278, "evaluations": 11}
    assert line(stopped) == "at the target after epoch 13 of 40: accuracy 0.9528"


# A digits MLP that passes 0.9 well before its 40th epoch.
DIGITS = """\
import keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)
x, y = load_digits(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.3, random_state=0)
model = keras.Sequential([
    keras.Input(shape=(64,)),
    keras.layers.Dropout(0.1),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs={epochs}, batch_size=32, validation_split=0.1, verbose=0)
loss, acc = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy: {{acc:.4f}}")
"""


def train(folder: Path, epochs: int, plan: TargetStop | None) -> dict:
    folder.mkdir(parents=True)
    if plan is not None:
        plan.write(folder)
    return run_harness(folder, DIGITS.format(epochs=epochs))


@pytest.mark.slow
def test_a_stopped_run_is_the_run_of_the_script_with_its_epochs_cut(tmp_path):
    """Stopped at epoch k of 40, the value is the script's own evaluate and equals, to the
    bit, what the script asking for k epochs reaches from scratch (with dropout drawing
    random numbers every step): evaluating moved no weight and drew no random number."""
    stopped = train(tmp_path / "stopped", 40, TargetStop(0.9, "max", None, epochs=40))
    at = stopped["at_target"]
    (fit,) = stopped["history"]
    assert at["planned"] == 40 and at["epoch"] == len(fit["epochs"]["loss"]) < 40
    assert stopped["value"] == at["value"] >= 0.9
    assert "mutator: at the target after epoch" in stopped["stdout"]
    cut = train(tmp_path / "cut", at["epoch"], None)
    assert cut["at_target"] is None
    assert cut["value"] == stopped["value"]
    assert cut["history"][0]["epochs"]["val_loss"] == fit["epochs"]["val_loss"]


@pytest.mark.slow
def test_a_fit_asking_other_epochs_than_the_plan_trains_them_all(tmp_path):
    metrics = train(tmp_path / "other", 12, TargetStop(0.5, "max", None, epochs=40))
    assert metrics["at_target"] is None
    assert len(metrics["history"][0]["epochs"]["loss"]) == 12
