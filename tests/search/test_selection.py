"""Which data the search selects on: found by the harness, said in the run summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mutator.search.selection import selection_lines

SCRIPT = """\
import keras
import numpy as np

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x_train, y_train = rng.normal(size=(64, 4)), rng.integers(0, 2, 64)
x_test, y_test = rng.normal(size=(32, 4)), rng.integers(0, 2, 32)
x_val, y_val = {validation}
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=1, validation_data=(x_val, y_val), verbose=0)
model.evaluate(np.asarray(x_test), y_test, verbose=0)
"""


def trial(folder: Path, validation: str) -> dict:
    folder.mkdir()
    (folder / "train.py").write_text(SCRIPT.format(validation=validation))
    done = subprocess.run(
        [sys.executable, "-m", "mutator.training.harness", "train.py", "--trial-dir", "."],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((folder / "metrics.json").read_text())


@pytest.mark.slow
def test_the_harness_finds_a_script_that_validates_on_its_test_data(tmp_path):
    same = trial(tmp_path / "same", "x_test, y_test")  # evaluate gets a copy: same values
    apart = trial(tmp_path / "apart", "rng.normal(size=(16, 4)), rng.integers(0, 2, 16)")
    assert same["validation_is_test"] is True
    assert apart["validation_is_test"] is False
    assert same["evaluated_examples"] == 32  # the noise band's sampling prior rests on it
    lines = selection_lines([tmp_path / "same"], tmp_path / "same")
    assert lines[0] == "selected on: accuracy (the script's evaluate, usually its test data)"
    assert lines[1].startswith("notice: the script validates on the data it evaluates on")
    assert len(selection_lines([tmp_path / "apart"], tmp_path / "apart")) == 1


def write_metrics(folder: Path, **metrics) -> Path:
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_selecting_on_validation_reports_the_test_figure_apart(tmp_path):
    baseline = write_metrics(tmp_path / "1", metric="val_accuracy", source="history")
    best = write_metrics(
        tmp_path / "5",
        metric="val_accuracy",
        source="history",
        evaluate=[{"loss": 0.2, "compile_metrics": 0.9611}],
    )
    assert selection_lines([baseline, best], best) == [
        "selected on: val_accuracy (fit's epoch logs)",
        "test accuracy of the best (not selected on): 0.9611",
    ]
    assert selection_lines([], None) == []
