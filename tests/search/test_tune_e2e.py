"""`mutate tune` for real: trains on scikit-learn's digits, seconds per trial (marked slow)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slow_scripts import slow_epochs

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def mutate(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mutator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ledger(run_dir: Path) -> list[dict]:
    path = run_dir / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_weak_cnn_reaches_the_target_within_the_budget(tmp_path):
    shutil.copy(FIXTURES / "cnn_digits.py", tmp_path)
    result = mutate(
        "tune",
        "cnn_digits.py",
        "--target",
        "0.85",
        "--max-trials",
        "6",
        "--seed",
        "0",
        "--warm-after",
        "0",  # children start warm even from a 1-second parent: the confirm must report it
        "--noise-runs",
        "0",  # the margin alone decides: the warm estimates and their confirm are the subject
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = tmp_path / ".mutator" / "cnn_digits"
    records = ledger(run_dir)
    assert records[0]["decision"] == "baseline" and records[0]["value"] < 0.5
    children = [r for r in records[1:] if r["decision"] != "confirm"]
    assert children and all(r["start"] == "warm" for r in children)  # cancelled ones: as planned
    trials = [r for r in records if r["decision"] != "confirm"]  # the budget's trials
    assert records[-1]["best_after"] >= 0.85 and len(trials) <= 6
    confirm = [r for r in records if r["decision"] == "confirm"][-1]  # it reports the target
    assert confirm["value"] >= 0.85 and confirm["start"] == "cold"
    assert confirm["value"] == records[-1]["best_after"]
    assert "target reached (target 0.85)" in result.stdout
    best = (run_dir / "best.py").read_text()
    assert best != (FIXTURES / "cnn_digits.py").read_text()
    compile(best, "best.py", "exec")
    assert (run_dir / "best.keras").stat().st_size > 0
    assert (run_dir / "metrics.png").exists() and "Accepted changes" in (
        run_dir / "report.html"
    ).read_text()
    history = mutate("history", "cnn_digits.py", cwd=tmp_path)
    assert history.returncode == 0 and "accepted" in history.stdout


def test_with_the_noise_measured_a_real_gain_is_kept_and_the_best_is_its_runs_mean(tmp_path):
    shutil.copy(FIXTURES / "cnn_digits.py", tmp_path)
    args = ("tune", "cnn_digits.py", "--target", "0.95", "--max-trials", "6", "--noise-runs", "2")
    result = mutate(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    records = ledger(tmp_path / ".mutator" / "cnn_digits")
    noise = [r for r in records if r["decision"] == "noise"]
    assert noise and noise[0]["seed_offset"] == 1 and noise[0]["round"] == records[0]["round"]
    accepted = [r for r in records if r["decision"] == "accepted"]
    assert accepted and all(r["noise"]["verdict"] == "accept" for r in accepted)
    # a gain beyond the band, or one that reached the target (then a from-scratch run decides)
    assert all(
        r["noise"]["gain"] > r["noise"]["band"] or r["value"] >= 0.95 - 1e-6 for r in accepted
    )
    last = accepted[-1]
    if last["noise"].get("rechecked"):  # kept on the mean of its two runs from scratch
        first = next(r for r in records if r["id"] == last["noise"]["rechecked"])
        assert last["best_after"] == pytest.approx((first["value"] + last["value"]) / 2)
    assert "noise band ±" in result.stdout and "target reached" in result.stdout


def test_children_of_a_fast_baseline_train_cold_and_the_target_needs_no_confirm(tmp_path):
    shutil.copy(FIXTURES / "cnn_digits.py", tmp_path)
    args = ("tune", "cnn_digits.py", "--target", "0.9", "--max-trials", "6", "--seed", "0")
    result = mutate(*args, "--noise-runs", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    records = ledger(tmp_path / ".mutator" / "cnn_digits")
    assert [r["start"] for r in records] == ["cold"] * len(records)
    assert "cold is as cheap: its parent's script ran in" in records[1]["start_reason"]
    assert not any(r["decision"] == "confirm" for r in records)
    best = max((r for r in records if r["decision"] == "accepted"), key=lambda r: r["value"])
    assert best["value"] >= 0.9 and records[-1]["best_after"] == best["value"]
    assert f"-> {best['value']:.4f} in" in result.stdout  # the cold value is what is reported


MISBEHAVING = """\
import sys, time
import keras
from keras.models import Sequential
from keras.layers import Conv2D, Flatten, Dense

epochs = 1
model = Sequential()
model.add(Conv2D(4, 3, input_shape=(8, 8, 1)))
model.add(Flatten())
model.add(Dense(10, activation="softmax"))
conv = model.layers[0]
if conv.filters != 4:
    raise RuntimeError("this script breaks with more filters")
if conv.kernel_size != (3, 3):
    open("accuracy.txt", "w").write("nan")
    sys.exit(0)
if epochs != 1:
    time.sleep(600)
open("accuracy.txt", "w").write("0.5")
if "--train" in sys.argv:  # never: the tests read accuracy.txt; this tells mutator the epochs
    model.fit(None, None, epochs=epochs)
"""


def test_failure_nan_and_timeout_are_recorded_and_the_search_goes_on(tmp_path):
    (tmp_path / "train.py").write_text(MISBEHAVING)
    result = mutate(
        "tune",
        "train.py",
        "--target",
        "0.99",
        "--trial-timeout",
        "20",
        "--rule",
        "more_filters",
        "--rule",
        "larger_kernel",
        "--rule",
        "more_epochs",
        "--noise-runs",
        "0",
        cwd=tmp_path,
    )
    records = ledger(tmp_path / ".mutator" / "train")
    statuses = [(r["rule"], r["status"], r["decision"]) for r in records]
    assert statuses == [
        (None, "ok", "baseline"),
        ("more_filters", "failed", "rejected"),
        ("larger_kernel", "nan", "rejected"),
        ("more_epochs", "timeout", "rejected"),
    ]
    assert "this script breaks with more filters" in records[1]["error"]
    assert result.returncode == 1  # target not reached: nothing left to try
    assert "nothing left to try" in result.stdout


def test_a_baseline_that_fails_is_one_line_and_exit_7(tmp_path):
    (tmp_path / "train.py").write_text(MISBEHAVING.replace("Conv2D(4,", "Conv2D(5,"))
    result = mutate("tune", "train.py", "--max-trials", "3", cwd=tmp_path)
    assert result.returncode == 7
    assert result.stderr.count("\n") == 1 and "does not train" in result.stderr
    assert "Traceback" not in result.stderr


def test_kill_9_then_resume_repeats_no_trial_and_resumes_the_interrupted_one(tmp_path):
    script = tmp_path / "cnn_digits.py"
    script.write_text((FIXTURES / "cnn_digits.py").read_text().replace("epochs=2", "epochs=6"))
    args = ("tune", "cnn_digits.py", "--rule", "more_epochs", "--max-trials", "3", "--seed", "0")
    args += ("--no-warm-start", "--noise-runs", "0")  # trial 2 trains 12 epochs: "Epoch 4/12"
    run_dir = tmp_path / ".mutator" / "cnn_digits"
    process = subprocess.Popen(
        [sys.executable, "-m", "mutator", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill once trial 2 (12 epochs) has completed a few epochs.
    log = run_dir / "trials" / "0002" / "log.txt"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if log.exists() and "Epoch 4/12" in log.read_text(errors="replace"):
            break
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("trial 2 never reached epoch 4")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert len(ledger(run_dir)) == 1  # only the baseline had finished

    result = mutate(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    records = ledger(run_dir)
    assert [r["id"] for r in records] == [1, 2, 3]
    assert records[1]["resumed_from_epoch"] >= 3
    assert "trial 2 (resuming)" in result.stdout
    # The baseline was not trained again: its log has one start only.
    baseline_log = (run_dir / "trials" / "0001" / "log.txt").read_text()
    assert baseline_log.count("== mutator") <= 2


def test_kill_9_with_two_trials_in_flight_loses_and_repeats_none(tmp_path):
    """Round 2 trains two candidates side by side; the tuner is killed while one still trains."""
    script = tmp_path / "cnn_digits.py"
    script.write_text(slow_epochs(0.4, epochs=6))
    args = ("tune", "cnn_digits.py", "--rule", "more_filters", "--rule", "more_epochs")
    args += ("--parallel", "2", "--max-trials", "3", "--seed", "0", "--warm-after", "0")
    args += ("--noise-runs", "0")
    run_dir = tmp_path / ".mutator" / "cnn_digits"
    process = subprocess.Popen(
        [sys.executable, "-m", "mutator", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # The baseline's curve still rises, so trial 2 is more epochs (6 -> 12, continued from the
    # parent: epochs 7..12) and trial 3 more filters (warm: 3 of 6 epochs), which ends first.
    # Kill while trial 2 is past epoch 8.
    filters_done = run_dir / "trials" / "0003" / "metrics.json"
    epochs_log = run_dir / "trials" / "0002" / "log.txt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        log = epochs_log.read_text(errors="replace") if epochs_log.exists() else ""
        if filters_done.exists() and "Epoch 9/12" in log:
            break
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("round 2 never had trial 3 done and trial 2 at epoch 9")
    assert not (run_dir / "trials" / "0002" / "metrics.json").exists()  # in flight
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert [r["id"] for r in ledger(run_dir)] == [1]  # round 2 was not decided
    time.sleep(1)
    leftover = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True)
    assert leftover.stdout == "", "a trial went on training after its tuner was killed"

    result = mutate(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    records = ledger(run_dir)
    ids = [r["id"] for r in records]
    assert ids == list(range(1, len(ids) + 1))  # none lost, none twice
    assert records[1]["round"] == records[2]["round"] == 2

    def starts(trial: int) -> int:
        log = run_dir / "trials" / f"{trial:04d}" / "log.txt"
        return log.read_text().count("start in worker")

    assert starts(3) == 1  # finished before the kill: read back, not trained again
    assert starts(2) == 2 and records[1]["resumed_from_epoch"] >= 8  # resumed, not restarted
    assert records[2]["start"] == "warm" and records[1]["start"] == "warm"


def test_the_same_command_with_a_seed_takes_the_same_path_to_the_same_script(tmp_path):
    # --warm-after 0: every child that can start warm does, whatever the machine's load (the
    # one decision made on seconds, which the ledger states when it differs)
    paths, bests = [], []
    for run in ("first", "second"):
        folder = tmp_path / run
        folder.mkdir()
        shutil.copy(FIXTURES / "cnn_digits.py", folder)
        args = ("tune", "cnn_digits.py", "--target", "0.99", "--max-trials", "4", "--seed", "7")
        result = mutate(*args, "--warm-after", "0", "--parallel", "2", cwd=folder)
        assert result.returncode in (0, 1), result.stdout + result.stderr
        records = ledger(folder / ".mutator" / "cnn_digits")
        paths.append([(r["description"], r["decision"], r["start"], r["value"]) for r in records])
        bests.append((folder / ".mutator" / "cnn_digits" / "best.py").read_text())
    assert paths[0] == paths[1]
    assert bests[0] == bests[1]
