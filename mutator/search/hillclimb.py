"""The hill-climb (seed 002's tweaker.py, generalised), as a state machine rebuilt from the ledger.

1. Train the script as pushed: the baseline is the best so far. It (and its noise run) stops
   once its validation loss has plainly turned up (`mutator.training.peak`; `peak_stop`): its
   value is then an estimate (`state.STOPPED`), retrained to its last epoch before the search
   ends on it, and a change that reaches the target from scratch is kept over it. One whose
   evaluate meets the target before its last epoch stops there, and the search ends on the
   script with its epochs cut to that one (`target_cut`, as for a change in step 5).
2. Propose candidates on the best source, in rule order; up to `parallel` not yet refused are
   trained side by side, one round (the first candidate of each rule before a second of any),
   laid out by `plan.plan_round`: its docstring lists what comes first, and what waits when
   there are fewer cores or trials left than candidates. The order is the best trial's
   diagnosis (`diagnosis`): under-fitting puts capacity first (and while the curve still
   rises, capacity and more epochs as one joint change ahead of the capacity change alone:
   `_joint`), under-training epochs, over-fitting a regularising rule. A rule that just gained
   much takes a bigger step (`steps`: filters x2 -> x4 -> x8), one that failed comes back to
   its own, but only after every rule not yet tried on this best (`state.tried_on_best`),
   and on a new best a rule whose last change was refused waits behind those that have not
   failed yet (`state.let_down`): filters x8 refused twice, a Conv block not yet tried.
   The first capacity change widens every layer the widening rules can widen, as one change
   (`_wider_model`); the single layers come after it.
3. Of a round's trials, the best one that beats the best by more than `min_improvement` is
   accepted, and its rule is pushed again; the others are reverted. The runner-up, a beaten
   change that gained at least half of what the winner did (`state.RunnerUp`), comes back in
   the next round right after the winner's rule, at the step it was tried at, and no guess
   takes its seat when the round is short of room: two measured gains usually add up
   (filters 4 -> 32 won, epochs 2 -> 16 beside it; both together reach 0.98). Another that
   improved but was beaten may be tried again later (after the untried ones); one that did
   not improve is never tried again at the same (rule, site, params), nor a joint change at
   the same parts. Changes that each gained on the best, but inside the noise band (near
   misses), are joined into one change once there are two (`_joined`): small real gains add
   up where each alone is lost in the noise, and the joined change faces the same band.
4. A candidate is held to the size and pace budget when one is set (`--max-params`,
   `--max-epoch-seconds`: `starts.budget_for`), and to what the search has spent so far: its
   pace times its epochs may not cost more (`starts.guess_budget`; `--no-guess-cap` lifts it).
   One over either is stopped before it trains (or as soon as its pace is known), reverted
   and refused like any failed trial.
5. A child starts from its parent's weights where that is sound (`warm.json`, see
   `mutator.training.warm_plan`), so its metric is an estimate. Before the search reports the
   target as reached, and before it ends for any reason but the time budget, the best script is
   retrained from scratch once (a `confirm` trial, which the trial budget does not count): that
   number is what counts. If it falls short of the target, the climb goes on from it. A child
   of a parent that trained fast (`warm_after`) trains cold: it costs about what a warm one
   does, needs no confirm, and one that reaches the target ends its round at once: at the
   epoch it met the target, whose count its script then keeps (`target_cut`, `target_stop`);
   so does a confirm, and its cut script is the best.
   With noise measured (`noise_runs`, `mutator.search.noise`), the best's script also trains
   with its seeds moved on cores a round leaves free, a gain must clear the measured band, and
   one inside it is trained again with another seed (a recheck) before it counts.
6. Stop at the target, at the trial or time budget, or when nothing is left to try; with
   `final_runs`, train the best that many more times with other seeds for its spread.
Every decision is a ledger line, written when its round ends, so a killed run resumes where it
stopped (see `rounds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from mutator import api
from mutator.engine.candidate import Candidate
from mutator.errors import MutatorError
from mutator.search import plan, steps, target_cut
from mutator.search.config import TuneSettings, parallel_trials
from mutator.search.decide import Planned, decide, now
from mutator.search.diagnosis import (
    CAPACITY,
    NONE,
    STILL_LEARNING,
    TRAINING,
    Diagnosis,
    diagnose,
    order,
)
from mutator.search.ledger import Ledger, TrialRecord, sha256, trial_metrics
from mutator.search.rounds import run_round
from mutator.search.starts import (
    budget_for,
    guess_budget,
    over_budget_note,
    place_inputs,
    prune_plan,
    trial_spec,
    warm_plan,
)
from mutator.search.state import (
    SearchOutcome,
    SearchState,
    absorb,
    address_key,
    gap,
    improves,
    reached,
)
from mutator.training import budget as trial_budget
from mutator.training.peak import PeakStop
from mutator.training.runner import Runner, TrialResult
from rules import Rule

__all__ = [
    "BaselineFailedError",
    "HillClimb",
    "SearchOutcome",
    "Reporter",
    "SearchState",
    "improves",
    "reached",
]


# The largest step level of a layer in the wider model (`HillClimb._wider_model`): x4.
WIDER_MAX_LEVEL = 1


class BaselineFailedError(MutatorError):
    """The script as pushed does not train: there is nothing to improve on."""

    exit_code = 7


class Reporter(Protocol):
    def trial_started(self, trial_id: int, description: str, resumed: bool) -> None: ...
    def trial_finished(self, record: TrialRecord) -> None: ...
    def message(self, text: str) -> None: ...


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
        self.rules = [
            self._capped(rule)
            for rule in api.rules_named(settings.climb.rules, settings.climb.rule_settings)
        ]
        self.parallel = parallel_trials(settings)
        self.roads = {rule.name: rule.road for rule in self.rules}  # what each rule is for

    def _capped(self, rule):  # type: ignore[no-untyped-def]
        """A rule whose cap is relative to the script's own epochs (more_epochs' `own_epochs`)
        gets the script as pushed, not each new best."""
        if not hasattr(rule, "own_epochs") or "own_epochs" in self.settings.climb.rule_settings.get(
            rule.name, {}
        ):
            return rule
        try:
            site = api.Script.load(self.script, self.model_name).view.epochs
        except MutatorError:
            return rule
        own = site.value if site is not None else None
        return replace(rule, own_epochs=own) if own else rule

    # -- state -------------------------------------------------------------------------------
    def rebuild(self, original: str, records: Sequence[TrialRecord]) -> SearchState:
        state = SearchState(best_source=original)
        rounds: dict[object, list[TrialRecord]] = {}
        for record in records:  # a ledger from before rounds: each trial its own round
            key = record.round if record.round is not None else f"t{record.id}"
            rounds.setdefault(key, []).append(record)
        for members in rounds.values():
            absorb(
                state,
                members,
                [self._trial_source(r) for r in members],
                self.settings.goal.target,
                self._mode_of,
            )
        return state

    def _mode_of(self, record: TrialRecord) -> str:
        return self.ledger.trial_mode(record, self.settings.goal.mode)

    def _trial_source(self, record: TrialRecord) -> str | None:
        if record.decision not in ("baseline", "accepted", "confirm") or record.status != "ok":
            return None
        return self.ledger.trial_source(record, self.script.name)

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> SearchOutcome:
        outcome = self._climb()
        missing = self._finals_missing(outcome.state, outcome.records)
        if missing and outcome.state.best_id is not None:
            records = list(outcome.records)
            state = outcome.state
            planned = [
                Planned(
                    len(records) + 1 + offset,
                    "final",
                    state.best_source,
                    f"final: trial {state.best_id}'s script again with other seeds, "
                    "for the spread of its figure",
                    cold_reason="final: from scratch, with other seeds",
                    seed_offset=state.last_offset + 1 + offset,
                )
                for offset in range(missing)
            ]
            for start in range(0, len(planned), self.parallel):  # a core each, as a round
                records += self._round(state, planned[start : start + self.parallel])
            return replace(outcome, records=records)
        return outcome

    def _finals_missing(self, state: SearchState, records: Sequence[TrialRecord]) -> int:
        """How many final runs of the best are still to train (a resumed run trains the rest)."""
        if self.settings.noise.final_runs == 0 or state.best_id is None:
            return 0
        best_sha = sha256(state.best_source)
        done = sum(1 for r in records if r.decision == "final" and r.sha256 == best_sha)
        return max(0, self.settings.noise.final_runs - done)

    def _climb(self) -> SearchOutcome:
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
                    return SearchOutcome(reason, state, records, self.ledger.root)
                records += self._baseline(state, original, len(records) + 1)
                continue
            reason, target = self._stop_reason(state), self.settings.goal.target
            first = self._rechecked(state) if reason == "max_trials" else None
            if first is not None:
                # the budget's last change fell inside the noise band: judge it before the end
                records += self._round(state, [self._recheck(state, len(records) + 1, first)])
                continue
            needs_confirm = not state.best_confirmed and (
                # a stopped script at the target goes on: its next change is to stop sooner
                (reached(state.best_value, target, state.mode) and not state.best_stopped)
                or reason in ("max_trials", "exhausted")
            )
            if needs_confirm:
                records += self._round(state, [self._confirm(state, len(records) + 1)])
                continue
            if reason is not None:
                return SearchOutcome(reason, state, records, self.ledger.root)
            if self._noise_first(state):
                source, whose = state.best_source, f"trial {state.best_id}'s"
                records += self._round(state, [self._noise(state, len(records) + 1, source, whose)])
                continue
            planned = self._next_round(state, len(records) + 1)
            if not planned:
                if not state.best_confirmed:
                    records += self._round(state, [self._confirm(state, len(records) + 1)])
                    continue
                return SearchOutcome("exhausted", state, records, self.ledger.root)
            records += self._round(state, planned)

    def _noise_first(self, state: SearchState) -> bool:
        """One trial alone would measure the noise: only when no core is ever free for it
        (one trial at a time) and nothing has measured it yet; a gain then needs a band."""
        if self.parallel != 1 or self.settings.noise.runs == 0:
            return False
        if state.best_stopped:  # one run with its seeds moved, stopped or not: the next best's
            return state.last_offset == 0  # noise is measured once it is confirmed
        return state.noise_trials == 0

    def _stop_reason(self, state: SearchState) -> str | None:
        if (
            state.best_id is not None
            and state.best_confirmed
            and reached(state.best_value, self.settings.goal.target, state.mode)
        ):
            return "target"
        if state.trials >= self.settings.budget.max_trials:
            return "max_trials"
        budget = self.settings.budget.time_budget
        if budget is not None and state.seconds >= budget:
            return "time_budget"
        return None

    def _baseline(self, state: SearchState, original: str, trial_id: int) -> list[TrialRecord]:
        planned = [Planned(trial_id, "baseline", original, "baseline: the script as given")]
        if (
            self.parallel > 1
            and self.settings.noise.runs > 0
            and self.settings.budget.max_trials > 1
        ):
            # a core is free beside the baseline; with no candidate to judge, no band is needed
            planned.append(self._noise(state, trial_id + 1, original, "the baseline's"))
        done = self._round(state, planned)
        if done[0].status != "ok":
            record = done[0]
            raise BaselineFailedError(
                f"the script as given does not train ({record.status}: {record.error}); "
                f"see {self.ledger.trial_dir(record.id) / 'log.txt'}"
            )
        metrics = trial_metrics(self.ledger.trial_dir(done[0].id))
        if (note := over_budget_note(budget_for(self.settings), metrics)) is not None:
            self.reporter.message(note)
        return done

    def _noise(self, state: SearchState, trial_id: int, source: str, whose: str) -> Planned:
        """The best's script trained again from scratch with every seed it sets moved: one
        more run to measure the noise by (`mutator.search.noise`)."""
        offset = state.last_offset + 1
        return Planned(
            trial_id,
            "noise",
            source,
            f"noise: {whose} script again, every seed moved by {offset}",
            cold_reason="noise: from scratch, with other seeds",
            seed_offset=offset,
        )

    def _rechecked(self, state: SearchState) -> TrialRecord | None:
        """The first run of the change whose gain fell inside the noise band, if one is due."""
        pending = state.recheck
        return next((r for r in self.ledger.records() if pending and r.id == pending.trial), None)

    def _recheck(self, state: SearchState, trial_id: int, first: TrialRecord) -> Planned:
        """The change whose gain fell inside the noise band, trained again with another seed."""
        source = (self.ledger.trial_dir(first.id) / self.script.name).read_text(encoding="utf-8")
        return Planned(
            trial_id,
            "recheck",
            source,
            f"recheck: trial {first.id}'s change with other seeds ({first.description})",
            diff=first.diff,
            cold_reason="recheck: from scratch, with other seeds",
            seed_offset=state.last_offset + 1,
            recheck=state.recheck,
            replay=first,
        )

    def _confirm(self, state: SearchState, trial_id: int) -> Planned:
        return Planned(
            trial_id,
            "confirm",
            state.best_source,
            f"confirm: trial {state.best_id}'s script retrained from scratch "
            f"(its warm-started {_fmt(state.best_value)} is an estimate)",
            cold_reason="confirm: from scratch",
        )

    def _next_round(self, state: SearchState, first_id: int) -> list[Planned]:
        """The next round on the best (edits refer to its script), as `plan.plan_round` lays
        it out from the proposals, the runner-up and the joint change computed here."""
        script = api.Script.from_text(state.best_source, self.script, self.model_name)
        diagnosis = self.diagnosis(state)
        gap = self._gap(state)
        levels = {
            rule.name: steps.level_for(state.levels.get(rule.name), gap)
            if self.settings.climb.adaptive_steps
            else 0
            for rule in self.rules
        }
        rules = [steps.step_of(rule, levels[rule.name]) for rule in self.rules]
        rules = [steps.from_curve(rule, diagnosis.best_epoch) for rule in rules]
        factors = {rule.name: steps.factor_of(rule) for rule in rules}
        widening = [
            steps.step_of(rule, min(levels[rule.name], WIDER_MAX_LEVEL))
            for rule in self.rules
            if getattr(rule, "widens", False)
        ]
        wide_factors = {rule.name: steps.factor_of(rule) for rule in widening}
        proposed = {rule.name: self._proposals(script, rule, state) for rule in rules}
        names = order([name for name, mine in proposed.items() if mine], diagnosis, self.roads)
        # one of every rule before a second of any, across rounds on the same best: a rule
        # whose change did not pay here waits behind the untried ones before another step
        names.sort(key=lambda name: (name in state.tried_on_best, name in state.let_down))
        fresh = {
            n: [c for c in proposed[n] if address_key(c.address()) not in state.beaten]
            for n in names
        }
        deferred = [
            [c for c in proposed[n] if address_key(c.address()) in state.beaten] for n in names
        ]
        wider = self._wider_model(script, widening, state)
        if wider is not None:  # it takes the first widening rule's seat: `_wider_model`
            fresh[wider.rule] = [wider, *fresh[wider.rule]]
        first = self._rechecked(state)
        laid = plan.plan_round(
            first_id=first_id,
            parallel=self.parallel,
            room=self.settings.budget.max_trials - state.trials,
            fresh=list(fresh.values()),
            deferred=deferred,
            push_rule=state.push_rule,
            runner_up=self._runner_up(script, state),
            joint=self._joint(script, diagnosis, fresh, state),
            joined=self._joined(script, state) if self.settings.climb.join_near_misses else None,
            recheck=first is not None,
            estimate=state.best_warm,
            confirm_now=plan.confirm_now(state.best_transferred, self._gap(state)),
            noise=state.best_confirmed and state.noise_trials < self.settings.noise.runs,
        )
        for dropped in laid.dropped:
            self.reporter.message(dropped.message)
        return [
            self._trial(slot, state, script, first, diagnosis, factors, wide_factors)
            for slot in laid.slots
        ]

    def _trial(
        self,
        slot: plan.Slot,
        state: SearchState,
        script: api.Script,
        first: TrialRecord | None,
        diagnosis: Diagnosis,
        factors: dict[str, float | None],
        wide_factors: dict[str, float | None],
    ) -> Planned:
        """The trial that trains one slot of the plan: a candidate's is its rewrite of the best
        script, warm from the best's weights where that is sound. Its step, and each joined
        part's, is its rule's; a layer of the wider model (`_wider_model`) took the capped one."""
        if slot.kind == plan.RECHECK:
            assert first is not None  # laid out only when one is due
            return self._recheck(state, slot.id, first)
        if slot.kind == plan.CONFIRM:
            return self._confirm(state, slot.id)
        if slot.candidate is None:
            return self._noise(state, slot.id, state.best_source, f"trial {state.best_id}'s")
        candidate = slot.candidate
        parts = [candidate, *candidate.also]
        wider = sum(1 for part in parts if part.rule in wide_factors) >= 2
        step, *also_steps = [
            (wide_factors if wider and part.rule in wide_factors else factors).get(part.rule)
            for part in parts
        ]
        if slot.kind == plan.RUNNER_UP and state.runner_up is not None:
            step = state.runner_up.step  # the step it was tried at
        if slot.kind == plan.JOINED:  # each part at the step it gained at
            step, *also_steps = [state.near[_keyed(part, alone=True)].step for part in parts]
        rewrite = api.rewrite(script, candidate)
        warm, why = warm_plan(self.ledger, state, candidate, self.settings)
        return Planned(
            slot.id,
            "candidate",
            rewrite.source,
            candidate.description,
            candidate,
            rewrite.diff,
            warm,
            why,
            diagnosis=diagnosis.line,
            step=step,
            also_steps=tuple(also_steps),
        )

    def _joint(
        self,
        script: api.Script,
        diagnosis: Diagnosis,
        fresh: dict[str, list[Candidate]],
        state: SearchState,
    ) -> Candidate | None:
        """Capacity and epochs as one change, first in the round, when the curves call for both.

        A model that under-fits while its validation curve still rises has shown neither what
        more capacity nor what more epochs would do: each alone leaves the other's gain for a
        later round. The joint change takes both roads at once, beside the capacity change
        alone (what it adds is measured, not assumed). Only where neither part was tried on
        this best: after that, the runner-up (`state.RunnerUp`) carries the evidence.
        """
        if not self.settings.climb.joint_changes or diagnosis.kind != STILL_LEARNING:
            return None
        capacity = self._first_of(CAPACITY, fresh)
        epochs = self._first_of(TRAINING, fresh)
        if capacity is None or epochs is None:
            return None
        if {capacity.rule, epochs.rule} & state.tried_on_best:
            return None  # a part tried on this best: the untried rules come first
        joined = api.joint(script, capacity, epochs)
        if joined is None:
            return None
        key = address_key(joined.address())
        return None if key in state.refused or key in state.beaten else joined

    def _joined(self, script: api.Script, state: SearchState) -> Candidate | None:
        """The near misses on this best (`state.NearMiss`) as one change, largest gain first,
        each part proposed again at the step it gained at; a part whose edit meets one already
        in is left out. None with fewer than two parts, or when this very set was tried."""
        parts: list[Candidate] = []
        for near in sorted(state.near.values(), key=lambda n: (-n.gain, n.key)):
            rule = next((r for r in self.rules if r.name == near.rule), None)
            if rule is None:
                continue
            again = api.propose(script, [steps.with_factor(rule, near.step)])
            part = next((c for c in again if _keyed(c) == near.key), None)
            if part is not None and (not parts or api.joint_all(script, [*parts, part])):
                parts.append(part)
        joined = api.joint_all(script, parts)
        if joined is None:
            return None
        key = address_key(joined.address())
        return None if key in state.refused or key in state.beaten else joined

    def _wider_model(
        self, script: api.Script, widening: Sequence[Rule], state: SearchState
    ) -> Candidate | None:
        """Every layer the widening rules (`Rule.widens`, at their steps capped at
        `WIDER_MAX_LEVEL`) can widen, as one change.

        Widened one layer a round, a network of several layers spends a round on each, and
        the layer left narrow stays the bottleneck (two input branches of Dense(4): the first
        widened, 0.94; both, 0.96). So the first capacity change of a round widens them all,
        and the single layers come after it. On a model with one such layer it is that layer's
        own change, and nothing is added. Each layer takes at most x4: a layer fed by a wider
        one costs the product of both steps, and x8 on each of a stack is x64 on a guess.
        """
        parts = [
            candidate for rule in widening for candidate in self._proposals(script, rule, state)
        ]
        wider = api.joint_all(script, parts)
        if wider is None:
            return None
        key = address_key(wider.address())
        return None if key in state.refused or key in state.beaten else wider

    def _first_of(self, road: str, fresh: dict[str, list[Candidate]]) -> Candidate | None:
        """The first fresh candidate of the first rule on `road`, in the configured order."""
        return next(
            (fresh[r.name][0] for r in self.rules if r.road == road and fresh.get(r.name)), None
        )

    def _proposals(self, script: api.Script, rule, state: SearchState) -> list[Candidate]:  # type: ignore[no-untyped-def]
        """What `rule` proposes on the best script, less the changes already refused."""
        return [
            p
            for p in api.propose(script, [rule])
            if isinstance(p, Candidate) and address_key(p.address()) not in state.refused
        ]

    def _runner_up(self, script: api.Script, state: SearchState) -> Candidate | None:
        """The last round's runner-up (`state.RunnerUp`), proposed again at its own step."""
        second = state.runner_up
        rule = next((r for r in self.rules if second is not None and r.name == second.rule), None)
        if second is None or rule is None:
            return None
        again = self._proposals(script, steps.with_factor(rule, second.step), state)
        return next((c for c in again if address_key(c.address()) == second.key), None)

    def _gap(self, state: SearchState) -> float | None:
        return gap(state, self.settings.goal.target)

    def diagnosis(self, state: SearchState) -> Diagnosis:
        """What the best trial's curves say, unless the configured order is to be kept."""
        if not self.settings.climb.epochs_first_when_rising:
            return Diagnosis(NONE, "the configured rule order (the evidence is off)")
        return diagnose(
            state.best_history,
            self.settings.goal.target,
            state.mode,
            self.settings.goal.min_improvement,
            warm=state.best_warm,
            value=state.best_value,
        )

    def _budget_of(
        self, item: Planned, budget: trial_budget.TrialBudget | None, state: SearchState
    ) -> trial_budget.TrialBudget | None:
        """A judged change is held to the user's budget; a candidate, a guess, also to what the
        search has spent so far (`starts.guess_budget`: its recheck's cost is known by then)."""
        if item.kind == "candidate" and self.settings.climb.guess_cap:
            return guess_budget(budget, state.seconds)
        return budget if item.judged else None

    def _stops_past_peak(self, item: Planned, state: SearchState) -> bool:
        """The script as given, and its noise runs while it is the best, stop past their
        peak (`mutator.training.peak`); every change is trained to its end."""
        if not self.settings.fast.peak_stop:
            return False
        return item.kind == "baseline" or (
            item.kind == "noise" and (state.best_id is None or state.best_stopped)
        )

    # -- one round ---------------------------------------------------------------------------
    def _round(self, state: SearchState, planned: Sequence[Planned]) -> list[TrialRecord]:
        round_number = state.rounds + 1
        specs, starts = [], []
        budget = budget_for(self.settings)  # candidates only: `starts.budget_for`
        for item in planned:
            folder = self.ledger.trial_dir(item.id)
            resumed = (folder / self.script.name).exists()
            meta = {"id": item.id, "parent": state.best_id, "round": round_number, **item.address}
            folder = self.ledger.prepare_trial(item.id, self.script.name, item.source, meta)
            place_inputs(
                folder,
                warm=item.warm,
                prune=prune_plan(state, self.settings) if item.kind == "candidate" else None,
                budget=self._budget_of(item, budget, state),
                peak=PeakStop() if self._stops_past_peak(item, state) else None,
                target=target_cut.stop_for(
                    item,
                    self.settings,
                    state.mode if state.best_id is not None else self.settings.goal.mode,
                    self.script,
                    self.model_name,
                ),
            )
            self.reporter.trial_started(item.id, item.description, resumed)
            specs.append(
                trial_spec(
                    self.script,
                    self.ledger,
                    state.seconds,
                    folder,
                    self.settings,
                    len(planned),
                    item.warm is not None,
                    item.seed_offset,
                )  # fmt: skip
            )
            starts.append(now())

        mode = state.mode if state.best_id is not None else None

        def settles(index: int, result: TrialResult) -> bool:
            """A from-scratch value at the target ends the round: a confirm, or the script
            as given or a candidate that trained cold to its last epoch, or to the epoch it met
            the target at (its metric is already the script's own, epochs cut)."""
            item, metrics = planned[index], result.metrics or {}
            from_scratch = item.kind == "confirm" or (
                item.kind in ("baseline", "candidate")
                and (metrics.get("start") or {}).get("mode") == "cold"
                and not metrics.get("pruned")
                and not metrics.get("past_peak")
            )
            return (
                from_scratch
                and result.ok
                # the script as given tells the metric's way; the round's others follow it
                and reached(result.value, self.settings.goal.target, mode or result.mode)
            )

        outcomes, _ = run_round(
            self.runner, specs, self.settings.budget.retries, self.reporter.message, settles
        )
        planned = [  # a change stopped at the target keeps the epochs it trained
            target_cut.cut(
                item,
                outcome.result.metrics,
                state.best_source,
                self.script,
                self.ledger.trial_dir(item.id),
                self.model_name,
            )
            for item, outcome in zip(planned, outcomes, strict=True)
        ]
        records = decide(state, planned, outcomes, starts, round_number, self.settings)
        for record in records:
            self.ledger.append(record)
        absorb(
            state, records, [p.source for p in planned], self.settings.goal.target, self._mode_of
        )
        for record, item in zip(records, planned, strict=True):
            if record.decision in ("baseline", "accepted") and record.status == "ok":
                self.ledger.save_best(item.source, record.id)
            if record.decision == "confirm" and record.status == "ok":
                self.ledger.save_best(item.source, record.id)  # best.keras: the honest model
            self.reporter.trial_finished(record)
        return records


def _keyed(proposal: object, alone: bool = False) -> str | None:
    """A proposed change's address key (None for a rule's note of why it proposes nothing);
    `alone`: the key of its own part, without the parts a joint change carries."""
    if not isinstance(proposal, Candidate):
        return None
    address = proposal.address()
    return address_key({k: v for k, v in address.items() if k != "also"} if alone else address)


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"
