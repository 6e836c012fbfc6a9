"""The runner's side of a warm worker (`mutator.training.worker`): hand it trials, follow them.

`WorkerClient` speaks the spool-folder protocol and nothing else, so the same class drives a
worker this machine started (`LocalRunner`) and one serving trials inside a container (the Docker
runner): the caller says how to tell whether the worker is still alive. A trial is a request
file; its end is the worker's exit file; a timeout is a cancel file, after which the worker kills
the trial's process group and reports it. A worker that dies takes its trials with it (they are
forked from it and die with it); the caller sees `died` and starts another.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mutator.training import worker as protocol
from mutator.training.trialio import write_json_atomically

POLL_SECONDS = 0.02
CANCEL_GRACE = 15.0  # seconds for the worker to report a cancelled trial before it counts as gone


@dataclass(frozen=True)
class TrialEnd:
    """How a trial handed to a worker ended: its exit code, or that it timed out or lost its worker."""

    returncode: int | None
    timed_out: bool = False
    worker_died: bool = False


def trial_key(trial_dir: Path) -> str:
    """A name for the trial in the spool: stable for one trial dir, unique across runs."""
    resolved = str(trial_dir.resolve())
    return f"{trial_dir.name}-{hashlib.sha256(resolved.encode()).hexdigest()[:10]}"


class WorkerClient:
    """One worker's spool. `alive()` says whether the worker process (or container) still runs."""

    def __init__(self, spool: Path, alive: Callable[[], bool]) -> None:
        self.spool = spool
        self.alive = alive
        self.submitted = 0

    def ready(self) -> bool:
        return (self.spool / protocol.READY_FILE).exists()

    def loaded(self) -> dict[str, str]:
        """What the worker imported ahead ({module: "ok" | error}), once it is ready."""
        try:
            return json.loads((self.spool / protocol.READY_FILE).read_text("utf-8"))["loaded"]
        except (OSError, ValueError, KeyError):
            return {}

    def submit(
        self,
        key: str,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        log: Path,
    ) -> None:
        """Hand a trial to the worker; an earlier attempt's exit or cancel file is cleared first.

        A trial this worker is still running (a tuner killed and run again, whose container
        worker went on) is not submitted twice: the caller simply waits for it.
        """
        if self.pending(key) and self.started(key):
            return
        for suffix in (protocol.EXIT, protocol.CANCEL):
            (self.spool / f"{key}{suffix}").unlink(missing_ok=True)
        request = {"argv": list(argv), "cwd": str(cwd), "env": dict(env), "log": str(log)}
        write_json_atomically(self.spool / f"{key}{protocol.REQUEST}", request)
        self.submitted += 1

    def started(self, key: str) -> bool:
        """The worker has forked the trial (and it has not ended)."""
        return (self.spool / f"{key}{protocol.STARTED}").exists()

    def pending(self, key: str) -> bool:
        """A request for `key` is in the spool and has not ended (a worker restarted resumes it)."""
        spool = self.spool
        return (spool / f"{key}{protocol.REQUEST}").exists() and not (
            spool / f"{key}{protocol.EXIT}"
        ).exists()

    def wait(self, key: str, deadline: float | None) -> TrialEnd:
        """Follow the trial to its end, cancelling it at `deadline` (time.monotonic())."""
        cancelled_at: float | None = None
        while True:
            end = self._exit_code(key)
            if end is not None:
                self._forget(key)
                return TrialEnd(end, timed_out=cancelled_at is not None)
            if not self.alive():
                self._forget(key)
                return TrialEnd(None, worker_died=True)
            now = time.monotonic()
            if cancelled_at is None and deadline is not None and now >= deadline:
                (self.spool / f"{key}{protocol.CANCEL}").touch()
                cancelled_at = now
            elif cancelled_at is not None and now - cancelled_at > CANCEL_GRACE:
                self._forget(key)
                return TrialEnd(None, timed_out=True)
            time.sleep(POLL_SECONDS)

    def cancel(self, key: str) -> None:
        """Ask the worker to kill a trial now (`wait` then reports it as timed out)."""
        with contextlib.suppress(OSError):
            (self.spool / f"{key}{protocol.CANCEL}").touch()

    def stop(self) -> None:
        """Ask the worker to exit once its running trials have ended."""
        with contextlib.suppress(OSError):
            (self.spool / protocol.STOP_FILE).touch()

    def _exit_code(self, key: str) -> int | None:
        try:
            data = json.loads((self.spool / f"{key}{protocol.EXIT}").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        code = data.get("returncode")
        return code if isinstance(code, int) else -1

    def _forget(self, key: str) -> None:
        for suffix in (protocol.REQUEST, protocol.EXIT, protocol.CANCEL, protocol.STARTED):
            (self.spool / f"{key}{suffix}").unlink(missing_ok=True)
