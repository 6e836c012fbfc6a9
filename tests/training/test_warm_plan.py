"""Warm starts through the real harness: a child trains from its parent's weights (slow: Keras)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness_run import run_harness

from mutator.training.warm_plan import CONTINUE, RETRAIN, TRANSFER, WarmPlan

pytestmark = pytest.mark.slow

SCRIPT = """\
import keras
from keras import layers
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)
digits = load_digits()
x = digits.images.reshape(-1, {side}, {side}, 1)[:, :8, :8] / 16.0
x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.2, random_state=0)
model = keras.Sequential([
    keras.Input(shape=(8, 8, 1)),
    layers.Conv2D({filters}, (3, 3), activation="relu"),
    layers.MaxPooling2D((2, 2)),
    layers.Flatten(),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer={optimizer}, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs={epochs}, batch_size=32, validation_split=0.1, verbose=2)
print("test", model.evaluate(x_test, y_test, verbose=0))
print("learning rate", float(model.optimizer.learning_rate))
"""


def train(
    folder: Path,
    filters: int = 4,
    epochs: int = 2,
    plan: WarmPlan | None = None,
    prune_from: Path | None = None,
    optimizer: str = '"adam"',
) -> dict:
    """Train SCRIPT as a trial in `folder` (with a warm plan, a prune.json copied from...)."""
    folder.mkdir(parents=True)
    if plan is not None:
        plan.write(folder)
    if prune_from is not None:
        shutil.copy(prune_from / "prune.json", folder / "prune.json")
    return run_harness(
        folder, SCRIPT.format(filters=filters, epochs=epochs, side=8, optimizer=optimizer)
    )


@pytest.fixture(scope="module")
def parent(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("warm") / "parent"
    return folder, train(folder)


def test_a_more_epochs_child_trains_only_the_epochs_it_added(parent, tmp_path):
    folder, metrics = parent
    plan = WarmPlan(CONTINUE, 1, str(folder / "model.keras"), epochs_done=2)
    child = train(tmp_path / "child", epochs=5, plan=plan)
    (fit,) = child["history"]
    assert fit["initial_epoch"] == 2 and fit["epochs_completed"] == 5
    assert len(fit["epochs"]["loss"]) == 3  # epochs 3, 4, 5 only
    assert child["start"]["mode"] == "warm" and child["start"]["initial_epoch"] == 2
    assert "continued from trial 1 at epoch 2" in child["start"]["why"]
    # it went on from where the parent stopped: its first loss is below the parent's last
    assert fit["epochs"]["loss"][0] < metrics["history"][0]["epochs"]["loss"][-1]


def test_a_wider_child_starts_from_the_parents_function_and_trains_its_share(parent, tmp_path):
    folder, metrics = parent
    plan = WarmPlan(TRANSFER, 1, str(folder / "model.keras"), share=0.5)
    child = train(tmp_path / "child", filters=8, epochs=4, plan=plan)
    (fit,) = child["history"]
    assert child["start"]["mode"] == "warm" and child["start"]["epochs"] == 2
    assert len(fit["epochs"]["loss"]) == 2  # half of the script's 4 epochs
    assert "2 of 4 epochs" in child["start"]["why"]
    assert fit["epochs"]["loss"][0] < metrics["history"][0]["epochs"]["loss"][0]


def test_a_learning_rate_child_starts_from_the_parents_weights_at_its_own_rate(parent, tmp_path):
    folder, metrics = parent
    plan = WarmPlan(RETRAIN, 1, str(folder / "model.keras"), share=0.5)
    rate = "keras.optimizers.Adam(learning_rate=0.003)"
    child = train(tmp_path / "child", epochs=4, plan=plan, optimizer=rate)
    (fit,) = child["history"]
    assert child["start"]["mode"] == "warm" and child["start"]["epochs"] == 2
    assert child["start"]["why"] == "from trial 1: its weights and optimizer state; 2 of 4 epochs"
    assert len(fit["epochs"]["loss"]) == 2
    # it began where the parent ended, at its own learning rate
    assert fit["epochs"]["loss"][0] < metrics["history"][0]["epochs"]["loss"][0]
    assert "learning rate 0.003" in child["stdout"]


def test_a_plan_that_cannot_apply_trains_from_scratch_and_says_why(parent, tmp_path):
    plan = WarmPlan(TRANSFER, 1, str(tmp_path / "missing.keras"), share=0.5)
    child = train(tmp_path / "child", filters=8, epochs=3, plan=plan)
    assert child["start"]["mode"] == "cold"
    assert "cannot load the parent's model" in child["start"]["why"]
    assert len(child["history"][0]["epochs"]["loss"]) == 3  # the script's own epochs


def test_without_a_plan_the_start_is_cold(parent):
    _, metrics = parent
    assert metrics["start"] == {
        "mode": "cold",
        "why": None,
        "parent_trial": None,
        "initial_epoch": 0,
        "epochs": None,
    }


SUBCLASSED = """\
import keras
import numpy as np
from keras import layers


class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(8, activation="relu")
        self.out = layers.Dense(2, activation="softmax")

    def call(self, inputs):
        return self.out(self.hidden(inputs))


x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
net = Net()
net.build((None, 4))
net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
net.fit(x, (x[:, 0] > 0).astype("int32"), epochs=2, verbose=2)
"""


@pytest.mark.parametrize("mode", [TRANSFER, RETRAIN])
def test_a_subclassed_child_trains_from_scratch_and_says_so(parent, tmp_path, mode):
    folder, _ = parent
    child = tmp_path / "child"
    child.mkdir()
    WarmPlan(mode, 1, str(folder / "model.keras"), share=0.5).write(child)
    start = run_harness(child, SUBCLASSED)["start"]
    assert start["mode"] == "cold"
    assert start["why"].startswith("a subclassed model (Net): its weights have no sound mapping")
