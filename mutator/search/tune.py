"""`mutate tune` as a library call: settle the settings, lock the run directory, climb, report."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mutator import api
from mutator.search.config import TuneSettings
from mutator.search.hillclimb import HillClimb, Reporter, SearchOutcome
from mutator.search.ledger import Ledger, final_spread, sha256
from mutator.search.report import write_report
from mutator.search.runners import make_runner
from mutator.search.selection import selection_lines
from mutator.training import peak
from mutator.training.runner import Runner

REASONS = {
    "target": "target reached",
    "max_trials": "trial budget spent",
    "time_budget": "time budget spent",
    "exhausted": "nothing left to try",
}


class SearchTracker(Protocol):
    """Follows a search from outside (MLflow: `mutator.publish.tracking`), after the ledger.

    `watch` is called once the run directory is locked and before any trial trains (it may
    refuse with a MutatorError); it returns the reporter the climb reports to. `finish` comes
    after report.html is written, `abandon` when the search ends in an exception.
    """

    link: str | None  # where the search can be seen (report.html links it)

    def watch(self, ledger: Ledger, reporter: Reporter) -> Reporter: ...
    def finish(self, outcome: SearchOutcome, summary: str) -> None: ...
    def abandon(self, interrupted: bool) -> None: ...


def run_dir_for(script: Path, workdir: Path | None) -> Path:
    """`.mutator/<stem>/` beside the script, or the folder the user named."""
    return workdir if workdir is not None else script.resolve().parent / ".mutator" / script.stem


def tune(
    script: Path,
    settings: TuneSettings,
    reporter: Reporter,
    workdir: Path | None = None,
    fresh: bool = False,
    model_name: str | None = None,
    runner: Runner | None = None,
    tracker: SearchTracker | None = None,
) -> SearchOutcome:
    checked = api.Script.load(script, model_name)  # fail now, not after a baseline has trained
    ledger = Ledger(run_dir_for(script, workdir))
    if fresh and (aside := ledger.move_aside()) is not None:
        reporter.message(f"previous run moved to {aside}")
    own_runner = runner is None
    with ledger.lock():
        runner = runner or make_runner(settings, script)  # a warm worker starts importing now
        try:
            outcome = _search(
                script, checked, ledger, runner, settings, reporter, model_name, tracker
            )
        finally:
            if own_runner:
                runner.close()
    return outcome


def _search(
    script: Path,
    checked: api.Script,
    ledger: Ledger,
    runner: Runner,
    settings: TuneSettings,
    reporter: Reporter,
    model_name: str | None,
    tracker: SearchTracker | None = None,
) -> SearchOutcome:
    ledger.start(
        {
            "script": str(script.resolve()),
            "script_sha256": sha256(checked.text),
            "model": checked.view.name,
            "settings": _jsonable(settings),
        }
    )
    if tracker is not None:
        reporter = tracker.watch(ledger, reporter)
    try:
        outcome = HillClimb(script, ledger, runner, settings, reporter, model_name).run()
    except BaseException as exc:
        if tracker is not None:
            tracker.abandon(interrupted=isinstance(exc, KeyboardInterrupt))
        raise
    summary = summarise(outcome, settings)
    link = tracker.link if tracker is not None else None
    write_report(
        ledger.root,
        script.name,
        outcome.records,
        settings.goal.target,
        summary,
        link,
        outcome.state.mode,
    )
    if tracker is not None:
        tracker.finish(outcome, summary)
    return outcome


def summarise(outcome: SearchOutcome, settings: TuneSettings) -> str:
    baseline, best = outcome.baseline, outcome.best
    before = f"{baseline.value:.4f}" if baseline and baseline.value is not None else "n/a"
    if baseline is not None and baseline.past_peak:
        before += f" ({peak.where(baseline.past_peak)})"
    if baseline is not None and baseline.at_target:  # the script as given, in fewer epochs
        before += f" (epochs cut to {baseline.at_target['epoch']}, where it met the target)"
    after = f"{best.value:.4f}" if best and best.value is not None else "n/a"
    if outcome.state.best_stopped:
        after += " (the script stopped past its peak: not trained to its last epoch)"
    elif not outcome.state.best_confirmed:
        after += " (a warm-start estimate: not retrained from scratch)"
    accepted = sum(1 for r in outcome.records if r.decision == "accepted")
    confirms = sum(1 for r in outcome.records if r.decision == "confirm")
    noise_runs = sum(
        1 for r in outcome.records if r.decision in ("noise", "final") and r.status != "cancelled"
    )
    rechecks = sum(1 for r in outcome.records if r.rechecked)
    measures = sum(1 for r in outcome.records if r.decision in ("noise", "final"))
    trials = len(outcome.records) - confirms - measures - rechecks
    confirmed = f" + {confirms} from-scratch confirm(s)" if confirms else ""
    confirmed += f" + {noise_runs} run(s) with other seeds" if noise_runs else ""
    confirmed += f" + {rechecks} recheck(s)" if rechecks else ""
    target = f" (target {settings.goal.target})" if settings.goal.target is not None else ""
    state = outcome.state
    band = state.noise_band(settings.noise.multiple)
    measured = f"; {band.line()}" if band is not None and settings.noise.runs else ""
    ledger = Ledger(outcome.run_dir)
    trial_dirs = [ledger.trial_dir(r.id) for r in outcome.records]
    best_dir = ledger.trial_dir(best.id) if best is not None else None
    said = "".join(f"\n{line}" for line in selection_lines(trial_dirs, best_dir))
    spread = final_spread(list(outcome.records))
    said += f"\n{spread.line()}" if spread is not None else ""
    return (
        f"{REASONS[outcome.reason]}{target}: {before} -> {after} in {trials} "
        f"trial(s){confirmed}, {accepted} change(s) accepted{measured}{said}"
    )


def _jsonable(settings: TuneSettings) -> dict:
    """By flat key, as the configuration file names them (run.json's readers expect that)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.flat().items()}
