"""Deciding a round: which trial is kept, and the ledger record of every trial in it.

A round's trials were all trained on the same best. The best of the candidates that beat it by
`min_improvement` is accepted; a candidate that improved but lost is recorded as `beaten_by`
the winner (it may be tried again on a later best); a pruned one is never accepted; a confirm
that reached the target decides the round on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mutator.engine.candidate import Candidate
from mutator.search.config import TuneSettings
from mutator.search.ledger import TrialRecord, sha256
from mutator.search.rounds import Outcome as TrialOutcome
from mutator.search.state import SearchState, improves, reached
from mutator.training.runner import TrialResult
from mutator.training.warm_plan import WarmPlan


@dataclass(frozen=True)
class Planned:
    """A trial about to run: what it trains and why."""

    id: int
    kind: str  # baseline | candidate | confirm
    source: str
    description: str
    candidate: Candidate | None = None
    diff: str = ""
    warm: WarmPlan | None = None
    cold_reason: str | None = None
    diagnosis: str | None = None  # what ordered the round's rules
    step: float | None = None  # the rule's (adaptive) factor for this change
    also_steps: tuple[float | None, ...] = ()  # a joint change: the factor of each other part

    @property
    def address(self) -> dict:
        if self.candidate is None:
            return {"rule": None, "site": None, "params": {}}
        return self.candidate.address()

    @property
    def also(self) -> list[dict] | None:
        """The ledger's record of a joint change's other parts, each with its step."""
        if self.candidate is None or not self.candidate.also:
            return None
        steps = self.also_steps or (None,) * len(self.candidate.also)
        return [
            {**part.address(), "step": step}
            for part, step in zip(self.candidate.also, steps, strict=True)
        ]


def decide(
    state: SearchState,
    planned: Sequence[Planned],
    outcomes: Sequence[TrialOutcome],
    starts: Sequence[str],
    round_number: int,
    settings: TuneSettings,
) -> list[TrialRecord]:
    """The round's records: the best candidate that beats the best by the margin is accepted,
    the others reverted (a confirm that reached the target leaves every candidate reverted)."""
    margin = settings.min_improvement
    values = [o.result.value if o.result.status == "ok" else None for o in outcomes]
    pruned = [(o.result.metrics or {}).get("pruned") for o in outcomes]
    best = _honest_best(state, planned, values)
    improving = [
        index
        for index, item in enumerate(planned)
        if item.kind == "candidate"
        and not pruned[index]  # a trial stopped as hopeless is never accepted
        and improves(values[index], best, state.mode, margin)
    ]
    sign = 1 if state.mode == "max" else -1
    winner = max(improving, key=lambda i: (sign * values[i], -i)) if improving else None
    confirmed = next(
        (
            values[i]
            for i, item in enumerate(planned)
            if item.kind == "confirm" and reached(values[i], settings.target, state.mode)
        ),
        None,
    )  # a from-scratch value that reached the target
    confirmed_target = confirmed is not None
    if confirmed_target:
        winner, improving = None, []  # the target is reached: no estimate replaces it
    records = []
    for index, (item, outcome) in enumerate(zip(planned, outcomes, strict=True)):
        result, value = outcome.result, values[index]
        if item.kind != "candidate":
            decision = item.kind
        else:
            decision = "accepted" if index == winner else "rejected"
        if decision in ("baseline", "accepted", "confirm"):
            best_after = value
        elif winner is not None:
            best_after = values[winner]
        elif confirmed_target:
            best_after = confirmed  # the round's confirm is the best now
        else:
            best_after = best
        start = _start_of(result) or _planned_start(item)
        reason = start.get("why") if start.get("mode") == "warm" or item.warm else None
        records.append(
            TrialRecord(
                id=item.id,
                parent=state.best_id,
                rule=item.address["rule"],
                site=item.address["site"],
                params=item.address["params"],
                description=item.description,
                sha256=sha256(item.source),
                diff=item.diff,
                status=result.status,
                value=value,
                decision=decision,
                best_after=best_after,
                seconds=round(result.seconds, 3),
                started=starts[index],
                finished=now(),
                resumed_from_epoch=_resumed_from(result, start),
                restarts=outcome.restarts,
                error=result.error,
                history=_last_history(result),
                start="warm" if start.get("mode") == "warm" else "cold",
                start_reason=reason or item.cold_reason,
                round=round_number,
                diagnosis=item.diagnosis,
                step=item.step,
                also=item.also,
                pruned=pruned[index] or None,
                beaten_by=(
                    planned[winner].id
                    if winner is not None and index in improving and index != winner
                    else None
                ),
            )
        )
    return records


def _honest_best(
    state: SearchState, planned: Sequence[Planned], values: Sequence[float | None]
) -> float | None:
    """What the round's candidates must beat: the best's from-scratch value when a confirm of
    it ran in this very round, else the best's value as known.

    A warm estimate runs high as well as low (0.892 warm, 0.875 from scratch): a candidate that
    beats the estimate but not what the script really reaches has gained nothing.
    """
    for item, value in zip(planned, values, strict=True):
        if item.kind == "confirm" and value is not None:
            return value
    return state.best_value


def _start_of(result: TrialResult) -> dict:
    start = (result.metrics or {}).get("start")
    return start if isinstance(start, dict) else {}


def _planned_start(item: Planned) -> dict:
    """The start a trial was given, for one that never reported its own (cancelled, crashed early).

    Without it the ledger would call a planned-warm trial that was cancelled mid-round `cold`,
    with no reason: a record of something that did not happen.
    """
    if item.warm is None:
        return {"mode": "cold"}  # the record's reason is the plan's cold_reason
    return {
        "mode": "warm",
        "why": f"planned {item.warm.mode} from trial {item.warm.parent_trial}; "
        "it stopped before it reported its start",
    }


def _resumed_from(result: TrialResult, start: dict) -> int:
    """The epoch a killed trial resumed at (not where a warm start began: that is `start`)."""
    fits = (result.metrics or {}).get("history") or []
    resumed = max((fit.get("initial_epoch") or 0 for fit in fits), default=0)
    return 0 if resumed == (start.get("initial_epoch") or 0) else resumed


def _last_history(result: TrialResult) -> dict[str, list[float]]:
    fits = (result.metrics or {}).get("history") or []
    return dict(fits[-1].get("epochs") or {}) if fits else {}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
