"""Training one round: the trials the search decided to run side by side, each to its result.

A round is the unit of the search's bookkeeping. Its trials are submitted to the runner at once
and waited for together; a crashed one is submitted again (resuming from its checkpoint) up to
`retries` times. Nothing of a round reaches the ledger until all its trials are done, so a run
killed mid-round resumes that round: a trial that had finished (its metrics.json is written last,
after the harness has judged it) is read back instead of trained again, and one that had not
resumes from its checkpoint. So a kill loses and repeats nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass

from mutator.training.runner import METRICS_FILE, Runner, TrialResult, TrialSpec, read_result


@dataclass
class FinishedTrial:
    """One trial's result, with what the round did to get it."""

    result: TrialResult
    restarts: int = 0
    collected: bool = False  # finished before a kill: read back, not trained again


def finished_result(spec: TrialSpec) -> TrialResult | None:
    """The result a trial left behind when it ran to its end but was never recorded."""
    path = spec.trial_dir / METRICS_FILE
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or "status" not in metrics:
        return None
    result = read_result(
        spec,
        returncode=0 if metrics.get("status") == "ok" else 1,
        seconds=float(metrics.get("seconds") or 0.0),
        log_path=spec.trial_dir / "log.txt",
    )
    return result


def run_round(
    runner: Runner,
    specs: Sequence[TrialSpec],
    retries: int,
    say: Callable[[str], None] = lambda text: None,
    settles: Callable[[int, TrialResult], bool] = lambda index, result: False,
) -> tuple[list[FinishedTrial], float]:
    """Every spec to its result, in the order given; and the round's wall seconds.

    When `settles(index, result)` is true for a finished trial (a confirm that reached the
    target), the round is decided: the trials still training are cancelled, not waited for.
    """
    started = time.monotonic()
    outcomes: list[FinishedTrial | None] = [None] * len(specs)
    pending: dict[int, Future[TrialResult]] = {}
    restarts = [0] * len(specs)
    for index, spec in enumerate(specs):
        found = finished_result(spec)
        if found is not None:
            outcomes[index] = FinishedTrial(found, collected=True)
        else:
            pending[index] = submit(runner, spec)
    trial_started = {index: time.monotonic() for index in pending}
    while pending:
        wait(list(pending.values()), return_when=FIRST_COMPLETED)
        for index, future in list(pending.items()):
            if not future.done():
                continue
            result = future.result()
            if settles(index, result):
                for other in pending:
                    if other != index and hasattr(runner, "cancel"):
                        runner.cancel(specs[other])
            if result.status == "crashed" and restarts[index] < retries:
                restarts[index] += 1
                say(f"trial crashed ({result.error}); restarting from its checkpoint")
                pending[index] = submit(runner, specs[index])
                continue
            del pending[index]
            result.seconds = time.monotonic() - trial_started[index]
            outcomes[index] = FinishedTrial(result, restarts[index] + result.restarts)
    done = [outcome for outcome in outcomes if outcome is not None]
    wall = max([time.monotonic() - started, *(o.result.seconds for o in done if o.collected)])
    return done, wall


def submit(runner: Runner, spec: TrialSpec) -> Future[TrialResult]:
    """`runner.submit`, or `run` wrapped in a finished Future for a runner that only runs."""
    if hasattr(runner, "submit"):
        return runner.submit(spec)
    future: Future[TrialResult] = Future()
    try:
        future.set_result(runner.run(spec))
    except BaseException as error:  # noqa: BLE001 - delivered through the future, as submit would
        future.set_exception(error)
    return future
