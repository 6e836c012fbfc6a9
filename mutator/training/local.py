"""Train trials on this machine: each a process of its own, forked from a warm worker or started fresh.

With `worker=True` (the default of `mutate tune`) one long-lived `mutator.training.worker`
imports TensorFlow, Keras and the script's other third-party modules once, and every trial is a
fork of it (see that module for why this keeps a process per trial's isolation). Otherwise each
trial is `python -m mutator.training.harness` in a subprocess, as before.

Either way the trial gets its own session (so its own process group): a timeout, or Ctrl-C in
`mutate`, kills the whole group, including anything the training script started; and it dies
with the tuner (a `kill -9` of `mutate tune` leaves nothing training). Its stdout and stderr go
to `log.txt` in the trial dir (appended: a resumed trial keeps the killed attempt's log above its
own); a subprocess's also go, line by line, to an optional `on_line` callback.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import mutator
from mutator.training.runner import (
    LOG_FILE,
    METRICS_FILE,
    ConcurrentRunner,
    InFlight,
    LineCallback,
    TrialResult,
    TrialSpec,
    describe_exit,
    harness_arguments,
    log_note,
    not_started,
    read_result,
)
from mutator.training.worker_client import WorkerClient, trial_key

# The folder holding the `mutator` package: on the child's PYTHONPATH, so the harness imports
# even when mutator is not installed into the interpreter that trains (`python=`).
PACKAGE_ROOT = Path(mutator.__file__).resolve().parent.parent

# Defaults the user's environment may override: TensorFlow's C++ chatter off, and no plot window
# that would wait forever for someone to close it.
QUIET_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8"}
READER_GRACE = 5.0  # seconds to drain the log after the process group is gone


class LocalRunner(ConcurrentRunner):
    """Runs each trial as a process on this machine, with a timeout and a log.

    `worker=True`: trials are forked from a warm worker that imported `preload` (module names)
    once; it is replaced after `recycle` trials, and by a new one if it dies. A worker that
    cannot even start makes the runner fall back to a fresh process per trial, saying so in
    the trial's log. `on_line` receives every line a fresh-process trial prints, from a reader
    thread; an exception it raises stops further calls but not the trial.
    """

    name = "local"

    def __init__(
        self,
        python: str = sys.executable,
        on_line: LineCallback | None = None,
        *,
        worker: bool = False,
        preload: Sequence[str] = (),
        recycle: int = 50,
    ) -> None:
        self.python = python
        self.on_line = on_line
        self.worker = worker
        self.preload = tuple(preload)
        self.recycle = max(1, recycle)
        self._lock = threading.Lock()
        self._current: _LocalWorker | None = None
        self._retired: list[_LocalWorker] = []
        self._broken: str | None = None  # why workers are given up on, for this runner's life
        self._in_flight = InFlight()
        if worker:
            with self._lock:
                self._current = self._start_worker()

    def command(self, spec: TrialSpec) -> list[str]:
        return [self.python, *self._harness_arguments(spec)]

    def _harness_arguments(self, spec: TrialSpec) -> list[str]:
        return harness_arguments(
            spec,
            script=str(spec.script.resolve()),
            trial_dir=str(spec.trial_dir.resolve()),
            source_dir=str(spec.source_dir.resolve()) if spec.source_dir else None,
        )

    def environment(self, spec: TrialSpec) -> dict[str, str]:
        return child_environment(os.environ, spec.env)

    def cancel(self, spec: TrialSpec) -> None:
        self._in_flight.cancel(spec.trial_dir.resolve())

    def run(self, spec: TrialSpec) -> TrialResult:
        trial_dir = spec.trial_dir.resolve()
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / METRICS_FILE).unlink(missing_ok=True)  # never read a previous attempt's
        log_path = trial_dir / LOG_FILE
        worker = self._worker_for_trial() if self.worker else None
        if worker is None and self.worker and self._broken:
            with log_path.open("ab") as log:
                log_note(log, f"no warm worker ({self._broken}): a fresh process")
        if worker is not None:
            return self._run_in_worker(worker, spec, trial_dir, log_path)
        return self._run_in_subprocess(spec, trial_dir, log_path)

    # -- a fresh process per trial -------------------------------------------------------------
    def _run_in_subprocess(self, spec: TrialSpec, trial_dir: Path, log_path: Path) -> TrialResult:
        command = self.command(spec)
        started = time.monotonic()
        with log_path.open("ab") as log:
            log_note(log, f"start {shlex.join(command)}")
            try:
                process = subprocess.Popen(
                    command,
                    cwd=trial_dir,
                    env=self.environment(spec),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as error:
                log_note(log, f"cannot start: {error}")
                return not_started(
                    spec, started, log_path, f"cannot start {self.python!r}: {error}"
                )
            self._in_flight.started(trial_dir, lambda: kill_group(process.pid))
            timed_out = _supervise(process, log, self.on_line, spec.timeout)
            cancelled = self._in_flight.ended(trial_dir)
            seconds = time.monotonic() - started
            ending = "cancelled" if cancelled else "timed out" if timed_out else None
            log_note(
                log, f"end: {ending or describe_exit(process.returncode)} after {seconds:.1f} s"
            )
        return read_result(
            spec,
            returncode=process.returncode,
            seconds=seconds,
            log_path=log_path,
            timed_out=timed_out,
            cancelled=cancelled,
        )

    # -- a fork of the warm worker -------------------------------------------------------------
    def _run_in_worker(
        self, worker: _LocalWorker, spec: TrialSpec, trial_dir: Path, log_path: Path
    ) -> TrialResult:
        started = time.monotonic()
        deadline = None if spec.timeout is None else started + spec.timeout
        key = trial_key(trial_dir)
        arguments = self._harness_arguments(spec)[2:]  # after `-m mutator.training.harness`
        with log_path.open("ab") as log:
            log_note(log, f"start in worker {worker.process.pid}: {shlex.join(arguments)}")
        worker.client.submit(key, arguments, trial_dir, self.environment(spec), log_path)
        self._in_flight.started(trial_dir, lambda: worker.client.cancel(key))
        end = worker.client.wait(key, deadline)
        cancelled = self._in_flight.ended(trial_dir)
        seconds = time.monotonic() - started
        with log_path.open("ab") as log:
            if end.worker_died:
                ending = f"its worker {describe_exit(worker.process.poll())}"
            elif cancelled:
                ending = "cancelled"
            else:
                ending = "timed out" if end.timed_out else describe_exit(end.returncode)
            log_note(log, f"end: {ending} after {seconds:.1f} s")
        result = read_result(
            spec,
            returncode=end.returncode,
            seconds=seconds,
            log_path=log_path,
            timed_out=end.timed_out and not cancelled,
            cancelled=cancelled,
        )
        if end.worker_died and result.status == "crashed":
            result.error = f"the warm worker died during the trial; {result.error}"
        return result

    def _worker_for_trial(self) -> _LocalWorker | None:
        """The worker to fork this trial from: replaced when dead or when it served `recycle`."""
        with self._lock:
            if self._broken is not None:
                return None
            current = self._current
            if current is not None and not current.alive():
                if not current.client.ready():
                    self._broken = f"the worker {describe_exit(current.process.poll())} on start"
                    current.discard()
                    self._current = None
                    return None
                current.discard()
                current = None
            if current is not None and current.client.submitted >= self.recycle:
                current.client.stop()
                self._retired.append(current)
                current = None
            if current is None:
                current = self._start_worker()
            self._current = current
            self._retired = [old for old in self._retired if old.alive() or old.discard()]
            return current

    def _start_worker(self) -> _LocalWorker:
        spool = Path(tempfile.mkdtemp(prefix="mutator-worker-"))
        command = [
            self.python,
            "-m",
            "mutator.training.worker",
            "--spool",
            str(spool),
            "--preload",
            ",".join(self.preload),
        ]
        with (spool / "worker.log").open("ab") as worker_log:
            process = subprocess.Popen(
                command,
                env=child_environment(os.environ, {}),
                stdin=subprocess.DEVNULL,
                stdout=worker_log,
                stderr=worker_log,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return _LocalWorker(process, spool)

    def close(self) -> None:
        super().close()
        with self._lock:
            for worker in [*self._retired, *([self._current] if self._current else [])]:
                worker.client.stop()
                worker.discard()  # idle: killed, not waited for (TF's teardown takes ~1.4 s)
            self._current, self._retired = None, []


class _LocalWorker:
    """A worker process this runner started, and its spool folder."""

    def __init__(self, process: subprocess.Popen[bytes], spool: Path) -> None:
        self.process = process
        self.spool = spool
        self.client = WorkerClient(spool, self.alive)

    def alive(self) -> bool:
        return self.process.poll() is None

    def discard(self, wait: float = 0.0) -> bool:
        """End the process (after `wait` s for it to stop by itself) and remove its spool."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=wait)
        kill_group(self.process.pid)
        self.process.wait()
        shutil.rmtree(self.spool, ignore_errors=True)
        return False


def child_environment(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The trial's environment: ours, quiet defaults, the spec's, and what the harness needs."""
    env = {**QUIET_DEFAULTS, **base, **extra}
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the log as they are printed
    paths = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *paths])
    return env


def _supervise(
    process: subprocess.Popen[bytes],
    log: IO[bytes],
    on_line: LineCallback | None,
    timeout: float | None,
) -> bool:
    """Wait for the harness; True if it ran out of time. Its process group is dead on return."""
    assert process.stdout is not None
    reader = threading.Thread(
        target=_pump, args=(process.stdout, log, on_line), name="trial-log", daemon=True
    )
    reader.start()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # On timeout, on Ctrl-C here, and after a normal exit (leftover children of the script).
        kill_group(process.pid)
        process.wait()
        reader.join(READER_GRACE)
    return timed_out


def kill_group(pgid: int) -> None:
    """SIGKILL a process group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _pump(stream: IO[bytes], log: IO[bytes], on_line: LineCallback | None) -> None:
    """Copy the child's output to the log as it comes, and to `on_line` while it behaves."""
    try:
        for raw in iter(stream.readline, b""):
            log.write(raw)
            log.flush()
            if on_line is not None:
                try:
                    on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
                except Exception as error:  # noqa: BLE001 - progress display must not stop a trial
                    on_line = None
                    log_note(log, f"on_line callback failed, no more progress: {error!r}")
    except (OSError, ValueError):
        pass  # the log was closed under us after READER_GRACE; nothing left to save
    finally:
        stream.close()


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL it when the tuner dies.

    The trial runs in its own session (so a timeout can kill its whole group); without this, a
    `kill -9` of `mutate tune` would leave it training, and the resumed run would train the same
    trial folder a second time, at once.
    """
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
