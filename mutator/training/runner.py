"""What every runner shares: a trial to run, its result, and how a trial dir becomes a result.

A runner (a local process or warm worker, a Docker container) only has to start
`python -m mutator.training.harness` for a `TrialSpec` somewhere, stream its output to
`log.txt`, enforce the timeout, and hand the trial dir and exit code to `read_result`. The
harness decides everything about metrics; runners add only what the harness cannot know about
itself: that it timed out, or died without a word.

The search hands a runner several trials at once (`submit`, which returns a Future) and waits
for them together; `run` is one trial to its end. `ConcurrentRunner` gives a runner whose `run`
blocks `submit` for free, on threads that only wait: on a process, a container, or the stream of
a Ray task (`mutator.cluster`), whose scheduler decides where the trial trains.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, Protocol, runtime_checkable

TrialStatus = Literal[
    "ok", "failed", "nan", "no_metric", "over_budget", "timeout", "crashed", "cancelled"
]
# What the harness judges (metrics.json's status): a trial that ended so is understood, never a
# crash to run again. "over_budget": its model broke the trial's size or pace budget (budget).
HARNESS_STATUSES = frozenset({"ok", "failed", "nan", "no_metric", "over_budget"})
METRICS_FILE = "metrics.json"
LOG_FILE = "log.txt"
LOG_NOTE_PREFIX = "== mutator"  # the runner's own lines in log.txt, not the trial's

LineCallback = Callable[[str], None]


@dataclass(frozen=True)
class TrialSpec:
    """One training run: the trial's copy of the script, and how to judge it.

    `trial_dir` is the working directory and where metrics.json, log.txt, model.keras and the
    checkpoints go; running the same spec again resumes from those checkpoints. `source_dir` is
    the original script's folder, put on the import path so helper modules beside it import.
    """

    script: Path
    trial_dir: Path
    metric: str | None = None
    mode: str = "auto"
    metric_regex: str | None = None
    timeout: float | None = None
    script_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    source_dir: Path | None = None
    backup: bool = True
    # Folders the trial only reads (the parents' weights, for a warm start): a container
    # mounts them read-only, at the same path.
    read_only_dirs: tuple[Path, ...] = ()
    # How many trials of its round train at once (this one included): a runner that sizes each
    # trial's resources (Ray) gives it that share of them.
    side_by_side: int = 1


@dataclass
class TrialResult:
    """How a trial ended. `value` is None unless `status` is "ok": only then is it comparable.

    `metrics` is the harness's metrics.json as written (None when it wrote none; it still holds
    the value of a failed script that got as far as evaluating); `error` is one line a user can
    act on. Not frozen: a caller retrying a crashed trial adds up `seconds`.
    """

    status: TrialStatus
    value: float | None
    metric: str | None
    mode: str
    seconds: float
    returncode: int | None
    log_path: Path | None
    metrics: dict[str, Any] | None = None
    error: str | None = None
    restarts: int = 0  # times something outside the search restarted it (the Docker monitor)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@runtime_checkable
class Runner(Protocol):
    """Runs trials to their end (or their timeout) and reports them; never raises for a trial.

    `submit` starts one and returns at once; several may be in flight. `close` ends what the
    runner keeps between trials (a warm worker, a container) once nothing is in flight.
    """

    name: str

    def run(self, spec: TrialSpec) -> TrialResult: ...

    def submit(self, spec: TrialSpec) -> Future[TrialResult]: ...

    def cancel(self, spec: TrialSpec) -> None: ...

    def close(self) -> None: ...


class InFlight:
    """Which trials are running, how to stop each, and which were cancelled: for `cancel`.

    A round may be decided while a trial is still being shipped or forked, before the runner
    knows how to stop it: a cancel then is remembered, and the trial is stopped as it starts.
    Every runner (a process, the warm worker, a container, a Ray task) keeps this the same way.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: dict[Path, Callable[[], None]] = {}
        self._cancelled: set[Path] = set()

    def cancel(self, trial_dir: Path) -> None:
        with self._lock:
            self._cancelled.add(trial_dir)
            stop = self._stops.get(trial_dir)
        if stop is not None:
            stop()

    def started(self, trial_dir: Path, stop: Callable[[], None]) -> None:
        """The trial runs and `stop` stops it; called at once if it was cancelled already."""
        with self._lock:
            self._stops[trial_dir] = stop
            cancelled = trial_dir in self._cancelled
        if cancelled:
            stop()

    def ended(self, trial_dir: Path) -> bool:
        """Forget the trial; True when it was cancelled."""
        with self._lock:
            self._stops.pop(trial_dir, None)
            if trial_dir in self._cancelled:
                self._cancelled.discard(trial_dir)
                return True
        return False


class ConcurrentRunner:
    """`submit` and `close` for a runner whose `run` blocks: each submitted trial on a thread.

    The threads only wait (on a process, a worker or a container), so they cost nothing; how
    many trials really train at once is the search's choice (`--parallel`).
    """

    name = "concurrent"
    _executor: ThreadPoolExecutor | None = None
    _executor_lock = threading.Lock()

    def run(self, spec: TrialSpec) -> TrialResult:
        raise NotImplementedError

    def submit(self, spec: TrialSpec) -> Future[TrialResult]:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(thread_name_prefix=f"{self.name}-trial")
        return self._executor.submit(self.run, spec)

    def cancel(self, spec: TrialSpec) -> None:
        """Stop a submitted trial; its Future then holds a "cancelled" result. Runners that can
        stop a trial override this; by default the trial runs to its end."""

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def harness_arguments(
    spec: TrialSpec, *, script: str, trial_dir: str, source_dir: str | None = None
) -> list[str]:
    """The arguments after `python`, with paths as the harness will see them (host or container)."""
    arguments = ["-m", "mutator.training.harness", script, "--trial-dir", trial_dir, "--mode", spec.mode]
    if spec.metric is not None:
        arguments += ["--metric", spec.metric]
    if spec.metric_regex is not None:
        arguments += ["--metric-regex", spec.metric_regex]
    if not spec.backup:
        arguments.append("--no-backup")
    if source_dir is not None:
        arguments += ["--source-dir", source_dir]
    return [*arguments, "--", *spec.script_args]


def log_note(log: IO[bytes], text: str) -> None:
    """A line of the runner's own in the trial's log.txt, marked so it is never read as the
    trial's output (`last_log_line` skips it)."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    log.write(f"{LOG_NOTE_PREFIX} {stamp}: {text}\n".encode())
    log.flush()


def describe_exit(returncode: int | None) -> str:
    """An exit code in words: signals by name, and 128+N as the signal a container died of."""
    if returncode is None:
        return "did not exit"
    if returncode < 0:
        return f"was killed by {_signal_name(-returncode)}"
    if returncode > 128 and returncode - 128 < signal.NSIG:
        name = _signal_name(returncode - 128)
        hint = " (out of memory?)" if returncode == 137 else ""
        return f"exited with code {returncode} ({name}){hint}"
    return f"exited with code {returncode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def last_log_line(log_path: Path | None, limit: int = 200) -> str | None:
    """The trial's last non-empty line in the log, the likeliest explanation of a crash."""
    if log_path is None:
        return None
    try:
        with log_path.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 8192))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [
        line.strip()
        for line in tail.replace("\r", "\n").splitlines()
        if line.strip() and not line.startswith(LOG_NOTE_PREFIX)
    ]
    return lines[-1][:limit] if lines else None


def not_started(spec: TrialSpec, started: float, log_path: Path | None, error: str) -> TrialResult:
    """A trial whose process, container or task could not even be started: a crash, so that
    the search's retries and its ledger treat it as any other crash."""
    return TrialResult(
        "crashed",
        None,
        spec.metric,
        spec.mode,
        time.monotonic() - started,
        None,
        log_path,
        error=error,
    )


def read_result(
    spec: TrialSpec,
    *,
    returncode: int | None,
    seconds: float,
    log_path: Path | None,
    timed_out: bool = False,
    cancelled: bool = False,
) -> TrialResult:
    """The result of a finished harness process, from its trial dir and exit code.

    The runner must have removed any metrics.json before starting, so one found here is this
    run's. A process that died without one (a signal, an import error, out of memory) is
    "crashed"; a timeout is "timeout" whatever the harness managed to write.
    """
    metrics = _load_metrics(spec.trial_dir / METRICS_FILE)
    metric = (metrics or {}).get("metric", spec.metric)
    mode = (metrics or {}).get("mode", spec.mode)
    common = {
        "seconds": seconds,
        "returncode": returncode,
        "log_path": log_path,
        "metrics": metrics,
    }
    if cancelled:
        error = "cancelled: its round was decided without it (the target was reached)"
        return TrialResult("cancelled", None, metric, mode, error=error, **common)
    if timed_out:
        error = f"timed out after {spec.timeout:g} s; the trial's processes were killed"
        return TrialResult("timeout", None, metric, mode, error=error, **common)
    if metrics is None or metrics.get("status") not in HARNESS_STATUSES:
        why = (
            "without writing metrics.json" if metrics is None else "with an unreadable metrics.json"
        )
        error = f"the harness {describe_exit(returncode)} {why}"
        if (line := last_log_line(log_path)) is not None:
            error += f"; last log line: {line}"
        return TrialResult("crashed", None, metric, mode, error=error, **common)
    value = metrics.get("value")
    value = float(value) if isinstance(value, int | float) and metrics["status"] == "ok" else None
    return TrialResult(metrics["status"], value, metric, mode, error=metrics.get("error"), **common)


def _load_metrics(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
