"""Deciding a round: which trial is kept, and the ledger record of every trial in it.

A round's trials were all trained on the same best. The best of the candidates that beat it by
`min_improvement` is accepted; a candidate that improved but lost is recorded as `beaten_by`
the winner (it may be tried again on a later best); a pruned one is never accepted, nor one
over the size and pace budget (status "over_budget", no value: reverted and refused like a
failed trial); a confirm that reached the target decides the round on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mutator.engine.candidate import Candidate
from mutator.search import noise
from mutator.search.config import TuneSettings
from mutator.search.ledger import TrialRecord, sha256
from mutator.search.rounds import FinishedTrial
from mutator.search.state import Recheck, SearchState, improves, reached, runs_key
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
    seed_offset: int = 0  # noise and recheck trials: every seed the script sets moved by this
    recheck: Recheck | None = None  # a recheck: the change's first run
    replay: TrialRecord | None = None  # a recheck: the first run's record (its change)

    @property
    def address(self) -> dict:
        if self.replay is not None:
            return self.replay.address
        if self.candidate is None:
            return {"rule": None, "site": None, "params": {}}
        return self.candidate.address()

    @property
    def judged(self) -> bool:
        """A change whose gain decides whether it is kept: a candidate, or its recheck."""
        return self.kind in ("candidate", "recheck")

    @property
    def also(self) -> list[dict] | None:
        """The ledger's record of a joint change's other parts, each with its step."""
        if self.replay is not None:
            return self.replay.also
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
    outcomes: Sequence[FinishedTrial],
    starts: Sequence[str],
    round_number: int,
    settings: TuneSettings,
) -> list[TrialRecord]:
    """The round's records: the best candidate that beats the best by the margin (and, with
    noise measured, clears its band) is accepted, the others reverted; the best of those inside
    the band is marked for a recheck; a confirm that reached the target leaves every candidate
    reverted."""
    margin = settings.goal.min_improvement
    values = [o.result.value if o.result.status == "ok" else None for o in outcomes]
    pruned = [(o.result.metrics or {}).get("pruned") for o in outcomes]
    best = _honest_best(state, planned, values)
    sign = 1 if state.mode == "max" else -1
    judged = [_judged_value(item, values[i]) for i, item in enumerate(planned)]
    stopped = [bool((o.result.metrics or {}).get("past_peak")) for o in outcomes]
    band = _band(state, planned, values, stopped, settings)
    verdicts = [
        noise.verdict(
            _gain(v, best, sign),
            band,
            margin,
            rechecked=item.kind == "recheck",
            # a recheck's own run is a from-scratch run of the change: at the target, it is
            # what a cold candidate at the target is (the mean becomes the best's value)
            reaches_target=reached(values[i], settings.goal.target, state.mode)
            or reached(v, settings.goal.target, state.mode),
        )
        if item.judged and not pruned[i]  # a trial stopped as hopeless is never accepted
        else None
        for i, (item, v) in enumerate(zip(planned, judged, strict=True))
    ]
    if state.best_stopped:
        # the best's value is not its script's (stopped past its peak): a change that reaches
        # the target from scratch is at the user's bar, whatever it gains on that value
        verdicts = [
            noise.ACCEPT
            if verdict is not None
            and _start_of(outcomes[i].result).get("mode") != "warm"
            and reached(values[i], settings.goal.target, state.mode)
            else verdict
            for i, verdict in enumerate(verdicts)
        ]
    improving = [i for i, verdict in enumerate(verdicts) if verdict == noise.ACCEPT]
    winner = max(improving, key=lambda i: (sign * judged[i], -i)) if improving else None
    inside = [i for i, verdict in enumerate(verdicts) if verdict == noise.RECHECK]
    recheck = (
        max(inside, key=lambda i: (sign * judged[i], -i)) if inside and winner is None else None
    )
    beaten = [
        i
        for i, item in enumerate(planned)
        if item.judged and not pruned[i] and improves(judged[i], best, state.mode, margin)
    ]
    confirmed = next(
        (
            values[i]
            for i, item in enumerate(planned)
            if item.kind == "confirm" and reached(values[i], settings.goal.target, state.mode)
        ),
        None,
    )  # a from-scratch value that reached the target
    confirmed_target = confirmed is not None
    if confirmed_target:
        winner, beaten, recheck = None, [], None  # the target is reached: nothing replaces it
    records = []
    for index, (item, outcome) in enumerate(zip(planned, outcomes, strict=True)):
        result, value = outcome.result, values[index]
        decision = "accepted" if index == winner else "rejected" if item.judged else item.kind
        if decision in ("baseline", "confirm"):
            best_after = value
        elif decision == "noise":
            best_after = best
        elif winner is not None:
            best_after = judged[winner]
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
                history=last_history(result),
                start="warm" if start.get("mode") == "warm" else "cold",
                start_reason=reason or item.cold_reason,
                round=round_number,
                diagnosis=item.diagnosis,
                step=item.step,
                also=item.also,
                pruned=pruned[index] or None,
                past_peak=(result.metrics or {}).get("past_peak") or None,
                at_target=(result.metrics or {}).get("at_target") or None,
                beaten_by=(
                    planned[winner].id
                    if winner is not None and index in beaten and index != winner
                    else None
                ),
                seed_offset=item.seed_offset,
                examples=_examples(result),
                parameters=measured(result, "parameters", int),
                seconds_per_epoch=measured(result, "seconds_per_epoch", float),
                noise=_noise_note(
                    item, verdicts[index], judged[index], best, sign, band, index == recheck
                ),
            )
        )
    return records


def _examples(result: TrialResult) -> int | None:
    """How many examples the trial's metric was measured on: evaluate's, unless the metric is
    a validation figure (`val_*`), whose data the harness does not count."""
    count = (result.metrics or {}).get("evaluated_examples")
    if not isinstance(count, int) or (result.metric or "").startswith("val_"):
        return None
    return count


def measured(result: TrialResult, key: str, kind: type) -> int | float | None:
    """The model's size or pace from the trial's metrics.json, when the harness measured it
    (the climb's records and slim's read it so)."""
    value = (result.metrics or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)


def _judged_value(item: Planned, value: float | None) -> float | None:
    """The value a change is judged by: a recheck's is the mean of its runs from scratch."""
    if item.kind != "recheck" or value is None or item.recheck is None:
        return value
    if not item.recheck.from_scratch:
        return value  # the first run was a warm estimate: the recheck alone trained as written
    return noise.mean([item.recheck.value, value])


def _band(
    state: SearchState,
    planned: Sequence[Planned],
    values: Sequence[float | None],
    stopped: Sequence[bool],
    settings: TuneSettings,
) -> noise.NoiseBand | None:
    """The noise band the round is judged by, with this round's own noise runs counted
    (`stopped`: each trial's run was stopped past its peak)."""
    if settings.noise.runs == 0:
        return None
    runs = {sha: dict(by_offset) for sha, by_offset in state.runs.items()}
    for item, value, past_peak in zip(planned, values, stopped, strict=True):
        if item.kind not in ("noise", "recheck", "baseline") or value is None:
            continue
        sha = item.replay.sha256 if item.replay is not None else sha256(item.source)
        runs.setdefault(runs_key(sha, past_peak), {})[item.seed_offset] = value
    return state.noise_band(settings.noise.multiple, runs)


def _noise_note(
    item: Planned,
    verdict: str | None,
    value: float | None,
    best: float | None,
    sign: int,
    band: noise.NoiseBand | None,
    rechecked_next: bool,
) -> dict | None:
    """What the ledger says of a change judged against the noise band, and why."""
    if not item.judged or band is None or verdict is None or value is None or best is None:
        return None
    rechecked = item.kind == "recheck"
    gain = sign * (value - best)
    threshold = band.band(2) if rechecked else band.at_once()
    if verdict == noise.ACCEPT and gain <= threshold:
        why = "inside the noise band, but at the target: a from-scratch run decides"
    elif verdict == noise.ACCEPT:
        why = "a gain beyond the noise band"
    elif rechecked_next:
        why = "inside the noise band: trained again with another seed next round"
    elif verdict == noise.RECHECK:
        why = "inside the noise band (not rechecked: another change of the round was)"
    elif gain > 0 and rechecked:
        why = "inside the noise band after a recheck: refused"
    else:
        why = "no gain beyond min_improvement"
    note = {
        "gain": round(gain, 6),
        "band": round(threshold, 6),
        "sd": round(band.sd, 6),
        "df": band.df,
        "verdict": "recheck"
        if rechecked_next
        else "inside"
        if verdict == noise.RECHECK
        else verdict,
        "why": why,
        # a gain, but not one that clears the band: a near miss, which a joined change may
        # add up with others (`state.NearMiss`)
        "near": verdict == noise.RECHECK or (verdict == noise.REFUSE and gain > 0 and rechecked),
    }
    if item.kind == "recheck" and item.recheck is not None:
        note["rechecked"] = item.recheck.trial  # the first run; the value judged is the mean
        note["first"] = item.recheck.value if item.recheck.from_scratch else None
    return note


def _gain(value: float | None, best: float | None, sign: int) -> float | None:
    if value is None:
        return None
    return math.inf if best is None else sign * (value - best)


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


def last_history(result: TrialResult) -> dict[str, list[float]]:
    """The epoch logs of the trial's last fit: what a record keeps of its curves."""
    fits = (result.metrics or {}).get("history") or []
    return dict(fits[-1].get("epochs") or {}) if fits else {}


def now() -> str:
    """A ledger time stamp, to the millisecond: how long a search took to reach its target is
    read from its ledger (bench/search_runs.py), and trials take a second or two."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")
