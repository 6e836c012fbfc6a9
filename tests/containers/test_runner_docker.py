"""The Docker runner: names, labels and limits (fast, with fakes); trials in real containers
(marked docker; skipped with the reason when no engine answers or the image is missing)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mutator.containers.follow import timestamp as _timestamp
from mutator.containers.runner import (
    DockerRunner,
    DockerUnavailableError,
    connect,
    container_labels,
    container_name,
)
from mutator.search.config import TuneSettings
from mutator.training.runner import Runner, TrialSpec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KERAS_IMAGE, SKLEARN_IMAGE = "mutator-keras:latest", "mutator-sklearn:latest"


# -- fakes ------------------------------------------------------------------------------------
class FakeImage:
    def __init__(self, env=()):
        self.attrs = {"Config": {"Env": list(env)}}


class FakeClient:
    def __init__(self, ping_error: Exception | None = None):
        self.ping_error = ping_error
        self.images = SimpleNamespace(get=lambda name: FakeImage(["PYTHONPATH=/opt/app"]))

    def ping(self):
        if self.ping_error is not None:
            raise self.ping_error
        return True


def trial(tmp_path: Path, source: str = "print('hi')\n", trial_id: str = "0001") -> TrialSpec:
    folder = tmp_path / "run" / "trials" / trial_id
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "train.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    return TrialSpec(script=script, trial_dir=folder, source_dir=tmp_path, env={"A": "1"})


# -- fast ---------------------------------------------------------------------------------------
def test_an_unreachable_engine_is_one_actionable_line_with_exit_code_7(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    nested = (
        "Error while fetching server API version: HTTPConnectionPool(host='127.0.0.1', port=1): "
        "Max retries exceeded (Caused by NewConnectionError('<urllib3.connection.HTTPConnection>: "
        "Failed to establish a new connection: [Errno 111] Connection refused'))\nmore"
    )
    with pytest.raises(DockerUnavailableError) as caught:
        connect(FakeClient(ConnectionError(nested)))
    message = str(caught.value)
    assert caught.value.exit_code == 7
    assert "\n" not in message
    assert message.startswith("no Docker engine reachable (tcp://127.0.0.1:1: Connection refused)")
    assert "`sudo dockerd &`" in message and "--runner local" in message


def test_the_docker_runner_is_a_runner():
    runner = DockerRunner("some:image", client=FakeClient())
    assert isinstance(runner, Runner)
    assert runner.name == "docker"


def test_container_names_are_stable_valid_and_differ_between_runs(tmp_path):
    first = trial(tmp_path / "a").trial_dir
    other = trial(tmp_path / "b").trial_dir
    name = container_name(first)
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name)
    assert name == container_name(first) and name.startswith("mutator-run-0001-")
    assert name != container_name(other)  # same run and trial names, different run dirs
    odd = tmp_path / "my run (2)" / "trials" / "0003"
    assert re.fullmatch(r"mutator-my-run-2-0003-[0-9a-f]{8}", container_name(odd))


def test_labels_name_the_run_the_trial_and_the_host_trial_dir(tmp_path):
    spec = trial(tmp_path)
    labels = container_labels(spec)
    assert labels["mutator.run"] == str((tmp_path / "run").resolve())
    assert labels["mutator.trial"] == "0001"
    assert labels["mutator.script"] == "train.py"
    assert labels["mutator.trial_dir"] == str(spec.trial_dir.resolve())
    assert len(labels["mutator.sha256"]) == 64


def test_create_options_carry_limits_mounts_user_and_environment(tmp_path):
    spec = trial(tmp_path)
    runner = DockerRunner(
        "img", cpus=1.5, memory="1g", network="none", user="1234:1234", client=FakeClient()
    )
    options = runner.create_options(spec, image_pythonpath="/opt/app")
    assert options["nano_cpus"] == 1_500_000_000
    assert options["mem_limit"] == options["memswap_limit"] == "1g"
    assert options["network_mode"] == "none"
    assert options["user"] == "1234:1234"
    assert options["working_dir"] == "/trial"
    assert f"{spec.trial_dir.resolve()}:/trial:rw" in options["volumes"]
    assert f"{tmp_path.resolve()}:/src:ro" in options["volumes"]
    env = options["environment"]
    assert env["PYTHONPATH"] == "/src:/opt/app" and env["A"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1" and env["HOME"] == "/tmp"
    assert options["name"] == container_name(spec.trial_dir)


def test_no_limits_means_no_limit_options(tmp_path):
    options = DockerRunner("img", client=FakeClient()).create_options(trial(tmp_path))
    assert not {"nano_cpus", "mem_limit", "network_mode", "network"} & set(options)
    named = DockerRunner("img", network="lab", client=FakeClient()).create_options(trial(tmp_path))
    assert named["network"] == "lab"


def test_the_command_is_the_harness_with_container_paths(tmp_path):
    spec = trial(tmp_path)
    command = DockerRunner("img", client=FakeClient()).command(spec)
    assert command[:4] == ["python", "-m", "mutator.training.harness", "/trial/train.py"]
    assert command[command.index("--trial-dir") + 1] == "/trial"
    assert command[command.index("--source-dir") + 1] == "/src"


def test_a_script_outside_its_trial_dir_is_mounted_read_only(tmp_path):
    script = tmp_path / "elsewhere" / "train.py"
    script.parent.mkdir()
    script.write_text("print(1)\n")
    spec = TrialSpec(script=script, trial_dir=tmp_path / "t")
    runner = DockerRunner("img", client=FakeClient())
    assert runner.command(spec)[3] == "/script/train.py"
    volumes = runner.create_options(spec)["volumes"]
    assert f"{script.parent.resolve()}:/script:ro" in volumes


@pytest.mark.parametrize(
    ("fixture", "image"),
    [
        ("cnn_digits.py", KERAS_IMAGE),
        ("mlp_digits.py", KERAS_IMAGE),
        ("sklearn_digits.py", SKLEARN_IMAGE),
        ("not_ml.py", KERAS_IMAGE),  # unknown kind: the keras image runs any Python
    ],
)
def test_the_image_follows_the_detected_kind(fixture, image):
    assert DockerRunner(client=FakeClient()).image_for(FIXTURES / fixture) == image


def test_configured_images_override_by_kind_or_image_kind_and_an_explicit_image_wins():
    cnn = FIXTURES / "cnn_digits.py"
    assert DockerRunner(images={"cnn": "a"}, client=FakeClient()).image_for(cnn) == "a"
    assert DockerRunner(images={"keras": "b"}, client=FakeClient()).image_for(cnn) == "b"
    assert DockerRunner("c", images={"cnn": "a"}, client=FakeClient()).image_for(cnn) == "c"


def test_from_settings_reads_the_docker_group(monkeypatch):
    import mutator.containers.runner as docker_runner

    monkeypatch.setattr(docker_runner, "connect", lambda client=None: FakeClient())
    plain = TuneSettings.of(runner="docker", images={"sklearn": "s"}).docker
    plain = DockerRunner.from_settings(plain)
    assert plain.image is None and plain.cpus is None and plain.images == {"sklearn": "s"}
    extra = TuneSettings.of(
        docker_cpus=2.0, docker_memory="3g", docker_network="none",
        docker_keep_failed=True, docker_restart_grace=20.0, docker_image="x",
    )  # fmt: skip
    runner = DockerRunner.from_settings(extra.docker)
    assert (runner.image, runner.cpus, runner.memory, runner.network) == ("x", 2.0, "3g", "none")
    assert runner.keep_failed and runner.restart_grace == 20.0


def test_docker_timestamps_keep_their_fraction():
    assert _timestamp("1970-01-01T00:00:10.250000000Z") == pytest.approx(10.25)
    assert _timestamp("0001-01-01T00:00:00Z") is None
    assert _timestamp(None) is None


# -- against a real engine ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine():
    try:
        return connect()
    except DockerUnavailableError as error:
        pytest.skip(str(error))


def image_or_skip(engine, name: str) -> str:
    import docker.errors

    try:
        engine.images.get(name)
    except docker.errors.ImageNotFound:
        pytest.skip(f"image {name} is not built (see images/)")
    return name


@pytest.fixture
def plain_image(engine):
    """Any mutator image: the plain-Python tests need neither Keras nor scikit-learn."""
    for name in (SKLEARN_IMAGE, KERAS_IMAGE):
        try:
            engine.images.get(name)
            return name
        except Exception:  # noqa: BLE001
            continue
    pytest.skip("no mutator image is built (see images/)")


@pytest.fixture
def cleanup(engine):
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(Exception):  # already gone
            engine.containers.get(name).remove(force=True)


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


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def running(engine, name: str) -> bool:
    try:
        return engine.containers.get(name).status == "running"
    except Exception:  # noqa: BLE001 - not created yet
        return False


def wait_for_text(path: Path, text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.docker
@pytest.mark.slow
def test_a_cnn_trains_in_the_keras_image_and_its_metric_comes_back(engine, tmp_path, cleanup):
    image = image_or_skip(engine, KERAS_IMAGE)
    spec = trial(tmp_path, (FIXTURES / "cnn_digits.py").read_text())
    cleanup.append(container_name(spec.trial_dir))
    result = DockerRunner(image).run(spec)
    assert result.status == "ok", result.error
    assert result.value is not None and result.value > 0
    assert (spec.trial_dir / "model.keras").exists()
    assert "Epoch 2/2" in (spec.trial_dir / "log.txt").read_text()


@pytest.mark.docker
def test_limits_labels_and_network_are_set_and_files_are_usable(
    engine, plain_image, tmp_path, cleanup
):
    spec = trial(tmp_path, "print('test accuracy: 0.5')\n")
    spec = TrialSpec(**{**spec.__dict__, "metric_regex": r"test accuracy: ([0-9.]+)"})
    name = container_name(spec.trial_dir)
    cleanup.append(name)
    lines: list[str] = []
    runner = DockerRunner(
        plain_image, cpus=0.5, memory="256m", network="none", keep=True, on_line=lines.append
    )
    result = runner.run(spec)
    assert result.status == "ok" and result.value == 0.5, result.error
    assert "test accuracy: 0.5" in lines
    attrs = engine.containers.get(name).attrs
    assert attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert attrs["HostConfig"]["Memory"] == 256 * 1024 * 1024
    assert attrs["HostConfig"]["NetworkMode"] == "none"
    assert attrs["Config"]["Labels"]["mutator.trial_dir"] == str(spec.trial_dir.resolve())
    assert attrs["Config"]["Labels"]["mutator.run"] == str((tmp_path / "run").resolve())
    metrics = spec.trial_dir / "metrics.json"
    assert metrics.stat().st_uid == os.getuid()  # the container ran as the host user
    metrics.unlink()  # the host user can remove what the container wrote
    shutil.rmtree(spec.trial_dir)


@pytest.mark.docker
def test_a_script_that_raises_is_a_failed_trial_and_its_container_is_kept_on_request(
    engine, plain_image, tmp_path, cleanup
):
    spec = trial(tmp_path, "raise RuntimeError('broken on purpose')\n")
    name = container_name(spec.trial_dir)
    cleanup.append(name)
    result = DockerRunner(plain_image, keep_failed=True).run(spec)
    assert result.status == "failed"
    assert "broken on purpose" in result.error and name in result.error
    assert engine.containers.get(name).status == "exited"
    ok = trial(tmp_path, "print('test accuracy: 1')\n", trial_id="0002")
    ok = TrialSpec(**{**ok.__dict__, "metric_regex": r"test accuracy: ([0-9.]+)"})
    assert DockerRunner(plain_image, keep_failed=True).run(ok).ok
    with pytest.raises(Exception, match="No such container|Not Found"):
        engine.containers.get(container_name(ok.trial_dir))  # a success is removed


@pytest.mark.docker
def test_a_missing_image_is_an_error_that_says_which(engine, tmp_path):
    from mutator.containers.runner import ImageMissingError

    with pytest.raises(ImageMissingError, match="mutator-nothing:0 is not on this Docker engine"):
        DockerRunner("mutator-nothing:0").run(trial(tmp_path))


@pytest.mark.docker
def test_a_timeout_kills_the_container(engine, plain_image, tmp_path, cleanup):
    spec = trial(tmp_path, "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n")
    spec = TrialSpec(**{**spec.__dict__, "timeout": 3.0})
    cleanup.append(container_name(spec.trial_dir))
    started = time.monotonic()
    result = DockerRunner(plain_image).run(spec)
    assert result.status == "timeout"
    assert time.monotonic() - started < 20
    assert "sleeping" in (spec.trial_dir / "log.txt").read_text()


@pytest.mark.docker
def test_a_rerun_replaces_a_stopped_container_and_follows_a_running_one(
    engine, plain_image, tmp_path, cleanup
):
    spec = trial(tmp_path, "import time\ntime.sleep(4)\nprint('test accuracy: 0.25')\n")
    spec = TrialSpec(**{**spec.__dict__, "metric_regex": r"test accuracy: ([0-9.]+)"})
    name = container_name(spec.trial_dir)
    cleanup.append(name)
    first: list = []
    thread = threading.Thread(target=lambda: first.append(DockerRunner(plain_image).run(spec)))
    thread.start()
    assert wait_until(lambda: running(engine, name), 30)
    second = DockerRunner(plain_image).run(spec)  # the same trial again: follows, not twice
    thread.join(60)
    assert second.ok and second.value == 0.25
    assert "already running: following it" in (spec.trial_dir / "log.txt").read_text()
    assert first and first[0].ok


@pytest.mark.docker
@pytest.mark.slow
def test_a_killed_container_rerun_by_the_search_resumes_from_its_checkpoint(
    engine, tmp_path, cleanup
):
    image = image_or_skip(engine, KERAS_IMAGE)
    spec = trial(tmp_path, SLOW_CNN)
    name = container_name(spec.trial_dir)
    cleanup.append(name)
    log = spec.trial_dir / "log.txt"
    results: list = []
    thread = threading.Thread(target=lambda: results.append(DockerRunner(image).run(spec)))
    thread.start()
    assert wait_for_text(log, "Epoch 3/", 180), log.read_text()
    engine.containers.get(name).kill()
    thread.join(60)
    assert results[0].status == "crashed" and "137" in results[0].error
    again = DockerRunner(image).run(spec)  # what search._run_with_retries does
    assert again.ok, again.error
    fits = again.metrics["history"]
    assert fits[0]["initial_epoch"] > 0


@pytest.mark.docker
@pytest.mark.slow
def test_mutate_tune_with_the_docker_runner_runs_two_trials(engine, tmp_path):
    image_or_skip(engine, KERAS_IMAGE)
    shutil.copy(FIXTURES / "cnn_digits.py", tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "mutator", "tune", "cnn_digits.py", "--runner", "docker",
         "--max-trials", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    lines = (tmp_path / ".mutator" / "cnn_digits" / "ledger.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    # the budget counts changes tried: a confirm, a noise run, a recheck may follow
    searched = [
        r
        for r in records
        if r["decision"] not in ("confirm", "noise", "final")
        and not (r.get("noise") or {}).get("rechecked")
    ]
    assert len(searched) == 2
    assert records[0]["status"] == "ok" and records[0]["value"] > 0
    left = engine.containers.list(
        all=True,
        filters={"label": f"mutator.run={(tmp_path / '.mutator' / 'cnn_digits').resolve()}"},
    )
    assert not left  # finished containers (here the run's worker container) are removed


def test_a_trial_dir_that_is_also_the_source_dir_is_mounted_at_both(tmp_path):
    spec = TrialSpec(script=tmp_path / "train.py", trial_dir=tmp_path, source_dir=tmp_path)
    volumes = DockerRunner("img", client=FakeClient()).create_options(spec)["volumes"]
    assert f"{tmp_path.resolve()}:/trial:rw" in volumes
    assert f"{tmp_path.resolve()}:/src:ro" in volumes
