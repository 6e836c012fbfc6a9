"""Noise for real: a script trained on shuffled labels, where nothing can be learned (slow)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SHUFFLED = '''\
"""A digits CNN trained on shuffled labels: there is nothing to learn, so nothing can improve."""
import keras
import numpy as np
from keras import layers
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)
digits = load_digits()
x = digits.images.reshape(-1, 8, 8, 1) / 16.0
y = np.random.default_rng(0).permutation(digits.target)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
model = keras.Sequential([
    keras.Input(shape=(8, 8, 1)),
    layers.Conv2D(8, (3, 3), activation="relu"),
    layers.MaxPooling2D((2, 2)),
    layers.Flatten(),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3, batch_size=32, validation_split=0.1, verbose=2)
print("test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])
'''


def test_on_shuffled_labels_ten_trials_accept_no_change_and_say_the_band(tmp_path):
    (tmp_path / "shuffled.py").write_text(SHUFFLED)
    done = subprocess.run(
        [sys.executable, "-m", "mutator", "tune", "shuffled.py", "--target", "0.9"]
        + ["--max-trials", "10", "--parallel", "2"],  # noise measured by default
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the budget is spent below it
    run_dir = tmp_path / ".mutator" / "shuffled"
    records = [json.loads(line) for line in (run_dir / "ledger.jsonl").read_text().splitlines()]
    assert not [r for r in records if r["decision"] == "accepted"]
    noise_runs = [r for r in records if r["decision"] == "noise"]
    assert noise_runs and all(r["seed_offset"] > 0 and r["start"] == "cold" for r in noise_runs)
    # another seed trains another model: the runs differ, so a band was measured
    assert {r["value"] for r in noise_runs} != {records[0]["value"]}
    judged = [r for r in records if r.get("noise")]
    assert judged and all(r["noise"]["band"] > 0 for r in judged)
    assert "0 change(s) accepted; noise band ±" in done.stdout
    history = subprocess.run(
        [sys.executable, "-m", "mutator", "history", "shuffled.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        history.returncode == 0 and "the script again with its seeds moved by 1" in history.stdout
    )
