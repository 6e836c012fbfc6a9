"""What the search knows, and how one round of the ledger changes it.

`SearchState` is derived entirely from the ledger and the trial folders: `absorb` folds one
round's records into it, and it is the same function for a live run and for the rebuild of a
killed one, so a resumed run makes the very decisions the uninterrupted one would have.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mutator.search import noise, steps
from mutator.search.ledger import TrialRecord, from_scratch, sha256
from mutator.training.warm_plan import RETRAIN, TRANSFER, warm_mode
from rules import warm_mappings

# `SearchState.best_estimate` of a baseline stopped past its peak (`mutator.training.peak`): its
# value is the script's after fewer epochs than it asks, trained cold.
STOPPED = "stopped"
AT_STOPPED = f"@{STOPPED}"  # a stopped run's key in `SearchState.runs`: its sha, then this


def runs_key(sha: str, past_peak: bool) -> str:
    """Where a run's value is kept in `SearchState.runs`: under its script's sha, or, for a
    run stopped past its peak, apart (it measures that script stopped, not as written)."""
    return sha + AT_STOPPED if past_peak else sha


@dataclass
class SearchState:
    """What the search knows, derived entirely from the ledger and the trial folders."""

    best_source: str
    best_id: int | None = None
    best_value: float | None = None
    best_history: dict[str, list[float]] = field(default_factory=dict)
    # None: the best's value comes from training from scratch; else it is an estimate: how
    # its trial started (continue | transfer | retrain: `warm_plan`), or STOPPED.
    best_estimate: str | None = None
    weights_id: int | None = None  # the trial whose model is the best script's, for children
    mode: str = "max"
    refused: set[str] = field(default_factory=set)  # tried, reverted: never again
    beaten: set[str] = field(default_factory=set)  # improved but lost a round: later again
    push_rule: str | None = None  # the rule just accepted: tried again first
    # The rules whose changes were tried on the best since it became the best: the next
    # round orders them behind the untried rules (`HillClimb._next_round`), at any step.
    tried_on_best: set[str] = field(default_factory=set)
    # The rules whose trained change was refused on its value since one of theirs was last
    # accepted (no gain; or one inside the noise band, sent to a recheck), on whichever best:
    # on a new best they wait behind the rules that have not failed yet
    # (`HillClimb._next_round`); a change of theirs that is accepted clears them.
    let_down: set[str] = field(default_factory=set)
    runner_up: RunnerUp | None = None  # the last round's strong second: tried again next
    # The single changes tried on the best whose gain fell inside the noise band (by address
    # key): joined into one change once there are two (`HillClimb._joined`).
    near: dict[str, NearMiss] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)  # adaptive step per rule (steps.py)
    # Noise (mutator.search.noise): from-scratch values by script sha and seed offset, the
    # noise trials run so far, the last seed offset given, and a change whose gain fell inside
    # the band, to be trained again with another seed.
    runs: dict[str, dict[int, float]] = field(default_factory=dict)
    noise_trials: int = 0
    last_offset: int = 0
    recheck: Recheck | None = None
    examples: int | None = None  # how many examples the metric is measured on, when counted
    trials: int = 0
    rounds: int = 0
    seconds: float = 0.0  # wall seconds: each round counts as its longest trial

    @property
    def best_confirmed(self) -> bool:
        """The best's value comes from training its script from scratch."""
        return self.best_estimate is None

    def noise_band(
        self, multiple: float, runs: dict[str, dict[int, float]] | None = None
    ) -> noise.NoiseBand | None:
        """The noise band of the from-scratch runs measured so far (or of `runs`: these with a
        round's own), read at the best's level (`noise.measure`)."""
        runs = self.runs if runs is None else runs
        if not self.best_stopped:  # runs stopped past their peak measure that script alone
            runs = {sha: values for sha, values in runs.items() if not sha.endswith(AT_STOPPED)}
        return noise.measure(runs, multiple, level=self.best_value, examples=self.examples)

    @property
    def best_warm(self) -> bool:
        """The best's value is a warm start's: its curve began where its parent's ended."""
        return self.best_estimate not in (None, STOPPED)

    @property
    def best_stopped(self) -> bool:
        """The best is the script as given, its value read where its fit was stopped past
        its peak: the script trained to its end is still to be measured."""
        return self.best_estimate == STOPPED

    @property
    def best_transferred(self) -> bool:
        """The best's value is a warm estimate from mapped weights (a capacity change, or a
        learning rate or batch retrained), trained for a share of its epochs: the least
        reliable estimate (it ran 0.05 low here), confirmed next."""
        return self.best_estimate in (TRANSFER, RETRAIN)


@dataclass(frozen=True)
class RunnerUp:
    """A change that gained nearly what the round's winner did, and lost only to it.

    Both are evidence; the winner is now in the best script, and the runner-up is the next
    change with a measured gain behind it (filters x8 won, epochs x8 gained 0.55 beside it):
    it comes back in the next round, right after the winner's rule, at the step it was tried
    at, rather than after every untried change.
    """

    rule: str
    key: str  # address_key of its change
    step: float | None  # the factor it was proposed at (TrialRecord.step)


@dataclass(frozen=True)
class NearMiss:
    """A change that gained on the best, but inside the noise band: neither kept nor noise.

    Each of a model's small gains can fall inside the band (a kernel 3 -> 5, more filters, a
    second Conv block: +0.04 each on a band of 0.08, every recheck refused), while together
    they clear it (+0.10 to +0.14). The climb joins them into one change (`HillClimb._joined`),
    which is judged against the band like any other: the sum of noise is still noise.
    """

    rule: str
    key: str  # address_key of its change
    step: float | None  # the factor it was proposed at (its first run's TrialRecord.step)
    gain: float  # over the best; a recheck's is the mean of its runs


# Trials that measure the best rather than search: a from-scratch confirm, a noise run, a final
# run for the spread. None of them counts in the trial budget.
MEASURES = ("confirm", "noise", "final")


@dataclass(frozen=True)
class Recheck:
    """A change whose gain fell inside the noise band: its trial, trained again with another
    seed in the next round, counts by the mean of its two runs."""

    trial: int  # the first run's trial id (its folder holds the script)
    value: float  # the first run's metric
    from_scratch: bool  # the first run trained cold: it joins the mean


# A beaten change is a runner-up when it gained at least this share of the winner's gain.
RUNNER_UP_SHARE = 0.5


@dataclass(frozen=True)
class SearchOutcome:
    reason: str  # target | max_trials | time_budget | exhausted
    state: SearchState
    records: list[TrialRecord]
    run_dir: Path

    @property
    def reached(self) -> bool:
        return self.reason == "target"

    @property
    def baseline(self) -> TrialRecord | None:
        return next(
            (r for r in self.records if r.decision == "baseline" and r.status == "ok"), None
        )

    @property
    def best(self) -> TrialRecord | None:
        """The best trial, carrying its from-scratch value when it was confirmed."""
        best = next((r for r in self.records if r.id == self.state.best_id), None)
        if best is None or best.value == self.state.best_value:
            return best
        return replace(best, value=self.state.best_value)


def address_key(address: dict) -> str:
    """A change's key (refused, beaten, near): its address as canonical JSON. A joint change
    is the same change whichever part leads (epochs with a kernel, or the kernel with epochs:
    the same script), so its parts are keyed as a set."""
    also = address.get("also")
    if not also:
        return json.dumps(address, sort_keys=True)
    own = {key: value for key, value in address.items() if key != "also"}
    return json.dumps(sorted(json.dumps(part, sort_keys=True) for part in [own, *also]))


def improves(value: float | None, best: float | None, mode: str, margin: float) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value > best + margin if mode == "max" else value < best - margin


# Keras reports float32 metrics: 342/360 arrives as 0.949999988, which must count as 0.95.
TARGET_TOLERANCE = 1e-6


def reached(value: float | None, target: float | None, mode: str) -> bool:
    if value is None or target is None:
        return False
    if mode == "max":
        return value >= target - TARGET_TOLERANCE
    return value <= target + TARGET_TOLERANCE


def gap(state: SearchState, target: float | None) -> float | None:
    """How far the best is from the target (positive: short of it), when both are known."""
    if target is None or state.best_value is None:
        return None
    return target - state.best_value if state.mode == "max" else state.best_value - target


def absorb(
    state: SearchState,
    records: Sequence[TrialRecord],
    sources: Sequence[str | None],
    target: float | None,
    mode_of: Callable[[TrialRecord], str],
) -> None:
    """Fold one round's records into the state (the same code for a run and its rebuild).

    `sources` are the scripts of the accepted trials, the baseline and the confirms (None for
    the others; a baseline's or a confirm's is the best's, or that script with its epochs cut
    where it met the target); `mode_of` tells a baseline's direction (max or min) from its
    trial folder.
    """
    state.rounds += 1
    state.seconds += max((r.seconds for r in records), default=0.0)
    state.recheck = None  # a recheck is planned for the very next round only
    baseline = next((r for r in records if r.decision == "baseline"), None)
    stopped = bool(baseline.past_peak) if baseline is not None else state.best_stopped
    for record in records:
        _count_run(state, record, stopped)
    before, sign = state.best_value, 1 if state.mode == "max" else -1
    first_level = steps.initial_level(gap(state, target))  # as _candidates proposed it
    for record in records:
        if record.decision not in ("accepted", "rejected"):
            continue
        gain = None
        if record.value is not None and before is not None:
            gain = sign * (record.value - before)
        for rule in {rule for rule, _ in record.parts if steps.adapts(rule)}:
            state.levels[rule] = steps.next_level(
                state.levels.get(rule, first_level),
                record.decision,
                gain,
                record.beaten_by is not None,
            )
    accepted = None
    for record, source in zip(records, sources, strict=True):
        # measured, not searched: a confirm, a noise or final run, a recheck of a tried change
        state.trials += record.decision not in MEASURES and not record.rechecked
        if record.decision in ("noise", "final"):
            runs = state.runs.get(record.sha256, {})
            if record.sha256 == sha256(state.best_source) and state.best_confirmed and runs:
                # the best is what its script reaches on average over the seeds it ran with
                state.best_value = sum(runs.values()) / len(runs)
            continue
        if (record.noise or {}).get("verdict") == "recheck" and record.value is not None:
            state.recheck = Recheck(record.id, record.value, from_scratch(record))
        if record.decision == "baseline":
            if record.status != "ok":
                continue  # a failed baseline (e.g. killed by the OOM killer) is run again
            state.best_id, state.best_value = record.id, record.value
            state.best_history = record.history
            state.best_estimate = STOPPED if record.past_peak else None
            if source is not None:  # stopped at the target: the script with its epochs cut
                state.best_source = source
            state.weights_id = record.id
            state.mode = mode_of(record)
        elif record.decision == "accepted":
            assert source is not None
            accepted = record
            state.best_source = source
            state.best_id, state.best_value = record.id, record.value
            state.best_history = record.history
            rules = [rule for rule, _ in record.parts]
            state.best_estimate = (
                warm_mode(warm_mappings(rules)) if record.start == "warm" else None
            )
            rechecked = [v for v in state.runs.get(record.sha256, {}).values()]
            if record.rechecked and rechecked:
                # both runs from scratch: the best is what they reach on average
                state.best_value, state.best_estimate = sum(rechecked) / len(rechecked), None
            state.weights_id = record.id
            state.beaten.discard(address_key(record.address))
            state.let_down -= set(rules)
        elif record.decision == "confirm":
            if record.parent != state.best_id:
                continue  # it confirmed a best that a trial of its round replaced
            state.best_estimate = None
            state.best_value = record.value if record.status == "ok" else None
            if record.status == "ok":
                state.best_history, state.weights_id = record.history, record.id
                if source is not None:  # stopped at the target: the script with its epochs cut
                    state.best_source = source
        elif record.status == "cancelled":
            continue  # stopped unfinished when its round was decided: it says nothing
        elif record.beaten_by is not None or (record.noise or {}).get("verdict") == "inside":
            # it lost to another change, or its gain was inside the noise band and another
            # change was rechecked: it may be tried again on a later best
            state.beaten.add(address_key(record.address))
        else:
            state.refused.add(address_key(record.address))
            if record.value is not None:  # it trained and did not pay (not: it failed to run)
                state.let_down |= {rule for rule, _ in record.parts}
    if accepted is not None or any(r.decision == "baseline" for r in records):
        state.tried_on_best = set()  # a new best: nothing is tried on it yet
        state.near = {}
    else:
        for record in records:
            _note_near(state, record)
        state.tried_on_best |= {
            rule
            for r in records
            if r.decision in ("accepted", "rejected") and r.status != "cancelled"
            for rule, _ in r.parts
        }
    if any(r.decision in ("accepted", "rejected") for r in records):
        state.push_rule = accepted.rule if accepted is not None else None
        state.runner_up = runner_up(records, accepted, before, sign)


def _note_near(state: SearchState, record: TrialRecord) -> None:
    """A single change's near miss is kept (a recheck's mean replaces its first run's gain);
    one whose recheck fell to no gain is dropped."""
    if record.decision != "rejected" or record.also or record.rule is None:
        return
    key, note = address_key(record.address), record.noise or {}
    if record.status != "ok" or not note.get("near"):
        if record.rechecked:
            state.near.pop(key, None)
        return
    known = state.near.get(key)
    step = record.step if record.step is not None or known is None else known.step
    state.near[key] = NearMiss(record.rule, key, step, float(note["gain"]))


def _count_run(state: SearchState, record: TrialRecord, stopped: bool) -> None:
    """A from-scratch value joins its script's runs; a noise trial is counted, unless it or
    the best it measured (`stopped`) was stopped past its peak: that noise is the next best's
    to measure."""
    state.last_offset = max(state.last_offset, record.seed_offset)
    if record.examples:
        state.examples = record.examples
    # a noise run cancelled when its round was decided measured nothing, nor one stopped
    measured = record.status != "cancelled" and not record.past_peak
    if record.decision == "noise" and measured and not stopped:
        state.noise_trials += 1
    if from_scratch(record):
        state.runs.setdefault(record.sha256, {})[record.seed_offset] = float(record.value)
    elif record.past_peak and record.status == "ok" and record.value is not None:
        key = runs_key(record.sha256, past_peak=True)  # counts while the stopped one is best
        state.runs.setdefault(key, {})[record.seed_offset] = float(record.value)


def runner_up(
    records: Sequence[TrialRecord], winner: TrialRecord | None, before: float | None, sign: int
) -> RunnerUp | None:
    """The round's beaten change with the largest gain, if it gained a fair share of the winner's."""
    if winner is None or winner.value is None or before is None:
        return None
    within = {address_key(part) for part in _part_addresses(winner)}
    beaten = [
        r
        for r in records
        if r.beaten_by is not None
        and r.status == "ok"
        and r.value is not None
        and not r.also  # a joint change is no one rule's to propose again
        and address_key(r.address) not in within  # the winner made this change already
    ]
    if not beaten:
        return None
    best = max(beaten, key=lambda r: sign * r.value)
    won, gained = sign * (winner.value - before), sign * (best.value - before)
    if best.rule is None or gained < RUNNER_UP_SHARE * won:
        return None
    return RunnerUp(best.rule, address_key(best.address), best.step)


def _part_addresses(record: TrialRecord) -> list[dict]:
    """The address of each rule's change within `record` (one, unless a joint change)."""
    address = record.address
    own = {key: address[key] for key in ("rule", "site", "params")}
    return [own, *address.get("also", [])]
