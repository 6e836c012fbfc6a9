"""The script as given stops past its peak: the verdict on a curve, and the real harness."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness_run import run_harness

from mutator.training.peak import PeakStop, line

# a regression's val loss: lowest at epoch 4, then memorising its training data
OVER_FITTING = [9.0, 6.0, 4.0, 3.0, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8]


def test_a_curve_past_its_lowest_point_for_as_long_as_it_took_to_get_there_stops():
    plan = PeakStop(min_epochs=6, min_patience=5, rise=0.10)
    assert plan.verdict(OVER_FITTING[:8], planned=100) is None  # 4 epochs since the lowest
    assert plan.verdict(OVER_FITTING[:9], planned=100) == {
        "key": "val_loss",
        "epoch": 9,
        "planned": 100,
        "best_epoch": 4,
        "value": 3.5,
        "best": 3.0,
    }
    shallow = [9.0, 6.0, 4.0, 3.0, 3.1, 3.1, 3.2, 3.2, 3.2]  # 5 epochs on, but only +7%
    assert plan.verdict(shallow, planned=100) is None


def test_a_stop_waits_for_its_minimum_epochs_and_saves_at_least_what_was_trained():
    plan = PeakStop(min_epochs=10, min_patience=2, rise=0.10)
    early = [4.0, 3.0, 3.5, 3.6, 3.8]
    assert plan.verdict(early, planned=100) is None  # fewer than min_epochs
    assert plan.verdict(OVER_FITTING[:10], planned=19) is None  # 9 left of 19: saves too little
    assert plan.verdict(OVER_FITTING[:10], planned=20) is not None
    assert plan.verdict(OVER_FITTING[:10], planned=None) is None  # the schedule is not known


def test_a_falling_curve_a_plateau_and_a_missing_loss_never_stop():
    plan = PeakStop(min_epochs=3, min_patience=2, rise=0.10)
    falling = [9.0 - 0.5 * i for i in range(12)]
    plateau = [3.0, 2.0, 1.0, 1.02, 0.99, 1.03, 1.01, 1.04, 1.05, 1.02]  # wobbles, never +10%
    assert plan.verdict(falling, planned=100) is None
    assert plan.verdict(plateau, planned=100) is None
    assert plan.verdict([None] * 12, planned=100) is None
    assert plan.verdict([*OVER_FITTING[:11], float("nan")], planned=100) is None


def test_a_classifier_whose_accuracy_still_climbs_goes_on_though_its_loss_turned_up():
    plan = PeakStop(min_epochs=6, min_patience=5, rise=0.10)
    climbing = [0.5, 0.6, 0.7, 0.75, 0.76, 0.77, 0.78, 0.79, 0.80]  # over-confident, better
    stalled = [0.5, 0.6, 0.7, 0.80, 0.79, 0.80, 0.78, 0.77, 0.79]  # best (0.80) at epoch 4
    assert plan.verdict(OVER_FITTING[:9], planned=100, accuracy=climbing) is None
    assert plan.verdict(OVER_FITTING[:9], planned=100, accuracy=stalled)["epoch"] == 9
    assert plan.verdict(OVER_FITTING[:9], planned=100, accuracy=[None] * 9) is not None


def test_the_patience_grows_with_the_epochs_the_curve_took_to_its_lowest_point():
    plan = PeakStop(min_epochs=10, min_patience=5, rise=0.10)
    slow = [10.0 - i for i in range(9)] + [2.5] * 8  # lowest (2.0) at epoch 9, +25% after
    assert plan.verdict(slow, planned=100) is None  # 8 epochs since the lowest, not yet 9
    assert plan.verdict([*slow, 2.5], planned=100)["best_epoch"] == 9


def test_the_stop_reads_as_one_line():
    stopped = PeakStop(min_epochs=10).verdict(OVER_FITTING[:10], planned=100)
    assert line(stopped) == "stopped at epoch 10 of 100: val_loss 3.6, up from 3 at epoch 4"


# A wide MLP memorising 48 random targets: its validation loss turns within a few epochs.
MEMORISING = """\
import keras
import numpy as np

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8)).astype("float32")
y = rng.normal(size=(64, 1)).astype("float32")
model = keras.Sequential([
    keras.Input(shape=(8,)),
    keras.layers.Dense(256, activation="relu"),
    keras.layers.Dense(256, activation="relu"),
    keras.layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
model.fit(x, y, epochs={epochs}, batch_size=8, validation_split=0.25, verbose=0)
print("test mae:", model.evaluate(x, y, verbose=0, return_dict=True)["mae"])
"""


def train(folder: Path, epochs: int, plan: PeakStop | None) -> dict:
    folder.mkdir(parents=True)
    if plan is not None:
        plan.write(folder)
    return run_harness(folder, MEMORISING.format(epochs=epochs), "--metric", "mae", "--mode", "min")


@pytest.mark.slow
def test_the_harness_stops_a_fit_past_its_peak_and_the_script_still_evaluates(tmp_path):
    metrics = train(tmp_path / "stopped", 200, PeakStop())
    stopped = metrics["past_peak"]
    (fit,) = metrics["history"]
    trained = len(fit["epochs"]["val_loss"])
    assert stopped["planned"] == 200 and stopped["epoch"] == trained < 100
    assert trained - stopped["best_epoch"] >= max(5, stopped["best_epoch"])
    assert stopped["value"] >= 1.1 * stopped["best"] == 1.1 * min(fit["epochs"]["val_loss"])
    assert metrics["status"] == "ok" and metrics["value"] is not None  # evaluate still ran
    assert "mutator: stopped at epoch" in metrics["stdout"]


@pytest.mark.slow
def test_without_peak_json_the_fit_trains_every_epoch_it_asks_for(tmp_path):
    metrics = train(tmp_path / "whole", 30, None)
    assert metrics["past_peak"] is None
    assert len(metrics["history"][0]["epochs"]["val_loss"]) == 30
