"""`mutate slim` for real: an MLP on scikit-learn's digits, bigger than it needs to be (slow)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# 128 and 64 hidden units reach 0.97; far fewer reach 0.90
MLP = """\
import keras
from keras import layers
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)
x, y = load_digits(return_X_y=True)
x = x / 16.0
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
model = keras.Sequential([
    keras.Input(shape=(64,)),
    layers.Dense(128, activation="relu"),  # wide
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=0)
model.evaluate(x_test, y_test, verbose=0)
"""


def mutate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mutator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def ledger(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "ledger.jsonl").read_text().splitlines()]


def test_slim_finds_a_smaller_model_that_reaches_the_target_from_scratch(tmp_path):
    (tmp_path / "mlp.py").write_text(MLP)
    result = mutate(
        "slim", "mlp.py", "--target", "0.9", "--seed", "1", "--max-trials", "5", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr + result.stdout
    run_dir = tmp_path / ".mutator" / "mlp-slim"
    records = ledger(run_dir)
    baseline = records[0]
    assert baseline["decision"] == "baseline" and baseline["parameters"] == 17226
    kept = [r for r in records if r["decision"] == "accepted"]
    assert kept, result.stdout
    final = kept[-1]
    assert final["parameters"] < baseline["parameters"] and final["value"] >= 0.9
    assert final["start"] == "cold" and final["seed_offset"] > 0  # a confirm with seeds moved
    first = [r for r in records if r["decision"] == "reached" and r["rule"] == final["rule"]]
    assert first and first[0]["value"] >= 0.9 and first[0]["seed_offset"] == 0
    sized = [r for r in records if r["decision"] == "sized"]
    assert sized and all(r["parameters"] and not r["history"] for r in sized)  # no epoch
    best = (run_dir / "best.py").read_text()
    assert "# wide" in best or "Dense(128" not in best  # only the changed lines differ
    assert "smaller)" in result.stdout and "Pareto front" in (run_dir / "report.html").read_text()


def test_tune_then_slim_slims_the_best_script_in_the_run_directory(tmp_path):
    (tmp_path / "mlp.py").write_text(MLP)
    result = mutate(
        "tune",
        "mlp.py",
        "--target",
        "0.9",
        "--seed",
        "1",
        "--max-trials",
        "3",
        "--then-slim",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    slimmed = tmp_path / ".mutator" / "mlp" / "slim"
    records = ledger(slimmed)
    assert records[0]["decision"] == "baseline" and records[0]["value"] >= 0.9
    assert "then slim" in result.stdout and (slimmed / "best.py").exists()
    assert (slimmed / "trials" / "0001" / "mlp.py").exists()  # under the script's own name
    # slim trains on tune's warm worker: no second import of TensorFlow
    assert workers(slimmed) and workers(slimmed) <= workers(tmp_path / ".mutator" / "mlp")


def workers(run_dir: Path) -> set[str]:
    """The warm workers a run's trials were forked from (each trial log's first line)."""
    found = (
        re.search(r"start in worker (\d+)", log.read_text())
        for log in run_dir.glob("trials/*/log.txt")
    )
    return {match.group(1) for match in found if match}


def test_slim_refuses_a_script_that_does_not_reach_the_target(tmp_path):
    (tmp_path / "mlp.py").write_text(MLP.replace("epochs=10", "epochs=1"))
    result = mutate("slim", "mlp.py", "--target", "0.99", "--max-trials", "3", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("mutate: error: the script reaches")
    assert "mutate tune` first" in result.stderr and "Traceback" not in result.stderr
