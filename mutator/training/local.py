"""Train a trial on this machine: `python -m mutator.training.harness` in a subprocess of its own.

The child gets its own session (so its own process group): a timeout, or Ctrl-C in `mutate`,
kills the whole group, including anything the training script started. Its stdout and stderr
go, line by line, to `log.txt` in the trial dir (appended: a resumed trial keeps the killed
attempt's log above its own) and to an optional `on_line` callback for progress.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import mutator
from mutator.training.runner import (
    LOG_FILE,
    LOG_NOTE_PREFIX,
    METRICS_FILE,
    LineCallback,
    TrialResult,
    TrialSpec,
    describe_exit,
    harness_arguments,
    read_result,
)

# The folder holding the `mutator` package: on the child's PYTHONPATH, so the harness imports
# even when mutator is not installed into the interpreter that trains (`python=`).
PACKAGE_ROOT = Path(mutator.__file__).resolve().parent.parent

# Defaults the user's environment may override: TensorFlow's C++ chatter off, and no plot window
# that would wait forever for someone to close it.
QUIET_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8"}
READER_GRACE = 5.0  # seconds to drain the log after the process group is gone


class LocalRunner:
    """Runs each trial as a subprocess of `python`, with a timeout and a log.

    `on_line` receives every line the trial prints (without its newline), from a reader thread;
    an exception it raises stops further calls but not the trial.
    """

    name = "local"

    def __init__(self, python: str = sys.executable, on_line: LineCallback | None = None) -> None:
        self.python = python
        self.on_line = on_line

    def command(self, spec: TrialSpec) -> list[str]:
        return [
            self.python,
            *harness_arguments(
                spec,
                script=str(spec.script.resolve()),
                trial_dir=str(spec.trial_dir.resolve()),
                source_dir=str(spec.source_dir.resolve()) if spec.source_dir else None,
            ),
        ]

    def environment(self, spec: TrialSpec) -> dict[str, str]:
        return child_environment(os.environ, spec.env)

    def run(self, spec: TrialSpec) -> TrialResult:
        trial_dir = spec.trial_dir.resolve()
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / METRICS_FILE).unlink(missing_ok=True)  # never read a previous attempt's
        log_path = trial_dir / LOG_FILE
        command = self.command(spec)
        started = time.monotonic()
        with log_path.open("ab") as log:
            _log_note(log, f"start {shlex.join(command)}")
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
                _log_note(log, f"cannot start: {error}")
                return TrialResult(
                    "crashed",
                    None,
                    spec.metric,
                    spec.mode,
                    time.monotonic() - started,
                    None,
                    log_path,
                    error=f"cannot start {self.python!r}: {error}",
                )
            timed_out = _supervise(process, log, self.on_line, spec.timeout)
            seconds = time.monotonic() - started
            ending = "timed out" if timed_out else describe_exit(process.returncode)
            _log_note(log, f"end: {ending} after {seconds:.1f} s")
        return read_result(
            spec,
            returncode=process.returncode,
            seconds=seconds,
            log_path=log_path,
            timed_out=timed_out,
        )


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
                    _log_note(log, f"on_line callback failed, no more progress: {error!r}")
    except (OSError, ValueError):
        pass  # the log was closed under us after READER_GRACE; nothing left to save
    finally:
        stream.close()


def _log_note(log: IO[bytes], text: str) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    log.write(f"{LOG_NOTE_PREFIX} {stamp}: {text}\n".encode())
    log.flush()


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
