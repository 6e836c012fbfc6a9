"""What `mutate tune` shows while it works: a line per trial, coloured on a terminal.

Jenkins and pipes get plain lines (one per event, flushed), a terminal gets rich colours and a
spinner while a trial trains.
"""

from __future__ import annotations

import sys

from mutator.search.ledger import TrialRecord
from mutator.training import at_target, peak

_MARK = {
    "baseline": "=",
    "accepted": "+",
    "rejected": "-",
    "confirm": "=",
    "noise": "~",
    "final": "~",
    # mutate slim's: at the target and smaller (its confirm next), short of it, or its confirm
    # short of it
    "reached": ">",
    "missed": "-",
    "refused": "-",
}


def describe(record: TrialRecord) -> str:
    value = f"{record.value:.4f}" if record.value is not None else record.status
    resumed = f", resumed at epoch {record.resumed_from_epoch}" if record.resumed_from_epoch else ""
    warm = ", warm start: an estimate" if record.start == "warm" else ""
    beaten = f", beaten by trial {record.beaten_by}" if record.beaten_by else ""
    if record.pruned:
        beaten += f", pruned after {record.pruned['epoch']} epoch(s)"
    if record.past_peak:
        beaten += f", {peak.line(record.past_peak)}"
    if record.at_target:
        beaten += f", {at_target.line(record.at_target)}: its script keeps those epochs"
    restarts = f", {record.restarts} restart(s)" if record.restarts else ""
    if record.noise:
        beaten += f", {against_noise(record.noise)}"
    best = f"best {record.best_after:.4f}" if record.best_after is not None else "no best yet"
    return (
        f"trial {record.id} {_MARK.get(record.decision, '?')} {record.decision}: {value} "
        f"({best}; {record.seconds:.1f}s{warm}{beaten}{resumed}{restarts})"
    )


def against_noise(note: dict) -> str:
    """`gain +0.0521 vs noise band ±0.0300: a gain beyond the noise band`."""
    return f"gain {note['gain']:+.4f} vs noise band ±{note['band']:.4f}: {note['why']}"


class PlainReporter:
    def __init__(self, stream=None) -> None:  # type: ignore[no-untyped-def]
        self.stream = stream or sys.stdout

    def trial_started(self, trial_id: int, description: str, resumed: bool) -> None:
        again = " (resuming)" if resumed else ""
        self._print(f"trial {trial_id}{again}: {description}")

    def trial_finished(self, record: TrialRecord) -> None:
        self._print(describe(record))
        if record.error and record.status != "ok":
            self._print(f"    {record.error}")

    def message(self, text: str) -> None:
        self._print(text)

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class RichReporter:
    """The same events, coloured, with a spinner while trials train."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(highlight=False)
        self._status = None
        self._training: list[int] = []

    def trial_started(self, trial_id: int, description: str, resumed: bool) -> None:
        again = " [dim](resuming)[/dim]" if resumed else ""
        self.console.print(f"[bold]trial {trial_id}[/bold]{again}: {description}")
        self._training.append(trial_id)
        self._show()

    def trial_finished(self, record: TrialRecord) -> None:
        if record.id in self._training:
            self._training.remove(record.id)
        self._show()
        color = {"accepted": "green", "baseline": "blue", "confirm": "blue", "noise": "blue"}.get(
            record.decision, "dim"
        )
        self.console.print(f"[{color}]{describe(record)}[/{color}]")
        if record.error and record.status != "ok":
            self.console.print(f"    [red]{record.error}[/red]")

    def _show(self) -> None:
        if not self._training:
            if self._status is not None:
                self._status.stop()
                self._status = None
            return
        text = "training trial " + ", ".join(str(i) for i in self._training) + "..."
        if self._status is None:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def message(self, text: str) -> None:
        self.console.print(text)


def reporter_for(stream=None):  # type: ignore[no-untyped-def]
    stream = stream or sys.stdout
    return RichReporter() if stream.isatty() else PlainReporter(stream)
