"""The hill-climb (seed 002's tweaker.py, generalised), as a state machine rebuilt from the ledger.

1. Train the script as pushed: the baseline is the best so far.
2. Propose candidates on the best source, in rule order; the next `parallel` not yet refused are
   trained side by side, one round (the first candidate of each rule before a second of any).
   The order is the best trial's diagnosis (`diagnosis`): under-fitting puts capacity first,
   under-training epochs, over-fitting a regularising rule. A rule that just gained much takes
   a bigger step (`steps`: filters x2 -> x4 -> x8), one that failed comes back to its own.
3. Of a round's trials, the best one that beats the best by more than `min_improvement` is
   accepted, and its rule is pushed again; the others are reverted. One that improved but was
   beaten may be tried again later (after the untried ones); one that did not improve is never
   tried again at the same (rule, site, params).
4. A child starts from its parent's weights where that is sound (`warm.json`, see
   `mutator.training.warm_plan`), so its metric is an estimate. Before the search reports the
   target as reached, and before it ends for any reason but the time budget, the best script is
   retrained from scratch once (a `confirm` trial, which the trial budget does not count): that
   number is what counts. If it falls short of the target, the climb goes on from it.
5. Stop at the target, at the trial or time budget, or when nothing is left to try.
Every decision is a ledger line, written when its round ends, so a killed run resumes where it
stopped (see `rounds`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from mutator import api
from mutator.engine.candidate import Candidate
from mutator.errors import MutatorError
from mutator.search import steps
from mutator.search.config import TuneSettings, cores, parallel_trials
from mutator.search.diagnosis import NONE, Diagnosis, diagnose, order
from mutator.search.ledger import Ledger, TrialRecord, sha256
from mutator.search.rounds import Outcome as TrialOutcome
from mutator.search.rounds import run_round
from mutator.training.prune import PRUNE_FILE, PrunePlan, watched_key
from mutator.training.runner import Runner, TrialResult, TrialSpec
from mutator.training.warm_plan import CONTINUE, TRANSFER, WARM_FILE, WarmPlan


class BaselineFailedError(MutatorError):
    """The script as pushed does not train: there is nothing to improve on."""

    exit_code = 7


class Reporter(Protocol):
    def trial_started(self, trial_id: int, description: str, resumed: bool) -> None: ...
    def trial_finished(self, record: TrialRecord) -> None: ...
    def message(self, text: str) -> None: ...


@dataclass
class SearchState:
    """What the search knows, derived entirely from the ledger and the trial folders."""

    best_source: str
    best_id: int | None = None
    best_value: float | None = None
    best_history: dict[str, list[float]] = field(default_factory=dict)
    best_confirmed: bool = True  # the best's value comes from training from scratch
    weights_id: int | None = None  # the trial whose model is the best script's, for children
    mode: str = "max"
    refused: set[str] = field(default_factory=set)  # tried, reverted: never again
    beaten: set[str] = field(default_factory=set)  # improved but lost a round: later again
    push_rule: str | None = None  # the rule just accepted: tried again first
    levels: dict[str, int] = field(default_factory=dict)  # adaptive step per rule (steps.py)
    trials: int = 0
    rounds: int = 0
    seconds: float = 0.0  # wall seconds: each round counts as its longest trial


@dataclass(frozen=True)
class Outcome:
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

    @property
    def address(self) -> dict:
        if self.candidate is None:
            return {"rule": None, "site": None, "params": {}}
        return self.candidate.address()


def address_key(address: dict) -> str:
    return json.dumps(address, sort_keys=True)


def improves(value: float | None, best: float | None, mode: str, margin: float) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value > best + margin if mode == "max" else value < best - margin


# Keras reports float32 metrics: 342/360 arrives as 0.949999988, which must count as 0.95.
TARGET_TOLERANCE = 1e-6
# A warm estimate this close to the target has its from-scratch confirm run beside the round.
CONFIRM_NEAR = 0.03


def reached(value: float | None, target: float | None, mode: str) -> bool:
    if value is None or target is None:
        return False
    if mode == "max":
        return value >= target - TARGET_TOLERANCE
    return value <= target + TARGET_TOLERANCE


class HillClimb:
    def __init__(
        self,
        script: Path,
        ledger: Ledger,
        runner: Runner,
        settings: TuneSettings,
        reporter: Reporter,
        model_name: str | None = None,
    ) -> None:
        self.script = script
        self.ledger = ledger
        self.runner = runner
        self.settings = settings
        self.reporter = reporter
        self.model_name = model_name
        self.rules = api.rules_named(settings.rules, settings.rule_settings)
        self.parallel = parallel_trials(settings)

    # -- state -------------------------------------------------------------------------------
    def rebuild(self, original: str, records: Sequence[TrialRecord]) -> SearchState:
        state = SearchState(best_source=original)
        rounds: dict[object, list[TrialRecord]] = {}
        for record in records:  # a ledger from before rounds: each trial its own round
            rounds.setdefault(record.round if record.round is not None else f"t{record.id}", [])
            rounds[record.round if record.round is not None else f"t{record.id}"].append(record)
        for members in rounds.values():
            self._absorb(state, members, [self._trial_source(r) for r in members])
        return state

    def _absorb(
        self, state: SearchState, records: Sequence[TrialRecord], sources: Sequence[str | None]
    ) -> None:
        """Fold one round's records into the state (the same code for a run and its rebuild)."""
        state.rounds += 1
        state.seconds += max((r.seconds for r in records), default=0.0)
        before, sign = state.best_value, 1 if state.mode == "max" else -1
        first_level = steps.initial_level(self._gap(state))  # as _candidates proposed it
        for record in records:
            if record.rule in steps.ADAPTIVE and record.decision in ("accepted", "rejected"):
                gain = None
                if record.value is not None and before is not None:
                    gain = sign * (record.value - before)
                state.levels[record.rule] = steps.next_level(
                    state.levels.get(record.rule, first_level),
                    record.decision,
                    gain,
                    record.beaten_by is not None,
                )
        accepted = None
        for record, source in zip(records, sources, strict=True):
            state.trials += record.decision != "confirm"  # a confirm is beyond the budget
            if record.decision == "baseline":
                if record.status != "ok":
                    continue  # a failed baseline (e.g. killed by the OOM killer) is run again
                state.best_id, state.best_value = record.id, record.value
                state.best_history, state.best_confirmed = record.history, True
                state.weights_id = record.id
                state.mode = self._mode_of(record)
            elif record.decision == "accepted":
                assert source is not None
                accepted = record
                state.best_source = source
                state.best_id, state.best_value = record.id, record.value
                state.best_history = record.history
                state.best_confirmed = record.start != "warm"
                state.weights_id = record.id
                state.beaten.discard(address_key(record.address))
            elif record.decision == "confirm":
                if record.parent != state.best_id:
                    continue  # it confirmed a best that a trial of its round replaced
                state.best_confirmed = True
                state.best_value = record.value if record.status == "ok" else None
                if record.status == "ok":
                    state.best_history, state.weights_id = record.history, record.id
            elif record.status == "cancelled":
                continue  # stopped unfinished when its round was decided: it says nothing
            elif record.beaten_by is not None:
                state.beaten.add(address_key(record.address))
            else:
                state.refused.add(address_key(record.address))
        if any(r.decision in ("accepted", "rejected") for r in records):
            state.push_rule = accepted.rule if accepted is not None else None

    def _mode_of(self, record: TrialRecord) -> str:
        if self.settings.mode != "auto":
            return self.settings.mode
        metrics_file = self.ledger.trial_dir(record.id) / "metrics.json"
        if metrics_file.exists():
            mode = json.loads(metrics_file.read_text(encoding="utf-8")).get("mode")
            if mode in ("max", "min"):
                return mode
        return "max"

    def _trial_source(self, record: TrialRecord) -> str | None:
        if record.decision != "accepted":
            return None
        path = self.ledger.trial_dir(record.id) / self.script.name
        source = path.read_text(encoding="utf-8")
        if sha256(source) != record.sha256:
            raise MutatorError(f"{path} was changed after trial {record.id}; the run cannot resume")
        return source

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> Outcome:
        original = self.script.read_text(encoding="utf-8")
        records = self.ledger.records()
        state = self.rebuild(original, records)
        if records:
            self.reporter.message(
                f"resuming: {len(records)} trial(s) done, best {_fmt(state.best_value)}"
            )
        while True:
            if state.best_id is None:
                if (reason := self._stop_reason(state)) is not None:
                    return Outcome(reason, state, records, self.ledger.root)
                records += self._baseline(state, original, len(records) + 1)
                continue
            reason = self._stop_reason(state)
            needs_confirm = not state.best_confirmed and (
                reached(state.best_value, self.settings.target, state.mode)
                or reason in ("max_trials", "exhausted")
            )
            if needs_confirm:
                records += self._round(state, [self._confirm(state, len(records) + 1)])
                continue
            if reason is not None:
                return Outcome(reason, state, records, self.ledger.root)
            planned = self._candidates(state, len(records) + 1)
            if not planned:
                if not state.best_confirmed:
                    records += self._round(state, [self._confirm(state, len(records) + 1)])
                    continue
                return Outcome("exhausted", state, records, self.ledger.root)
            if self._confirm_alongside(state, planned):
                confirm = self._confirm(state, len(records) + 1)
                shifted = [replace(item, id=item.id + 1) for item in planned]
                planned = [confirm, *shifted[: max(1, self.parallel - 1)]]
            records += self._round(state, planned)

    def _confirm_alongside(self, state: SearchState, planned: Sequence[Planned]) -> bool:
        """Whether the round also retrains the best from scratch, beside its candidates.

        When the best is an estimate and a core would idle, or when the estimate is near the
        target (warm estimates run a little low: a confirm may already reach it), the confirm
        costs no extra wall time and can end the search a round earlier.
        """
        if state.best_confirmed or self.parallel < 2:
            return False
        if len(planned) < self.parallel:
            return True
        gap = self._gap(state)
        return gap is not None and gap <= CONFIRM_NEAR

    def _stop_reason(self, state: SearchState) -> str | None:
        if (
            state.best_id is not None
            and state.best_confirmed
            and reached(state.best_value, self.settings.target, state.mode)
        ):
            return "target"
        if state.trials >= self.settings.max_trials:
            return "max_trials"
        budget = self.settings.time_budget
        if budget is not None and state.seconds >= budget:
            return "time_budget"
        return None

    def _baseline(self, state: SearchState, original: str, trial_id: int) -> list[TrialRecord]:
        planned = Planned(trial_id, "baseline", original, "baseline: the script as given")
        done = self._round(state, [planned])
        if done[-1].status != "ok":
            record = done[-1]
            raise BaselineFailedError(
                f"the script as given does not train ({record.status}: {record.error}); "
                f"see {self.ledger.trial_dir(record.id) / 'log.txt'}"
            )
        return done

    def _confirm(self, state: SearchState, trial_id: int) -> Planned:
        return Planned(
            trial_id,
            "confirm",
            state.best_source,
            f"confirm: trial {state.best_id}'s script retrained from scratch "
            f"(its warm-started {_fmt(state.best_value)} is an estimate)",
            cold_reason="confirm: from scratch",
        )

    def _candidates(self, state: SearchState, first_id: int) -> list[Planned]:
        """The next round: up to `parallel` candidates on the best (edits refer to its script)."""
        room = max(1, min(self.parallel, self.settings.max_trials - state.trials))
        script = api.Script.from_text(state.best_source, self.script, self.model_name)
        diagnosis = self.diagnosis(state)
        by_name = {rule.name: rule for rule in self.rules}
        rules = [by_name[name] for name in order(list(by_name), diagnosis)]
        if state.push_rule is not None:
            rules.sort(key=lambda rule: rule.name != state.push_rule)
        if self.settings.adaptive_steps:
            first = steps.initial_level(self._gap(state))
            rules = [steps.step_of(rule, state.levels.get(rule.name, first)) for rule in rules]
        factors = {rule.name: steps.factor_of(rule) for rule in rules}
        fresh: list[list[Candidate]] = []
        deferred: list[list[Candidate]] = []
        for rule in rules:
            mine = [
                p
                for p in api.propose(script, [rule])
                if isinstance(p, Candidate) and address_key(p.address()) not in state.refused
            ]
            fresh.append([c for c in mine if address_key(c.address()) not in state.beaten])
            deferred.append([c for c in mine if address_key(c.address()) in state.beaten])
        chosen = (_round_robin(fresh) + _round_robin(deferred))[:room]
        planned = []
        for offset, candidate in enumerate(chosen):
            rewrite = api.rewrite(script, candidate)
            warm, why = self._warm_plan(state, candidate)
            planned.append(
                Planned(
                    first_id + offset,
                    "candidate",
                    rewrite.source,
                    candidate.description,
                    candidate,
                    rewrite.diff,
                    warm,
                    why,
                    diagnosis=diagnosis.line,
                    step=factors.get(candidate.rule),
                )
            )
        return planned

    def _gap(self, state: SearchState) -> float | None:
        """How far the best is from the target (positive: short of it), when both are known."""
        target, value = self.settings.target, state.best_value
        if target is None or value is None:
            return None
        return target - value if state.mode == "max" else value - target

    def diagnosis(self, state: SearchState) -> Diagnosis:
        """What the best trial's curves say, unless the configured order is to be kept."""
        if not self.settings.epochs_first_when_rising:
            return Diagnosis(NONE, "the configured rule order (the evidence is off)")
        return diagnose(
            state.best_history, self.settings.target, state.mode, self.settings.min_improvement
        )

    def _warm_plan(self, state: SearchState, candidate: Candidate) -> tuple[WarmPlan | None, str]:
        """Where a child of the best may start from, or why it starts from scratch."""
        if not self.settings.warm_start:
            return None, "warm start is off"
        parent = state.weights_id
        kept = self.ledger.keep_weights(parent) if parent is not None else None
        if parent is None or kept is None:
            return None, "its parent saved no model to start from"
        fits = _fit_count(self.ledger.trial_dir(parent))
        if fits != 1:
            return None, f"the script calls fit {fits} times; only one fit can be continued"
        if candidate.rule == "more_epochs":
            old = (candidate.params.get("epochs") or [None])[0]
            if not isinstance(old, int):
                return None, "the parent's epochs are not known"
            return WarmPlan(CONTINUE, parent, str(kept), epochs_done=old), ""
        return WarmPlan(TRANSFER, parent, str(kept), share=self.settings.warm_share), ""

    # -- one round ---------------------------------------------------------------------------
    def _round(self, state: SearchState, planned: Sequence[Planned]) -> list[TrialRecord]:
        round_number = state.rounds + 1
        specs, starts = [], []
        for item in planned:
            folder = self.ledger.trial_dir(item.id)
            resumed = (folder / self.script.name).exists()
            meta = {"id": item.id, "parent": state.best_id, "round": round_number, **item.address}
            folder = self.ledger.prepare_trial(item.id, self.script.name, item.source, meta)
            if item.warm is not None:
                item.warm.write(folder)
            else:
                (folder / WARM_FILE).unlink(missing_ok=True)
            pruning = self._prune_plan(state) if item.kind == "candidate" else None
            if pruning is not None:
                pruning.write(folder)
            else:
                (folder / PRUNE_FILE).unlink(missing_ok=True)
            self.reporter.trial_started(item.id, item.description, resumed)
            specs.append(self._spec(state, folder, len(planned), item.warm is not None))
            starts.append(_now())
        def settles(index: int, result: TrialResult) -> bool:
            return planned[index].kind == "confirm" and result.ok and reached(
                result.value, self.settings.target, state.mode
            )

        outcomes, _ = run_round(
            self.runner, specs, self.settings.retries, self.reporter.message, settles
        )
        records = self._decide(state, planned, outcomes, starts, round_number)
        for record in records:
            self.ledger.append(record)
        self._absorb(state, records, [p.source for p in planned])
        for record, item in zip(records, planned, strict=True):
            if record.decision in ("baseline", "accepted") and record.status == "ok":
                self.ledger.save_best(item.source, record.id)
            if record.decision == "confirm" and record.status == "ok":
                self.ledger.save_best(item.source, record.id)  # best.keras: the honest model
            self.reporter.trial_finished(record)
        return records

    def _prune_plan(self, state: SearchState) -> PrunePlan | None:
        """The best's curve a candidate must keep up with, when pruning is on and there is one."""
        if not self.settings.prune:
            return None
        watched = watched_key(state.best_history)
        if watched is None:
            return None
        key, mode = watched
        curve = tuple(v for v in state.best_history.get(key, []) if v is not None)
        return PrunePlan(
            key,
            mode,
            curve,
            margin=self.settings.prune_margin,
            grace=self.settings.prune_grace,
            reference_trial=state.weights_id,
        )

    def _spec(self, state: SearchState, folder: Path, side_by_side: int, warm: bool) -> TrialSpec:
        remaining = None
        if self.settings.time_budget is not None:
            remaining = max(1.0, self.settings.time_budget - state.seconds)
        timeout = min(filter(None, [self.settings.trial_timeout, remaining]), default=None)
        env = _seed_env(self.settings.seed)
        if side_by_side > 1:
            env["MUTATOR_THREADS"] = str(max(1, cores() // side_by_side))
        return TrialSpec(
            script=folder / self.script.name,
            trial_dir=folder,
            metric=self.settings.metric,
            mode=self.settings.mode,
            metric_regex=self.settings.metric_regex,
            timeout=timeout,
            script_args=self.settings.script_args,
            env=env,
            source_dir=self.script.resolve().parent,
            read_only_dirs=(self.ledger.weights_dir,) if warm else (),
        )

    def _decide(
        self,
        state: SearchState,
        planned: Sequence[Planned],
        outcomes: Sequence[TrialOutcome],
        starts: Sequence[str],
        round_number: int,
    ) -> list[TrialRecord]:
        margin = self.settings.min_improvement
        values = [o.result.value if o.result.status == "ok" else None for o in outcomes]
        pruned = [(o.result.metrics or {}).get("pruned") for o in outcomes]
        improving = [
            index
            for index, item in enumerate(planned)
            if item.kind == "candidate"
            and not pruned[index]  # a trial stopped as hopeless is never accepted
            and improves(values[index], state.best_value, state.mode, margin)
        ]
        sign = 1 if state.mode == "max" else -1
        winner = max(improving, key=lambda i: (sign * values[i], -i)) if improving else None
        confirmed_target = any(
            item.kind == "confirm" and reached(values[i], self.settings.target, state.mode)
            for i, item in enumerate(planned)
        )
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
            else:
                best_after = state.best_value
            start = _start_of(result)
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
                    finished=_now(),
                    resumed_from_epoch=_resumed_from(result, start),
                    restarts=outcome.restarts,
                    error=result.error,
                    history=_last_history(result),
                    start="warm" if start.get("mode") == "warm" else "cold",
                    start_reason=reason or item.cold_reason,
                    round=round_number,
                    diagnosis=item.diagnosis,
                    step=item.step,
                    pruned=pruned[index] or None,
                    beaten_by=(
                        planned[winner].id
                        if winner is not None and index in improving and index != winner
                        else None
                    ),
                )
            )
        return records


def _round_robin(groups: Sequence[Sequence[Candidate]]) -> list[Candidate]:
    """The first of each group, then the second of each...: one of every rule before two of any."""
    out: list[Candidate] = []
    for depth in range(max((len(g) for g in groups), default=0)):
        out += [group[depth] for group in groups if depth < len(group)]
    return out


def _fit_count(trial_dir: Path) -> int:
    try:
        metrics = json.loads((trial_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return len(metrics.get("history") or [])


def _start_of(result: TrialResult) -> dict:
    start = (result.metrics or {}).get("start")
    return start if isinstance(start, dict) else {}


def _seed_env(seed: int | None) -> dict[str, str]:
    return {} if seed is None else {"MUTATOR_SEED": str(seed), "PYTHONHASHSEED": str(seed)}


def _resumed_from(result: TrialResult, start: dict) -> int:
    """The epoch a killed trial resumed at (not where a warm start began: that is `start`)."""
    fits = (result.metrics or {}).get("history") or []
    resumed = max((fit.get("initial_epoch") or 0 for fit in fits), default=0)
    return 0 if resumed == (start.get("initial_epoch") or 0) else resumed


def _last_history(result: TrialResult) -> dict[str, list[float]]:
    fits = (result.metrics or {}).get("history") or []
    return dict(fits[-1].get("epochs") or {}) if fits else {}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"
