"""The warm worker: trials forked from one process keep a process per trial's isolation.

Plain-Python scripts (they write `accuracy.txt`, as the seeds' scripts did), so the worker needs
no TensorFlow and these tests take seconds: what is tested is the worker, not Keras.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from mutator.training.local import LocalRunner
from mutator.training.runner import TrialSpec
from mutator.training.worker import preload_modules

REPORTS = """\
import os, sys
from pathlib import Path
Path("worker.pid").write_text(str(os.getppid()))
Path("seen.txt").write_text(repr((os.getcwd(), sys.argv[1:], os.environ.get("TRIAL_TAG"))))
"""


def trial(tmp_path: Path, name: str, body: str, **spec) -> TrialSpec:
    folder = tmp_path / name
    folder.mkdir()
    script = folder / "train.py"
    script.write_text(REPORTS + textwrap.dedent(body))
    return TrialSpec(script=script, trial_dir=folder, source_dir=tmp_path, **spec)


def worker_pid(spec: TrialSpec) -> int:
    return int((spec.trial_dir / "worker.pid").read_text())


@pytest.fixture
def runner():
    runner = LocalRunner(worker=True)
    yield runner
    runner.close()


def test_trials_run_in_the_worker_with_their_own_cwd_argv_and_environment(tmp_path, runner):
    first = trial(tmp_path, "a", 'open("accuracy.txt", "w").write("0.5")\n', env={"TRIAL_TAG": "a"})
    second = trial(
        tmp_path,
        "b",
        'open("accuracy.txt", "w").write("0.7")\n',
        env={"TRIAL_TAG": "b"},
        script_args=("--lr", "0.1"),
    )
    one, two = runner.run(first), runner.run(second)
    assert (one.status, one.value, two.status, two.value) == ("ok", 0.5, "ok", 0.7)
    assert worker_pid(first) == worker_pid(second) != os.getpid()  # one warm worker, forked
    assert eval((second.trial_dir / "seen.txt").read_text()) == (
        str(second.trial_dir),
        ["--lr", "0.1"],
        "b",
    )
    assert eval((first.trial_dir / "seen.txt").read_text())[2] == "a"


def test_the_users_own_modules_are_imported_fresh_by_each_trial(tmp_path, runner):
    (tmp_path / "helper.py").write_text("VALUE = '0.25'\n")
    body = 'import helper\nopen("accuracy.txt", "w").write(helper.VALUE)\n'
    assert runner.run(trial(tmp_path, "a", body)).value == 0.25
    (tmp_path / "helper.py").write_text("VALUE = '0.75'\n")
    assert runner.run(trial(tmp_path, "b", body)).value == 0.75


def test_the_worker_survives_a_trial_that_raises(tmp_path, runner):
    broken = trial(tmp_path, "a", 'raise ValueError("boom")\n')
    result = runner.run(broken)
    assert result.status == "failed" and "ValueError: boom" in result.error
    after = trial(tmp_path, "b", 'open("accuracy.txt", "w").write("0.5")\n')
    assert runner.run(after).ok and worker_pid(after) == worker_pid(broken)


def test_the_worker_survives_a_trial_that_calls_os_exit(tmp_path, runner):
    gone = trial(tmp_path, "a", "os._exit(3)\n")
    result = runner.run(gone)
    assert result.status == "crashed" and "exited with code 3" in result.error
    after = trial(tmp_path, "b", 'open("accuracy.txt", "w").write("0.5")\n')
    assert runner.run(after).ok and worker_pid(after) == worker_pid(gone)


def test_a_hung_trial_is_killed_at_its_timeout_and_the_worker_goes_on(tmp_path, runner):
    body = 'Path("trial.pid").write_text(str(os.getpid()))\nimport time\ntime.sleep(600)\n'
    hung = trial(tmp_path, "a", body, timeout=3)
    started = time.monotonic()
    result = runner.run(hung)
    assert result.status == "timeout" and time.monotonic() - started < 20
    pid = int((hung.trial_dir / "trial.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    after = trial(tmp_path, "b", 'open("accuracy.txt", "w").write("0.5")\n')
    assert runner.run(after).ok and worker_pid(after) == worker_pid(hung)


def test_a_worker_that_dies_fails_its_trial_and_a_new_worker_takes_the_next(tmp_path, runner):
    body = "import signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(60)\n"
    killer = trial(tmp_path, "a", body, timeout=30)
    result = runner.run(killer)
    assert result.status == "crashed" and "warm worker died" in result.error
    after = trial(tmp_path, "b", 'open("accuracy.txt", "w").write("0.5")\n')
    assert runner.run(after).ok and worker_pid(after) != worker_pid(killer)


def test_a_worker_is_recycled_after_its_trials(tmp_path):
    runner = LocalRunner(worker=True, recycle=2)
    try:
        specs = [
            trial(tmp_path, name, 'open("accuracy.txt", "w").write("0.5")\n') for name in "abc"
        ]
        assert all(runner.run(spec).ok for spec in specs)
        pids = [worker_pid(spec) for spec in specs]
        assert pids[0] == pids[1] != pids[2]
    finally:
        runner.close()


def test_trials_submitted_together_run_side_by_side(tmp_path, runner):
    body = 'import time\ntime.sleep(2)\nopen("accuracy.txt", "w").write("0.5")\n'
    specs = [trial(tmp_path, name, body) for name in "ab"]
    runner.run(trial(tmp_path, "warm", 'open("accuracy.txt", "w").write("0.5")\n'))
    started = time.monotonic()
    futures = [runner.submit(spec) for spec in specs]
    assert all(future.result().ok for future in futures)
    assert time.monotonic() - started < 3.5  # two 2-second trials at once, not one after another


def test_closing_the_runner_stops_its_worker(tmp_path):
    runner = LocalRunner(worker=True)
    spec = trial(tmp_path, "a", 'open("accuracy.txt", "w").write("0.5")\n')
    assert runner.run(spec).ok
    pid = worker_pid(spec)
    runner.close()
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_without_a_worker_each_trial_is_a_fresh_process(tmp_path):
    runner = LocalRunner()
    specs = [trial(tmp_path, name, 'open("accuracy.txt", "w").write("0.5")\n') for name in "ab"]
    assert all(runner.run(spec).ok for spec in specs)
    assert worker_pid(specs[0]) == worker_pid(specs[1]) == os.getpid()  # the runner is the parent


def test_preload_takes_third_party_imports_and_leaves_the_users_own(tmp_path):
    (tmp_path / "helper.py").write_text("")
    (tmp_path / "mypkg").mkdir()
    script = tmp_path / "train.py"
    script.write_text(
        "from __future__ import annotations\nimport numpy as np, helper\n"
        "from sklearn.datasets import load_digits\nfrom mypkg import thing\nimport keras.layers\n"
    )
    assert preload_modules(script) == ["numpy", "sklearn.datasets", "keras.layers"]


def test_a_worker_killed_with_its_tuner_takes_its_trials_along(tmp_path):
    """The kill -9 case in small: the worker dies with its parent, the trials with the worker."""
    import subprocess
    import sys

    body = 'Path("trial.pid").write_text(str(os.getpid()))\nimport time\ntime.sleep(600)\n'
    spec = trial(tmp_path, "a", body)
    code = (
        "import sys; from pathlib import Path\n"
        "from mutator.training.local import LocalRunner\n"
        "from mutator.training.runner import TrialSpec\n"
        f"spec = TrialSpec(script=Path({str(spec.script)!r}), trial_dir=Path({str(spec.trial_dir)!r}))\n"
        "LocalRunner(worker=True).run(spec)\n"
    )
    tuner = subprocess.Popen([sys.executable, "-c", code])
    pid_file = spec.trial_dir / "trial.pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    trial_pid = int(pid_file.read_text())
    worker = int((spec.trial_dir / "worker.pid").read_text())
    os.kill(tuner.pid, signal.SIGKILL)
    tuner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in (trial_pid, worker)):
        time.sleep(0.1)
    for pid in (trial_pid, worker):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
