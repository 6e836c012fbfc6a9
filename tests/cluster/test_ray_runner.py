"""The Ray runner's checks before any trial: addresses, sizes, and a cluster that is not there."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mutator.cluster.ray_runner import (
    RayUnavailableError,
    parse_address,
    parse_bytes,
    trial_resources,
)
from mutator.errors import UsageError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_addresses_are_host_and_port_with_or_without_the_client_scheme():
    assert parse_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert parse_address("ray://head.example:10001") == ("head.example", 10001)
    assert parse_address("[::1]:6379") == ("::1", 6379)
    with pytest.raises(UsageError, match="HOST:PORT"):
        parse_address("head.example")


def test_memory_sizes_read_as_people_write_them():
    assert parse_bytes("2g") == 2 * 2**30
    assert parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("1.5G") == int(1.5 * 2**30)
    assert parse_bytes(None) is None
    with pytest.raises(UsageError, match="memory size"):
        parse_bytes("lots")


class FakeRay:
    """Only `nodes()`, as `ray.nodes()` reports them."""

    def __init__(self, *cpus: float, gpus: float = 0.0) -> None:
        self._nodes = [
            {"Alive": True, "Resources": {"CPU": c, "GPU": gpus, "memory": 8 * 2**30}} for c in cpus
        ]
        self._nodes.append({"Alive": False, "Resources": {"CPU": 64.0}})  # a dead node counts not

    def nodes(self):
        return self._nodes


def test_a_trial_gets_its_share_of_the_cluster_but_never_more_than_a_node_has():
    assert trial_resources(FakeRay(2.0), None, 0, None, parallel=2).cpus == 1
    assert trial_resources(FakeRay(4.0, 4.0), None, 0, None, parallel=2).cpus == 4
    assert trial_resources(FakeRay(2.0, 2.0), None, 0, None, parallel=1).cpus == 2
    assert trial_resources(FakeRay(2.0), None, 0, None, parallel=8).cpus == 1


def test_a_request_no_node_can_hold_stops_before_any_trial():
    with pytest.raises(RayUnavailableError, match="no node"):
        trial_resources(FakeRay(2.0), 4.0, 0, None, parallel=1)
    with pytest.raises(RayUnavailableError, match="no node"):
        trial_resources(FakeRay(8.0), 1.0, 1.0, None, parallel=1)  # no GPU anywhere
    with pytest.raises(RayUnavailableError, match="no node"):
        trial_resources(FakeRay(8.0), 1.0, 0, 64 * 2**30, parallel=1)


def tune_against(address: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    (cwd / "cnn_digits.py").write_text((FIXTURES / "cnn_digits.py").read_text())
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mutator", "tune", "cnn_digits.py", "--runner", "ray"]
        + ["--ray-address", address, "--max-trials", "2"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.monotonic() - started


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_address_nobody_listens_on_is_one_line_and_exit_7_at_once(tmp_path):
    pytest.importorskip("ray")
    result, seconds = tune_against(f"127.0.0.1:{closed_port()}", tmp_path)
    assert result.returncode == 7, result.stdout + result.stderr
    assert result.stderr.startswith("mutate: error: cannot reach the Ray cluster")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert seconds < 10
    assert not (tmp_path / ".mutator" / "cnn_digits" / "trials").exists()  # no trial started


def test_a_head_that_accepts_but_never_answers_is_exit_7_in_under_10_seconds(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        result, seconds = tune_against(f"127.0.0.1:{port}", tmp_path)
    assert result.returncode == 7, result.stdout + result.stderr
    assert result.stderr.startswith("mutate: error: ") and result.stderr.count("\n") == 1
    assert seconds < 10
