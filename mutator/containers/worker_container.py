"""One container per run that serves all its trials: the warm worker, inside the training image.

A container per trial pays the image's Python, TensorFlow and Keras imports every trial (~5 s,
against ~0.7 s for the container itself: BENCHMARKS.md). Here one container runs
`python -m mutator.training.worker` for the whole run and forks a process per trial, exactly as
the local worker does; the runner speaks to it through the spool folder (`WorkerClient`).

Paths are the same inside as outside: the run directory is mounted read-write at its own path,
the script's folder read-only at its own, and the kept weights (`weights/`) read-only at theirs,
so a request, a log path or a warm start's parent model means the same file on both sides.

The container is named and labelled after its run, so:
- `mutate monitor` restarts it when it dies (its restarts ledger is the spool's
  `restarts.jsonl`); the restarted worker runs the trials that had not ended, which resume from
  their checkpoints, and a runner waiting on them (with `restart_grace`) simply goes on waiting;
- a `mutate tune` killed and run again finds it still running and waits for the trials it is
  training instead of starting them twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mutator.containers.docker_api import (
    LABEL_RUN,
    LABEL_SCRIPT,
    LABEL_SHA,
    LABEL_TRIAL,
    LABEL_TRIAL_DIR,
    slug,
)
from mutator.containers.restarts import restart_count
from mutator.training import worker as protocol
from mutator.training.runner import (
    LOG_FILE,
    METRICS_FILE,
    TrialResult,
    TrialSpec,
    describe_exit,
    harness_arguments,
    log_note,
    read_result,
)
from mutator.training.worker_client import WorkerClient, trial_key

SPOOL = ".worker"
ALIVE_CHECK_SECONDS = 0.5  # between two looks at the container (an API call each)
STOP_WAIT = 15.0


def worker_container_name(run_dir: Path) -> str:
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:8]
    return f"mutator-{slug(run_dir.name)}-worker-{digest}"


class ContainerWorker:
    """The worker container of one run: created on first use, followed, stopped on close."""

    def __init__(
        self,
        client: Any,
        run_dir: Path,
        image: str,
        *,
        mounts: Sequence[tuple[Path, str]],
        environment: Mapping[str, str],
        limits: Mapping[str, Any],
        user: str,
        preload: Sequence[str],
        script_name: str,
        restart_grace: float = 0.0,
    ) -> None:
        self.docker = client
        self.run_dir = run_dir.resolve()
        self.spool = self.run_dir / SPOOL
        self.image = image
        self.mounts = list(mounts)
        self.environment = dict(environment)
        self.limits = dict(limits)
        self.user = user
        self.preload = list(preload)
        self.script_name = script_name
        self.restart_grace = restart_grace
        self.name = worker_container_name(self.run_dir)
        self.container: Any = None
        self._checked_at = 0.0
        self._alive = False
        self._down_since: float | None = None
        self.client = WorkerClient(self.spool, self.alive)

    def ensure(self) -> Any:
        """The run's worker container, running: the one already there, or a new one."""
        from docker.errors import NotFound

        if self.container is not None and self.alive():
            return self.container
        try:
            existing = self.docker.containers.get(self.name)
        except NotFound:
            existing = None
        if existing is not None and existing.status in ("running", "restarting"):
            self.container = existing
        else:
            if existing is not None:
                existing.remove(force=True)
            self.spool.mkdir(parents=True, exist_ok=True)
            # Requests not ended are kept: the new worker runs them (they resume from their
            # checkpoints) for the runner threads still waiting on them.
            for stale in (protocol.STOP_FILE, protocol.READY_FILE):
                (self.spool / stale).unlink(missing_ok=True)
            self.container = self.docker.containers.create(
                self.image, self.command(), **self.create_options()
            )
            self.container.start()
        self._alive, self._checked_at, self._down_since = True, time.monotonic(), None
        return self.container

    def command(self) -> list[str]:
        return [
            "python",
            "-m",
            "mutator.training.worker",
            "--spool",
            str(self.spool),
            "--preload",
            ",".join(self.preload),
        ]

    def create_options(self) -> dict[str, Any]:
        # Docker mounts a parent before what lies inside it, whatever the order given.
        volumes = [f"{path}:{path}:{mode}" for path, mode in self.mounts]
        return {
            "name": self.name,
            "labels": {
                LABEL_RUN: str(self.run_dir),
                LABEL_TRIAL: "worker",
                LABEL_TRIAL_DIR: str(self.spool),
                LABEL_SCRIPT: self.script_name,
                LABEL_SHA: "",
            },
            "volumes": volumes,
            "working_dir": str(self.run_dir),
            "environment": self.environment,
            "user": self.user,
            "stdin_open": False,
            "tty": False,
            **self.limits,
        }

    def alive(self) -> bool:
        """Running, or within `restart_grace` of stopping (the monitor may bring it back)."""
        from docker.errors import DockerException

        now = time.monotonic()
        if now - self._checked_at < ALIVE_CHECK_SECONDS:
            return self._alive
        self._checked_at = now
        try:
            self.container.reload()
            running = self.container.status in ("running", "restarting", "created")
        except DockerException:
            running = False
        if running:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = now
        self._alive = running or (
            self.restart_grace > 0 and now - (self._down_since or now) < self.restart_grace
        )
        return self._alive

    def run_trial(self, spec: TrialSpec, cancelled: Callable[[Path], bool]) -> TrialResult:
        """Hand the trial to the worker in the (running) container and follow it to its end.

        `cancelled(trial_dir)` says whether the runner cancelled it meanwhile.
        """
        trial_dir = spec.trial_dir.resolve()
        trial_dir.mkdir(parents=True, exist_ok=True)
        log_path = trial_dir / LOG_FILE
        started = time.monotonic()
        deadline = None if spec.timeout is None else started + spec.timeout
        key = trial_key(trial_dir)
        arguments = harness_arguments(
            spec,
            script=str(spec.script.resolve()),
            trial_dir=str(trial_dir),
            source_dir=str(spec.source_dir.resolve()) if spec.source_dir else None,
        )[2:]
        if not self.client.pending(key):
            (trial_dir / METRICS_FILE).unlink(missing_ok=True)  # never read an old attempt's
        restarts_before = self.restarts()
        with log_path.open("ab") as log:
            log_note(log, f"start in container {self.name}: {shlex.join(arguments)}")
        env = {**self.environment, **spec.env}
        self.client.submit(key, arguments, trial_dir, env, log_path)
        end = self.client.wait(key, deadline)
        was_cancelled = cancelled(trial_dir)
        seconds = time.monotonic() - started
        with log_path.open("ab") as log:
            ending = "timed out" if end.timed_out else describe_exit(end.returncode)
            if end.worker_died:
                ending = f"its worker container {self.name} stopped"
            log_note(log, f"end: {'cancelled' if was_cancelled else ending} after {seconds:.1f} s")
        result = read_result(
            spec, returncode=end.returncode, seconds=seconds, log_path=log_path,
            timed_out=end.timed_out and not was_cancelled, cancelled=was_cancelled,
        )  # fmt: skip
        result.restarts = self.restarts() - restarts_before
        return result

    def restarts(self) -> int:
        """How many times the monitor restarted this container so far."""
        return restart_count(self.spool)

    def close(self) -> None:
        """Stop the worker once idle, then remove its container."""
        from docker.errors import DockerException

        if self.container is None:
            return
        self.client.stop()
        with contextlib.suppress(DockerException):
            self.container.wait(timeout=STOP_WAIT)
        with contextlib.suppress(DockerException):
            self.container.remove(force=True)
        self.container = None
