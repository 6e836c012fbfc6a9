"""`mutate monitor`: the restart guard and ledger (fast, fake containers); a container killed
mid-training restarted and resumed (marked docker; skipped with the reason without an engine)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mutator.containers import monitor as mon
from mutator.containers import restarts
from mutator.containers.runner import DockerRunner, DockerUnavailableError, connect, container_name
from mutator.training.runner import TrialSpec


class FakeContainer:
    def __init__(self, trial_dir: Path | None, exit_code: int = 137, cid: str = "c1"):
        self.id, self.name = cid, f"mutator-run-{cid}"
        self.labels = {"mutator.run": "/run"}
        if trial_dir is not None:
            self.labels["mutator.trial_dir"] = str(trial_dir)
        self.attrs = {"State": {"ExitCode": exit_code, "OOMKilled": False, "FinishedAt": cid}}
        self.starts = 0

    def start(self):
        self.starts += 1


class FakeContainers:
    def __init__(self, containers):
        self.containers, self.filters = containers, None

    def list(self, all=False, filters=None):
        self.filters = filters
        return self.containers


class FakeClient:
    def __init__(self, containers):
        self.containers = FakeContainers(containers)

    def ping(self):
        return True


class Messages:
    def __init__(self):
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- fast ---------------------------------------------------------------------------------------
def test_a_dead_container_is_restarted_and_the_restart_recorded(tmp_path):
    container = FakeContainer(tmp_path)
    outcome = mon.restart(container, clock=Clock())
    assert outcome.restart and container.starts == 1
    (entry,) = restarts.read_entries(tmp_path)
    assert entry["container"] == container.name and entry["exit_code"] == 137
    assert entry["event"] == "restart" and "SIGKILL" in entry["reason"]
    assert restarts.restart_count(tmp_path) == 1


def test_restarts_are_capped_per_container_and_spaced_in_time(tmp_path):
    container, clock = FakeContainer(tmp_path), Clock()
    assert mon.restart(container, clock=clock, min_interval=10).restart
    clock.now += 5
    too_soon = mon.restart(container, clock=clock, min_interval=10)
    assert not too_soon.restart and too_soon.transient and "next in 5 s" in too_soon.reason
    for _ in range(2):
        clock.now += 11
        assert mon.restart(container, clock=clock, min_interval=10).restart
    clock.now += 100
    capped = mon.restart(container, clock=clock, min_interval=10)
    assert not capped.restart and not capped.transient and "limit 3" in capped.reason
    assert container.starts == 3
    # a new container for the same trial (the runner replaced it) has its own count
    assert mon.restart(FakeContainer(tmp_path, cid="c2"), clock=clock).restart


def test_a_container_its_runner_gave_up_on_is_left_alone(tmp_path):
    container = FakeContainer(tmp_path)
    restarts.record_given_up(tmp_path, container, "crashed")
    outcome = mon.restart(container, clock=Clock())
    assert not outcome.restart and "gave up" in outcome.reason and container.starts == 0


def test_a_reported_failure_or_a_missing_trial_dir_is_not_restarted(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    assert not mon.restart(FakeContainer(tmp_path), clock=Clock()).restart
    assert "gone" in mon.restart(FakeContainer(tmp_path / "nope"), clock=Clock()).reason
    assert "gone" in mon.restart(FakeContainer(None), clock=Clock()).reason


def test_a_torn_last_line_of_the_ledger_is_skipped(tmp_path):
    restarts.append_entry(tmp_path, {"event": "restart", "id": "c1", "epoch": 1.0})
    with (tmp_path / mon.RESTARTS_FILE).open("a") as handle:
        handle.write('{"event": "rest')
    assert len(restarts.read_entries(tmp_path)) == 1


def test_find_dead_trials_keeps_abnormal_exits_of_labelled_containers(tmp_path):
    dead, clean = FakeContainer(tmp_path, 137, "a"), FakeContainer(tmp_path, 0, "b")
    client = FakeClient([clean, dead])
    assert mon.find_dead_trials(client) == [dead]
    assert client.containers.filters == {"label": "mutator.run", "status": "exited"}


def test_monitor_once_restarts_and_reports_each_refusal_once(tmp_path):
    first, second = tmp_path / "1", tmp_path / "2"
    first.mkdir()
    second.mkdir()
    given_up = FakeContainer(second, cid="g")
    restarts.record_given_up(second, given_up, "crashed")
    client = FakeClient([FakeContainer(first, cid="a"), given_up])
    messages = Messages()
    assert mon.monitor(once=True, reporter=messages, client=client) == 1
    assert messages.lines[0].startswith("restarted mutator-run-a: restart 1 of 3")
    assert messages.lines[1].startswith("not restarting mutator-run-g: its runner gave up")


def test_monitor_without_an_engine_says_so():
    class Down:
        def ping(self):
            raise ConnectionError("connection refused")

    with pytest.raises(DockerUnavailableError, match="no Docker engine reachable"):
        mon.monitor(once=True, client=Down())


# -- against a real engine ---------------------------------------------------------------------
RESUMABLE = """
    import time
    from pathlib import Path

    progress = Path("progress.txt")  # in /trial: survives the container's death
    start = int(progress.read_text()) if progress.exists() else 0
    print(f"resumed at {start}", flush=True)
    for step in range(start, 8):
        print(f"Step {step + 1}/8", flush=True)
        time.sleep(0.5)
        progress.write_text(str(step + 1))
    print(f"test accuracy: {start / 10}")
"""


# the same slow CNN as test_runner_docker's: 8 epochs, 1.5 s apart
SLOW_CNN = """
    import time
    import keras
    from keras import layers
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.reshape(-1, 8, 8, 1).astype("float32") / 16.0
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, random_state=0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)), layers.Conv2D(8, 3, activation="relu"), layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    slow = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: time.sleep(1.5))
    model.fit(x_train, y_train, epochs=8, verbose=2, validation_split=0.1, callbacks=[slow])
    print("test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])
"""


@pytest.fixture(scope="module")
def engine():
    try:
        return connect()
    except DockerUnavailableError as error:
        pytest.skip(str(error))


def any_image(engine, *names: str) -> str:
    for name in names:
        with contextlib.suppress(Exception):
            engine.images.get(name)
            return name
    pytest.skip(f"none of {', '.join(names)} is built (see images/)")


def wait_until(condition, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def restart_after_kill(
    engine, spec: TrialSpec, image: str, marker: str, budget: float, cli: bool = False
):
    """Train in a thread, kill the container at `marker`, let the monitor restart it (through
    `mutate monitor --once` when `cli`)."""
    name = container_name(spec.trial_dir)
    log = spec.trial_dir / "log.txt"
    results: list = []
    runner = DockerRunner(image, restart_grace=30.0)
    thread = threading.Thread(target=lambda: results.append(runner.run(spec)))
    thread.start()
    try:
        assert wait_until(lambda: log.exists() and marker in log.read_text(), budget)
        engine.containers.get(name).kill()
        found = []
        assert wait_until(lambda: found.extend(mon.find_dead_trials(engine)) or found, 10)
        assert name in [c.name for c in found]
        if cli:
            done = subprocess.run(
                [sys.executable, "-m", "mutator", "monitor", "--once"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            restarted = int(done.stdout.rsplit("restarted ", 1)[1].split()[0])
            assert restarted >= 1, done.stdout
        else:
            messages = Messages()
            restarted = mon.monitor(once=True, min_interval=0, reporter=messages, client=engine)
            assert restarted >= 1, messages.lines
        thread.join(budget)
    finally:
        with contextlib.suppress(Exception):
            engine.containers.get(name).remove(force=True)
    (entry,) = [e for e in restarts.read_entries(spec.trial_dir) if e.get("id")]
    assert entry["exit_code"] == 137 and entry["container"] == name
    return results[0], log.read_text()


@pytest.mark.docker
def test_a_killed_container_is_restarted_by_the_monitor_and_its_runner_follows(engine, tmp_path):
    image = any_image(engine, "mutator-sklearn:latest", "mutator-keras:latest")
    folder = tmp_path / "run" / "trials" / "0001"
    folder.mkdir(parents=True)
    (folder / "train.py").write_text(textwrap.dedent(RESUMABLE))
    spec = TrialSpec(
        script=folder / "train.py", trial_dir=folder, metric_regex=r"test accuracy: ([0-9.]+)"
    )
    result, log = restart_after_kill(engine, spec, image, "Step 3/8", 60)
    assert result.ok, result.error
    assert result.value > 0  # it resumed: progress.txt was past 0
    assert "container restarted at" in log and "resumed at 0" in log


@pytest.mark.docker
@pytest.mark.slow
def test_a_killed_keras_trial_resumes_from_its_checkpoint_after_a_monitor_restart(engine, tmp_path):
    image = any_image(engine, "mutator-keras:latest")
    folder = tmp_path / "run" / "trials" / "0001"
    folder.mkdir(parents=True)
    (folder / "train.py").write_text(textwrap.dedent(SLOW_CNN))
    spec = TrialSpec(script=folder / "train.py", trial_dir=folder)
    result, _ = restart_after_kill(engine, spec, image, "Epoch 3/", 300, cli=True)
    assert result.ok, result.error
    history = json.loads((folder / "metrics.json").read_text())["history"]
    assert history[0]["initial_epoch"] > 0
