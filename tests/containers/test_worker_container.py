"""One container per run serving all its trials (marked docker: a real engine and image)."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
from test_runner_docker import engine, plain_image, trial, wait_until  # noqa: F401 - fixtures

from mutator.containers import monitor
from mutator.containers.docker_api import LABEL_RUN
from mutator.containers.runner import DockerRunner
from mutator.containers.worker_container import worker_container_name

pytestmark = pytest.mark.docker

REPORTS = """
    import os, time
    from pathlib import Path
    Path("worker.pid").write_text(str(os.getppid()))
    with open("attempts.txt", "a") as attempts:
        attempts.write("x")
    time.sleep({sleep})
    Path("accuracy.txt").write_text("0.5")
"""


@pytest.fixture
def runner(engine, plain_image):  # noqa: F811 - the fixture of the same name
    runner = DockerRunner(plain_image, client=engine, worker=True, restart_grace=60)
    yield runner
    runner.close()


def run_containers(client, run_dir: Path) -> list:
    return client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_dir.resolve()}"})


def test_the_trials_of_a_run_are_forks_of_one_worker_in_one_container(engine, runner, tmp_path):  # noqa: F811
    specs = [trial(tmp_path, REPORTS.format(sleep=1), trial_id=n) for n in ("0001", "0002")]
    futures = [runner.submit(spec) for spec in specs]
    assert wait_until(lambda: len(run_containers(engine, tmp_path / "run")) == 1, 60)
    results = [future.result(timeout=120) for future in futures]
    assert [(r.status, r.value) for r in results] == [("ok", 0.5), ("ok", 0.5)]
    pids = {(spec.trial_dir / "worker.pid").read_text() for spec in specs}
    assert len(pids) == 1  # both forked from the same warm worker
    assert len(run_containers(engine, tmp_path / "run")) == 1  # one container for the run
    runner.close()
    assert run_containers(engine, tmp_path / "run") == []  # removed once the run is done


def test_a_worker_container_the_monitor_restarts_resumes_its_trial(engine, runner, tmp_path):  # noqa: F811
    spec = trial(tmp_path, REPORTS.format(sleep=8))
    outcome: dict = {}
    waiter = threading.Thread(target=lambda: outcome.update(result=runner.run(spec)))
    waiter.start()
    attempts = spec.trial_dir / "attempts.txt"
    assert wait_until(attempts.exists, 60), "the trial never started"
    name = worker_container_name(tmp_path / "run")
    engine.containers.get(name).kill()  # exit 137, as the OOM killer would
    assert wait_until(lambda: engine.containers.get(name).status == "exited", 30)
    restarted = monitor.monitor(once=True, client=engine, min_interval=0)
    assert restarted == 1
    waiter.join(timeout=120)
    result = outcome["result"]
    assert result.status == "ok" and result.value == 0.5
    assert attempts.read_text() == "xx"  # the restarted worker ran the trial again
    assert result.restarts == 1


def test_a_trial_in_a_worker_container_times_out_and_the_worker_goes_on(runner, tmp_path):
    hung = trial(tmp_path, REPORTS.format(sleep=600), trial_id="0001")
    hung = dataclasses.replace(hung, timeout=5)
    started = time.monotonic()
    result = runner.run(hung)
    assert result.status == "timeout" and time.monotonic() - started < 40
    follow = trial(tmp_path, REPORTS.format(sleep=0), trial_id="0002")
    assert runner.run(follow).status == "ok"
    pid = (follow.trial_dir / "worker.pid").read_text()
    assert (hung.trial_dir / "worker.pid").read_text() == pid  # the same worker served both
