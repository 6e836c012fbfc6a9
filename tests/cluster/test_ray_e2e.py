"""`--runner ray` for real: a local Ray started by the test, and a head plus a worker node joined
by address on this machine; trials train on digits (marked slow)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from slow_scripts import slow_epochs

from mutator.cli.progress import PlainReporter
from mutator.search.config import TuneSettings
from mutator.search.tune import tune

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# The test's cluster trusts this machine only; a real one keeps token authentication on.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def ledger(run_dir: Path) -> list[dict]:
    path = run_dir / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def values(run_dir: Path) -> list[tuple[int, str, float]]:
    return [(r["id"], r["decision"], r["value"]) for r in ledger(run_dir)]


def test_a_tune_through_ray_reaches_the_same_metrics_as_the_local_runner(tmp_path, monkeypatch):
    for name, value in RAY_ENV.items():
        monkeypatch.setenv(name, value)
    runs = {}
    for runner in ("local", "ray"):
        folder = tmp_path / runner
        folder.mkdir()
        shutil.copy(FIXTURES / "cnn_digits.py", folder)
        # warm_after 0: the children start warm, so the parent's weights travel to the node
        settings = TuneSettings.of(
            max_trials=3, seed=0, parallel=2, runner=runner, warm_after=0.0, noise_runs=0
        )
        if runner == "ray":
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            tune(folder / "cnn_digits.py", settings, PlainReporter())
        finally:
            if runner == "ray":
                ray.shutdown()
        runs[runner] = folder / ".mutator" / "cnn_digits"
    assert len(values(runs["ray"])) == 4  # baseline, two candidates, the confirm
    assert values(runs["ray"]) == values(runs["local"])
    trial_log = (runs["ray"] / "trials" / "0002" / "log.txt").read_text()
    assert "start on Ray node" in trial_log and "Epoch 4/4" in trial_log  # streamed back here
    assert (runs["ray"] / "best.py").exists() and (runs["ray"] / "report.html").exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ray_cli(*args: str, env: dict[str, str]) -> None:
    command = [str(Path(sys.executable).with_name("ray")), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def cluster():
    """`ray start --head` (no CPUs: trials must go to the worker node) and a worker node of 2
    CPUs joined by its address; yields the address and the environment to reach it."""
    env = {**os.environ, **RAY_ENV}
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's sockets live in it
    address = f"127.0.0.1:{port}"
    ray_cli("start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
            "--num-cpus", "0", "--include-dashboard", "false", "--temp-dir", temp, env=env)  # fmt: skip
    try:
        ray_cli("start", "--address", address, "--node-ip-address", "127.0.0.1",
                "--num-cpus", "2", env=env)  # fmt: skip
        yield address, env
    finally:
        subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"],
                       env=env, capture_output=True, timeout=120)  # fmt: skip
        shutil.rmtree(temp, ignore_errors=True)


def start_tune(folder: Path, address: str, env: dict[str, str], *extra: str) -> subprocess.Popen:
    args = ["tune", "cnn_digits.py", "--runner", "ray", "--ray-address", address, "--seed", "0"]
    return subprocess.Popen(
        [sys.executable, "-m", "mutator", *args, *extra],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(log: Path, text: str, seconds: float = 180) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace") if log.exists() else ""
        if text in content:
            return content
        time.sleep(0.2)
    pytest.fail(f"{log} never showed {text!r}")


def test_a_ray_worker_killed_mid_trial_resumes_the_trial_from_its_epoch(tmp_path, cluster):
    address, env = cluster
    (tmp_path / "cnn_digits.py").write_text(slow_epochs(0.5, epochs=10))
    process = start_tune(tmp_path, address, env, "--max-trials", "1")
    run_dir = tmp_path / ".mutator" / "cnn_digits"
    trial = run_dir / "trials" / "0001"
    wait_for(trial / "log.txt", "Epoch 5/10")
    time.sleep(1.5)  # the node sends the trial's folder back every second
    assert list((trial / "checkpoint").glob("fit-1*")), "no checkpoint reached the tuner"
    pid = int(
        re.findall(r"start on Ray node \S+, worker pid (\d+)", (trial / "log.txt").read_text())[-1]
    )
    os.kill(pid, signal.SIGKILL)  # the Ray worker process that runs the trial's task
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    [baseline] = ledger(run_dir)
    assert baseline["status"] == "ok" and baseline["restarts"] == 1
    assert baseline["resumed_from_epoch"] > 0
    assert "restarting from its checkpoint" in output and "the Ray worker died" in output
    log = (trial / "log.txt").read_text()
    assert log.count("start on Ray node") == 2


def test_kill_9_of_the_tuner_stops_its_trials_on_the_cluster_and_a_rerun_resumes(tmp_path, cluster):
    address, env = cluster
    (tmp_path / "cnn_digits.py").write_text(slow_epochs(0.5, epochs=10))
    args = ("--max-trials", "1")
    process = start_tune(tmp_path, address, env, *args)
    run_dir = tmp_path / ".mutator" / "cnn_digits"
    wait_for(run_dir / "trials" / "0001" / "log.txt", "Epoch 5/10")
    time.sleep(1.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the job's tasks end with their driver
        left = subprocess.run(["pgrep", "-f", "mutator-ray-"], capture_output=True, text=True)
        if not left.stdout:
            break
        time.sleep(0.5)
    assert not left.stdout, "a trial went on training on the cluster after its tuner was killed"
    assert ledger(run_dir) == []

    rerun = start_tune(tmp_path, address, env, *args)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    [baseline] = ledger(run_dir)
    assert baseline["status"] == "ok" and baseline["resumed_from_epoch"] > 0
    assert "trial 1 (resuming)" in output
