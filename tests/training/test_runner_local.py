"""The local runner: a trial as a subprocess, its log, its timeout, its crash, and its resume."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mutator.training.local import LocalRunner, child_environment
from mutator.training.runner import (
    InFlight,
    Runner,
    TrialSpec,
    describe_exit,
    harness_arguments,
    read_result,
)


def write_script(tmp_path: Path, source: str, name: str = "train.py") -> Path:
    script = tmp_path / name
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    return script


def spec_for(tmp_path: Path, source: str, **settings) -> TrialSpec:
    return TrialSpec(
        script=write_script(tmp_path, source), trial_dir=tmp_path / "trial", **settings
    )


def alive(pid: int) -> bool:
    """True for a running process; a zombie nobody has reaped yet counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


# -- fast: plain scripts ------------------------------------------------------------------------


def test_local_runner_is_a_runner():
    assert isinstance(LocalRunner(), Runner)
    assert LocalRunner.name == "local"


def test_ok_trial_from_elsewhere_logs_streams_and_passes_the_environment(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # mutator must import in the child without being installed here
    monkeypatch.delenv("PYTHONPATH", raising=False)
    spec = spec_for(
        tmp_path,
        """
        import os, sys
        print("value from env", os.environ["TRIAL_VALUE"])
        print("quiet", os.environ["TF_CPP_MIN_LOG_LEVEL"], "args", sys.argv[1:])
        open("accuracy.txt", "w").write(os.environ["TRIAL_VALUE"])
        """,
        env={"TRIAL_VALUE": "0.875"},
        script_args=("--fast",),
    )
    lines: list[str] = []
    result = LocalRunner(on_line=lines.append).run(spec)
    assert result.status == "ok", result.error
    assert (result.value, result.metric, result.mode, result.returncode) == (
        0.875,
        "accuracy",
        "max",
        0,
    )
    assert result.metrics is not None and result.metrics["source"] == "accuracy.txt"
    assert result.log_path == (tmp_path / "trial" / "log.txt").resolve()
    log = result.log_path.read_text()
    assert "value from env 0.875" in log and "quiet 2 args ['--fast']" in log
    assert "value from env 0.875" in lines
    assert result.seconds > 0


def test_failed_script_is_failed_with_its_error(tmp_path):
    result = LocalRunner().run(spec_for(tmp_path, "raise RuntimeError('out of data')\n"))
    assert (result.status, result.value, result.returncode) == ("failed", None, 1)
    assert result.error == "RuntimeError: out of data"
    assert "Traceback" in result.log_path.read_text()


def test_timeout_kills_the_whole_process_group(tmp_path):
    spec = spec_for(
        tmp_path,
        """
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "60"])
        open("pids", "w").write(f"{os.getpid()} {child.pid}")
        time.sleep(60)
        """,
        timeout=2.0,
    )
    started = time.monotonic()
    result = LocalRunner().run(spec)
    assert time.monotonic() - started < 20
    assert (result.status, result.value) == ("timeout", None)
    assert "timed out after 2 s" in result.error
    harness_pid, child_pid = map(int, (tmp_path / "trial" / "pids").read_text().split())
    assert wait_until(lambda: not alive(harness_pid) and not alive(child_pid), 5)


def test_a_cancelled_trial_is_stopped_with_its_process_group_and_says_cancelled(tmp_path):
    spec = spec_for(
        tmp_path,
        """
        import os, time
        open("pid", "w").write(str(os.getpid()))
        time.sleep(60)
        """,
    )
    runner = LocalRunner()
    future = runner.submit(spec)
    assert wait_until(lambda: (tmp_path / "trial" / "pid").exists(), 20)
    runner.cancel(spec)
    result = future.result(timeout=20)
    runner.close()
    assert result.status == "cancelled" and "its round was decided" in result.error
    assert wait_until(lambda: not alive(int((tmp_path / "trial" / "pid").read_text())), 5)


def test_in_flight_stops_a_trial_cancelled_before_it_started_as_soon_as_it_starts():
    stopped: list[str] = []
    trials = InFlight()
    trials.cancel(Path("/run/0002"))  # the round was decided while 0002 was being forked
    trials.started(Path("/run/0001"), lambda: stopped.append("0001"))
    trials.started(Path("/run/0002"), lambda: stopped.append("0002"))
    assert stopped == ["0002"]
    trials.cancel(Path("/run/0001"))
    assert stopped == ["0002", "0001"]
    assert trials.ended(Path("/run/0001")) and not trials.ended(Path("/run/0001"))  # once
    assert not trials.ended(Path("/run/0003"))


def test_process_killed_by_a_signal_is_crashed_even_with_a_stale_result(tmp_path):
    (tmp_path / "trial").mkdir()
    stale = {"status": "ok", "value": 0.99, "metric": "accuracy", "mode": "max"}
    (tmp_path / "trial" / "metrics.json").write_text(json.dumps(stale))
    spec = spec_for(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    result = LocalRunner().run(spec)
    assert (result.status, result.value, result.returncode) == ("crashed", None, -9)
    assert "killed by SIGKILL" in result.error and "metrics.json" in result.error


def test_harness_that_cannot_start_is_crashed_with_the_reason(tmp_path):
    result = LocalRunner().run(spec_for(tmp_path, "print(1)\n", mode="sideways"))
    assert (result.status, result.returncode) == ("crashed", 2)
    assert "exited with code 2" in result.error and "invalid choice" in result.error


def test_missing_interpreter_is_crashed_not_raised(tmp_path):
    result = LocalRunner(python=str(tmp_path / "no-python")).run(spec_for(tmp_path, "print(1)\n"))
    assert result.status == "crashed" and "cannot start" in result.error


def test_broken_progress_callback_does_not_stop_the_trial(tmp_path):
    def explode(line: str) -> None:
        raise ValueError("display closed")

    spec = spec_for(tmp_path, "print('a')\nprint('b')\nopen('accuracy.txt', 'w').write('0.5')\n")
    result = LocalRunner(on_line=explode).run(spec)
    assert result.status == "ok"
    assert "on_line callback failed" in result.log_path.read_text()


def test_harness_arguments_carry_every_setting():
    spec = TrialSpec(
        script=Path("t.py"), trial_dir=Path("d"), metric="val_loss", mode="min",
        metric_regex="loss=(.*)", script_args=("--x", "1"), backup=False,
    )  # fmt: skip
    arguments = harness_arguments(spec, script="/w/t.py", trial_dir="/w", source_dir="/src")
    assert arguments == [
        "-m", "mutator.training.harness", "/w/t.py", "--trial-dir", "/w", "--mode", "min",
        "--metric", "val_loss", "--metric-regex", "loss=(.*)", "--no-backup",
        "--source-dir", "/src", "--", "--x", "1",
    ]  # fmt: skip


def test_environment_puts_mutator_first_and_lets_the_spec_win():
    env = child_environment({"PYTHONPATH": "/mine", "TF_CPP_MIN_LOG_LEVEL": "0"}, {"A": "1"})
    first, rest = env["PYTHONPATH"].split(os.pathsep, 1)
    assert (Path(first) / "mutator" / "training" / "harness.py").is_file() and rest == "/mine"
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "0" and env["A"] == "1" and env["PYTHONUNBUFFERED"] == "1"


@pytest.mark.parametrize(
    ("code", "words"),
    [(-9, "killed by SIGKILL"), (137, "code 137 (SIGKILL) (out of memory?)"), (2, "code 2")],
)
def test_describe_exit(code, words):
    assert words in describe_exit(code)


def test_read_result_of_an_empty_trial_dir_is_crashed(tmp_path):
    spec = TrialSpec(script=tmp_path / "t.py", trial_dir=tmp_path, metric="loss", mode="auto")
    result = read_result(spec, returncode=1, seconds=0.1, log_path=None)
    assert (result.status, result.metric, result.mode) == ("crashed", "loss", "auto")


# -- slow: a Keras trial killed mid-training resumes --------------------------------------------

RESUMABLE_SCRIPT = """
import os, time
import numpy as np
import keras
from sklearn.datasets import load_digits

open("pid", "w").write(str(os.getpid()))
digits = load_digits()
x, y = (digits.data / 16.0).astype("float32"), digits.target
model = keras.Sequential([
    keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])


class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.6)


model.fit(x[:1400], y[:1400], epochs=2, verbose=2)                      # fit 1: finishes
model.fit(x[:1400], y[:1400], epochs=6, validation_split=0.2, verbose=2,
          callbacks=[Slow()])                                           # fit 2: killed
model.fit(x[:1400], y[:1400], epochs=2, verbose=2)                      # fit 3
print("test", model.evaluate(x[1400:], y[1400:], verbose=0, return_dict=True))
"""


def backed_up_epochs(trial: Path, fit: int) -> int:
    try:
        metadata = trial / "checkpoint" / f"fit-{fit}" / "training_metadata.json"
        return json.loads(metadata.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_trial_killed_mid_fit_resumes_at_its_last_epoch(tmp_path):
    spec = spec_for(tmp_path, RESUMABLE_SCRIPT, timeout=240)
    trial = spec.trial_dir
    outcome: dict[str, object] = {}
    thread = threading.Thread(target=lambda: outcome.update(first=LocalRunner().run(spec)))
    thread.start()
    assert wait_until(lambda: backed_up_epochs(trial, 2) >= 2, 120), "fit 2 never backed up"
    os.killpg(int((trial / "pid").read_text()), signal.SIGKILL)
    thread.join(30)
    first = outcome["first"]
    assert first.status == "crashed" and "SIGKILL" in first.error

    result = LocalRunner().run(spec)
    assert result.status == "ok", result.error
    done, resumed, after = result.metrics["history"]
    # fit 1 had finished: its checkpoint is restored, nothing is retrained, its logs are kept
    assert (done["initial_epoch"], done["epochs_completed"], done["finished"]) == (2, 2, True)
    assert len(done["epochs"]["loss"]) == 2
    # fit 2 resumes after its last backed-up epoch and ends with all six epochs logged
    assert 2 <= resumed["initial_epoch"] < 6
    assert (resumed["first_epoch"], resumed["epochs_completed"]) == (0, 6)
    assert len(resumed["epochs"]["val_accuracy"]) == 6
    # fit 3 trains from epoch 0: Keras's left-over `_initial_epoch` must not leak into it
    assert (after["initial_epoch"], after["epochs_completed"]) == (0, 2)
    assert result.metrics["source"] == "evaluate" and result.value > 0.5
    assert "fit 2 resumes after epoch" in result.log_path.read_text()
    assert not (trial / "checkpoint").exists()
