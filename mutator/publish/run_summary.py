"""What a finished (or failed) tuning run amounts to, read from its run directory alone.

Notifications are built from this, not from the live search, so `mutate notify` can run after the
fact, e.g. as a separate Jenkins stage, and says the same thing `mutate tune` would have said.
Nothing here writes: the run directory is only read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mutator.search.ledger import Ledger, TrialRecord, final_best, final_spread, trial_metrics
from mutator.search.selection import selection_lines
from mutator.search.state import reached
from mutator.training.metrics import infer_mode

MAX_DIFF_LINES = 200

# RunSummary.outcome values
REACHED = "reached"
NOT_REACHED = "not_reached"
NO_TARGET = "no_target"
FAILED = "failed"


@dataclass(frozen=True)
class AcceptedChange:
    """One change the search kept: which trial, which rule, what it did, what it scored."""

    trial: int
    rule: str
    description: str
    value: float | None
    # its gain against the measured noise band, when noise was measured: "+0.6472 > ±0.1774"
    against_noise: str | None = None


@dataclass(frozen=True)
class RunSummary:
    """The run in the terms an ML engineer asks about: did it get there, from what, to what, how."""

    script: str  # the script's file name, e.g. train.py
    run_dir: str
    outcome: str  # reached | not_reached | no_target | failed
    headline: str  # "target reached", "target not reached after 20 trials", ...
    metric: str | None
    mode: str  # max | min
    before: float | None  # the baseline's value
    after: float | None  # the best value
    target: float | None
    trials: int
    best_trial: int | None
    seconds: float
    accepted: list[AcceptedChange] = field(default_factory=list)
    diff: str = ""  # original script -> best.py, unified, capped at MAX_DIFF_LINES
    diff_omitted_lines: int = 0
    report: str = ""  # report_url, else the path of report.html
    best_script: str | None = None
    failure: str | None = None  # why a failed run failed
    committed: str | None = None  # `tune --commit`: "mutator/train at 1a2b3c4, pushed to origin"
    selection: list[str] = field(default_factory=list)  # which data it selected on, and notices
    spread: str | None = None  # `final_runs`: the best's mean ± sd over seeds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def change(self) -> str:
        """`0.3278 -> 0.9722`, or `n/a` where a value is missing."""
        return f"{fmt(self.before)} -> {fmt(self.after)}"

    def with_commit(self, branch: str, commit: str, pushed_to: str | None) -> RunSummary:
        """The summary plus where `tune --commit` put best.py, for the people notified."""
        pushed = f", pushed to {pushed_to}" if pushed_to else ""
        return replace(self, committed=f"{branch} at {commit[:7]}{pushed}")


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def summarise_run(run_dir: Path, report_url: str | None = None) -> RunSummary:
    """The summary of the run in `run_dir`; a run with no successful baseline is `failed`."""
    ledger = Ledger(run_dir)
    run = ledger.settings()
    settings: dict[str, Any] = run.get("settings") or {}
    records = ledger.records()
    script = _script_name(run, ledger, records)
    target = settings.get("target")
    report = report_url or _report_location(run_dir)
    common: dict[str, Any] = {
        "script": script,
        "run_dir": str(run_dir),
        "target": target,
        "trials": len(records),
        "seconds": round(sum(r.seconds for r in records), 3),
        "report": report,
    }
    baseline = next((r for r in records if r.decision == "baseline" and r.status == "ok"), None)
    if baseline is None:
        return RunSummary(
            **common,
            outcome=FAILED,
            headline="failed",
            metric=settings.get("metric"),
            mode=infer_mode(settings.get("metric"), _explicit_mode(settings)),
            before=None,
            after=None,
            best_trial=None,
            failure=_failure(records),
        )
    metrics = _trial_metrics(ledger, baseline.id)
    metric = metrics.get("metric") or settings.get("metric")
    mode = _mode(settings, metrics, metric)
    accepted = [r for r in records if r.decision == "accepted"]
    final = final_best(records)  # as search.HillClimb.rebuild decides it
    assert final is not None  # there is a baseline
    best = replace(final.record, value=final.value)
    if reached(best.value, target, mode) and final.confirmed:
        outcome, headline = REACHED, "target reached"
    elif target is None:
        outcome, headline = NO_TARGET, f"no target: best after {_trials(len(records))}"
    else:
        outcome, headline = NOT_REACHED, f"target not reached after {_trials(len(records))}"
    diff, omitted = _whole_diff(ledger, script, records)
    return RunSummary(
        **common,
        outcome=outcome,
        headline=headline,
        metric=metric,
        mode=mode,
        before=baseline.value,
        after=best.value,
        best_trial=best.id,
        accepted=[
            AcceptedChange(
                r.id, r.rules_label or "?", r.description, r.value, _against_noise(r.noise)
            )
            for r in accepted
        ],
        diff=diff,
        diff_omitted_lines=omitted,
        best_script=str(ledger.best_script) if ledger.best_script.exists() else None,
        selection=selection_lines(
            [ledger.trial_dir(r.id) for r in records], ledger.trial_dir(best.id)
        ),
        spread=spread.line() if (spread := final_spread(records)) is not None else None,
    )


def _against_noise(note: dict[str, Any] | None) -> str | None:
    if not note:
        return None
    return f"gain {note['gain']:+.4f} > noise band ±{note['band']:.4f}"


def _trials(count: int) -> str:
    return f"{count} trial" if count == 1 else f"{count} trials"


def _script_name(run: dict[str, Any], ledger: Ledger, records: list[TrialRecord]) -> str:
    if run.get("script"):
        return Path(run["script"]).name
    first = ledger.trial_dir(records[0].id if records else 1)
    scripts = sorted(first.glob("*.py")) if first.is_dir() else []
    return scripts[0].name if scripts else f"{ledger.root.name}.py"


def _report_location(run_dir: Path) -> str:
    report = run_dir.resolve() / "report.html"
    return str(report) if report.exists() else f"{run_dir.resolve()} (no report.html written)"


def _explicit_mode(settings: dict[str, Any]) -> str:
    mode = settings.get("mode")
    return mode if mode in ("max", "min") else "auto"


def _mode(settings: dict[str, Any], metrics: dict[str, Any], metric: str | None) -> str:
    """As the search decided it: the explicit mode, else what the baseline's harness inferred."""
    explicit = _explicit_mode(settings)
    if explicit != "auto":
        return explicit
    if metrics.get("mode") in ("max", "min"):
        return metrics["mode"]
    return infer_mode(metric)


def _trial_metrics(ledger: Ledger, trial_id: int) -> dict[str, Any]:
    return trial_metrics(ledger.trial_dir(trial_id))


def _failure(records: list[TrialRecord]) -> str:
    if not records:
        return "no trials recorded"
    last = next((r for r in records if r.decision == "baseline"), records[-1])
    reason = f" ({last.error})" if last.error else ""
    return f"the baseline did not train: {last.status}{reason}"


def _whole_diff(ledger: Ledger, script: str, records: list[TrialRecord]) -> tuple[str, int]:
    """The original script (the baseline trial's copy) against best.py, capped."""
    lines = ledger.whole_diff(script, records).splitlines(keepends=True)
    kept, omitted = lines[:MAX_DIFF_LINES], max(0, len(lines) - MAX_DIFF_LINES)
    if omitted:
        kept.append(f"... {omitted} more lines\n")
    return "".join(kept), omitted
