"""`mutate slim`: from a script that reaches its target, the smallest one that still does.

Every rule of the climb grows the model; slim walks back, with the climb's honesty. It trains
the script as given from scratch (the baseline: it must reach the target). Then, on the
smallest script so far, every shrinking rule (`rules.SHRINK_ORDER`: a hidden Dense or a Conv
block removed, a layer's filters or units halved, fewer epochs) proposes its changes, and the
whole model narrower is one more (every layer the narrowing rules can halve, halved at once:
the widest cut, `Rule.narrows`). Each candidate is *sized* first: its script runs until the
model is built and stops before the first epoch (a budget of 0 parameters), so its parameters
cost a second, not a training. Those no bigger than the best then train from scratch, smallest
first, `parallel` at a time; one that falls short comes back with twice the epochs, then four
times (a trade: a smaller model trained longer, up to `TRADE_EPOCHS` times the starting
epochs). One
that reaches the target is trained again with every seed moved (a confirm: one lucky seed is
not a model that reaches its target); if it reaches it again it is the new smallest script and
the next round starts from it, if not it is refused. Smaller
means fewer parameters, or as many and less training (fewer epochs). Slim stops when nothing
smaller reaches the target, or at the trial or time budget (sizing runs are not counted).

Every trial is a ledger line in its own run directory (`.mutator/<stem>-slim/`, or `slim/` in a
tune's run directory for `tune --then-slim`); a killed run resumes from the ledger
(`slim_state`), and nothing it finished is trained again. The run's smallest script is best.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mutator import api
from mutator.engine.candidate import Candidate
from mutator.errors import MutatorError, UsageError
from mutator.search.config import TuneSettings, parallel_trials
from mutator.search.decide import last_history, measured, now
from mutator.search.hillclimb import Reporter
from mutator.search.ledger import Ledger, TrialRecord, sha256
from mutator.search.rounds import run_round
from mutator.search.slim_state import (
    ACCEPTED,
    BASELINE,
    MISSED,
    REACHED,
    REFUSED,
    SIZED,
    SlimState,
    Step,
    next_step,
)
from mutator.search.starts import place_inputs, trial_spec
from mutator.search.state import address_key
from mutator.training.budget import TrialBudget
from mutator.training.runner import Runner, TrialResult
from rules import SHRINK_ORDER, Rule, rule_class

# A trade (a smaller model trained longer) may take the epochs up to this many times those of
# the script slim starts from: a smaller model is not worth any training time.
TRADE_EPOCHS = 4
TRADE_FACTORS = (2, 4)  # a trade's epochs: twice, then (when twice fell short) four times

REASONS = {
    "smallest": "nothing smaller reaches the target",
    "max_trials": "trial budget spent",
    "time_budget": "time budget spent",
}


class TargetNotReachedError(MutatorError):
    """The script slim starts from does not reach its target: there is nothing to keep."""

    exit_code = 1


@dataclass(frozen=True)
class SlimOutcome:
    reason: str  # smallest | max_trials | time_budget
    state: SlimState
    records: list[TrialRecord]
    run_dir: Path

    @property
    def baseline(self) -> TrialRecord | None:
        return next((r for r in self.records if r.decision == BASELINE), None)

    @property
    def best(self) -> TrialRecord | None:
        return next((r for r in self.records if r.id == self.state.best_id), None)


@dataclass(frozen=True)
class _Trial:
    """One trial of a wave: what it trains, as what, and (for a candidate) its change."""

    id: int
    kind: str  # baseline | size | train | confirm
    source: str
    description: str
    candidate: Candidate | None = None
    diff: str = ""
    replay: TrialRecord | None = None  # a confirm: the run it trains again
    seed_offset: int = 0

    @property
    def address(self) -> dict:
        if self.replay is not None:
            return self.replay.address
        if self.candidate is None:
            return {"rule": None, "site": None, "params": {}}
        return self.candidate.address()


class Slim:
    """The descent; `run()` goes on from whatever the ledger holds."""

    def __init__(
        self,
        script: Path,
        source: str,
        ledger: Ledger,
        runner: Runner,
        settings: TuneSettings,
        reporter: Reporter,
        model_name: str | None = None,
    ) -> None:
        if settings.goal.target is None:
            raise UsageError("slim needs --target: the metric every smaller model must reach")
        self.script = script
        self.source = source
        self.ledger = ledger
        self.runner = runner
        self.settings = settings
        self.reporter = reporter
        self.model_name = model_name
        self.target: float = settings.goal.target
        self.parallel = parallel_trials(settings)
        own = {k: v for k, v in settings.climb.rule_settings.items() if k in SHRINK_ORDER}
        self.rules: list[Rule] = api.rules_named(SHRINK_ORDER, own)
        self.longer = self._longer_training(source)

    def _longer_training(self, source: str) -> Rule | None:
        """`more_epochs` at x2, capped at `TRADE_EPOCHS` times the epochs of the script slim
        starts from; None when they are not a number written in the script."""
        try:
            site = api.Script.from_text(source, self.script, self.model_name).view.epochs
        except MutatorError:
            return None
        own = site.value if site is not None else None
        if not isinstance(own, int) or own < 1:
            return None
        return replace(
            rule_class("more_epochs")(), factor=2, max_epochs=TRADE_EPOCHS * own, own_epochs=own
        )

    # -- state -------------------------------------------------------------------------------
    def rebuild(self, records: Sequence[TrialRecord]) -> SlimState:
        state = SlimState(best_source=self.source)
        for record in records:
            if record.decision == BASELINE:
                state.mode = self._mode_of(record)
            source = None
            if record.decision in (BASELINE, ACCEPTED):
                source = self._trial_source(record)
            state.absorb(record, source)
        return state

    def _mode_of(self, record: TrialRecord) -> str:
        return self.ledger.trial_mode(record, self.settings.goal.mode)

    def _trial_source(self, record: TrialRecord) -> str:
        return self.ledger.trial_source(record, self.script.name)

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> SlimOutcome:
        records = self.ledger.records()
        state = self.rebuild(records)
        if records:
            self.reporter.message(f"resuming: {len(records)} trial(s) done")
            self._check_baseline(state, records[0])  # a run that was refused stays refused
        while True:
            if state.best_id is None:
                records += self._baseline(state, len(records) + 1)
                continue
            reason = self._stop_reason(state)
            if reason is not None:
                return SlimOutcome(reason, state, records, self.ledger.root)
            # the candidates' edits belong to this parse of the best: they are rewritten on it
            script = api.Script.from_text(state.best_source, self.script, self.model_name)
            step = next_step(state, self._proposals(script, state), self.parallel)
            if step.kind == "done":
                return SlimOutcome("smallest", state, records, self.ledger.root)
            records += self._wave(state, self._trials(script, state, step, len(records) + 1))

    def _stop_reason(self, state: SlimState) -> str | None:
        if state.trials >= self.settings.budget.max_trials:
            return "max_trials"
        budget = self.settings.budget.time_budget
        if budget is not None and state.seconds >= budget:
            return "time_budget"
        return None

    def _baseline(self, state: SlimState, trial_id: int) -> list[TrialRecord]:
        trial = _Trial(trial_id, "baseline", self.source, "baseline: the script to slim")
        (record,) = self._wave(state, [trial])
        self._check_baseline(state, record)
        return [record]

    def _check_baseline(self, state: SlimState, record: TrialRecord) -> None:
        """TargetNotReachedError unless the script as given reached the target, counted."""
        if record.status != "ok" or not state.reaches(record.value, self.target):
            got = f"{record.value:.4f}" if record.value is not None else record.status
            raise TargetNotReachedError(
                f"the script reaches {got}, not the target {self.target}: slim starts from a "
                f"script that reaches it (`mutate tune` first); see "
                f"{self.ledger.trial_dir(record.id) / 'log.txt'}"
            )
        if record.parameters is None:
            raise TargetNotReachedError(
                "the script's model could not be counted (no Keras model was trained): "
                "slim needs its size"
            )

    def _proposals(self, script: api.Script, state: SlimState) -> list[Candidate]:
        """Every shrinking change on the best script: the whole model narrower first, then
        each rule's, in `SHRINK_ORDER`, then the trades (`_trades`)."""
        found: list[Candidate] = []
        narrowing: list[Candidate] = []
        for rule in self.rules:
            mine = [p for p in api.propose(script, [rule]) if isinstance(p, Candidate)]
            found += mine
            if getattr(rule, "narrows", False):
                narrowing += mine
        narrower = api.joint_all(script, narrowing)
        found = [narrower, *found] if narrower is not None else found
        return found + self._trades(script, state, found)

    def _trades(
        self, script: api.Script, state: SlimState, found: Sequence[Candidate]
    ) -> list[Candidate]:
        """Each change that fell short of the target on this best, again with twice the
        epochs, and, when that fell short too, four times: a smaller model trained longer (a
        model tune stopped at the target has no slack: GRU(256) at 8 epochs reached 0.956,
        GRU(128) 0.947 and, at 16 epochs, 0.96)."""
        trades = []
        for candidate in found:
            if not state.missed_here(address_key(candidate.address())):
                continue
            for factor in TRADE_FACTORS:
                trade = self._trade(script, candidate, factor)
                if trade is None:
                    break
                trades.append(trade)
                if not state.missed_here(address_key(trade.address())):
                    break  # not tried yet, or it reached the target: no longer one yet
        return trades

    def _trade(self, script: api.Script, candidate: Candidate, factor: int) -> Candidate | None:
        """`candidate` with the epochs times `factor` (within the cap), or None."""
        if self.longer is None:
            return None
        rule = replace(self.longer, factor=factor)  # type: ignore[type-var]
        longer = [p for p in api.propose(script, [rule]) if isinstance(p, Candidate)]
        return api.joint(script, candidate, longer[0]) if longer else None

    def _trials(
        self, script: api.Script, state: SlimState, step: Step, first_id: int
    ) -> list[_Trial]:
        trials: list[_Trial] = []
        if step.confirm is not None:
            first = step.confirm
            trials.append(
                _Trial(
                    first_id,
                    "confirm",
                    (self.ledger.trial_dir(first.id) / self.script.name).read_text("utf-8"),
                    f"confirm: trial {first.id}'s change with every seed moved ({first.description})",
                    diff=first.diff,
                    replay=first,
                    seed_offset=state.confirms + 1,
                )
            )
        kind = "size" if step.kind == "size" else "train"
        for candidate in step.candidates:
            rewrite = api.rewrite(script, candidate)
            label = "size: " if kind == "size" else ""
            trials.append(
                _Trial(
                    first_id + len(trials),
                    kind,
                    rewrite.source,
                    label + candidate.description,
                    candidate,
                    rewrite.diff,
                )
            )
        return trials

    # -- one wave ----------------------------------------------------------------------------
    def _wave(self, state: SlimState, trials: Sequence[_Trial]) -> list[TrialRecord]:
        wave = max(state.waves, default=0) + 1
        specs, starts = [], []
        for trial in trials:
            folder = self.ledger.trial_dir(trial.id)
            resumed = (folder / self.script.name).exists()
            meta = {"id": trial.id, "parent": state.best_id, "round": wave, **trial.address}
            folder = self.ledger.prepare_trial(trial.id, self.script.name, trial.source, meta)
            sizing = trial.kind == "size"  # a budget of 0: built, counted, stopped, no epoch
            place_inputs(folder, budget=TrialBudget(max_params=0) if sizing else None)
            if not sizing:
                self.reporter.trial_started(trial.id, trial.description, resumed)
            specs.append(
                trial_spec(
                    self.script,
                    self.ledger,
                    state.seconds,
                    folder,
                    self.settings,
                    len(trials),
                    False,
                    trial.seed_offset,
                )
            )
            starts.append(now())

        def settles(index: int, result: TrialResult) -> bool:
            """A confirm at the target decides the wave: what trains beside it is moot."""
            return trials[index].kind == "confirm" and (
                result.ok and state.reaches(result.value, self.target)
            )

        outcomes, _ = run_round(
            self.runner, specs, self.settings.budget.retries, self.reporter.message, settles
        )
        # every trial of the wave is judged against the best it was proposed on, before a
        # confirm that held makes its change the best
        records, sources = [], []
        for trial, outcome, started in zip(trials, outcomes, starts, strict=True):
            if outcome.result.status == "cancelled":
                continue  # cut short by the confirm: nothing learnt, trained again if needed
            records.append(
                self._record(state, trial, outcome.result, outcome.restarts, started, wave)
            )
            sources.append(trial)
        for record, trial in zip(records, sources, strict=True):
            self.ledger.append(record)
            state.absorb(record, trial.source if record.decision in (BASELINE, ACCEPTED) else None)
            if record.decision == BASELINE:
                state.mode = self._mode_of(record)
            if record.decision in (BASELINE, ACCEPTED):
                self.ledger.save_best(trial.source, record.id)
            if trial.kind != "size":
                self.reporter.trial_finished(record)
            else:
                self.reporter.message(_sized_line(record))
        return records

    def _record(
        self,
        state: SlimState,
        trial: _Trial,
        result: TrialResult,
        restarts: int,
        started: str,
        wave: int,
    ) -> TrialRecord:
        error = result.error
        draft = TrialRecord(
            id=trial.id,
            parent=state.best_id,
            rule=trial.address["rule"],
            site=trial.address["site"],
            params=trial.address["params"],
            description=trial.description,
            sha256=sha256(trial.source),
            diff=trial.diff,
            status=result.status,
            value=result.value if result.ok else None,
            decision="",
            best_after=None,
            seconds=round(result.seconds, 3),
            started=started,
            finished=now(),
            restarts=restarts,
            error=error,
            history=last_history(result),
            start="cold",
            start_reason="slim: every smaller model is judged from scratch",
            round=wave,
            also=self._also(trial),
            seed_offset=trial.seed_offset,
            parameters=measured(result, "parameters", int),
            seconds_per_epoch=measured(result, "seconds_per_epoch", float),
        )
        decision = self._decision(state, trial, draft)
        status = draft.status
        if trial.kind == "size" and draft.parameters is not None:
            # stopped by its budget of 0 on purpose, once counted: sized, not over a budget
            status, error = SIZED, None
        best_after = state.best_value
        if decision in (BASELINE, ACCEPTED):
            best_after = draft.value
        return replace(
            draft, status=status, decision=decision, best_after=best_after, error=error
        )

    def _decision(self, state: SlimState, trial: _Trial, record: TrialRecord) -> str:
        if trial.kind == "baseline":
            return BASELINE
        if trial.kind == "size":
            return SIZED
        at_target = record.status == "ok" and state.reaches(record.value, self.target)
        if trial.kind == "confirm":
            return ACCEPTED if at_target else REFUSED
        return REACHED if at_target and state.smaller(record) else MISSED

    @staticmethod
    def _also(trial: _Trial) -> list[dict] | None:
        if trial.replay is not None:
            return trial.replay.also
        if trial.candidate is None or not trial.candidate.also:
            return None
        return [part.address() for part in trial.candidate.also]


def _sized_line(record: TrialRecord) -> str:
    """`trial 3 sized: 4,810 parameters (layer 1 (Dense(128)): removed)`, or why it could not be."""
    change = record.description.removeprefix("size: ")
    if record.parameters is None:
        return f"trial {record.id} does not build: {record.error} ({change})"
    return f"trial {record.id} sized: {record.parameters:,} parameters ({change})"


def summarise(outcome: SlimOutcome, target: float) -> str:
    """One paragraph: why it stopped, the size and metric before and after, what it cost."""
    baseline, best, state = outcome.baseline, outcome.best, outcome.state
    if baseline is None or best is None:
        return f"{REASONS[outcome.reason]}: no trial finished"
    before, after = baseline.parameters or 0, best.parameters or 0
    times = f" ({before / after:.1f}x smaller)" if after and before != after else ""
    metric = f"{baseline.value:.4f} -> {best.value:.4f}" if best.value is not None else ""
    trained = state.trials
    return (
        f"{REASONS[outcome.reason]} (target {target}): {before:,} -> {after:,} parameters"
        f"{times}, {metric} (every accepted model reached the target twice from scratch, "
        f"the second time with every seed moved); {trained} trial(s) trained and "
        f"{state.sized} sized, {state.accepted} change(s) accepted, {state.seconds:.0f}s"
    )


def slim_dir_for(script: Path, workdir: Path | None) -> Path:
    """`.mutator/<stem>-slim/` beside the script, or the folder the user named."""
    return (
        workdir
        if workdir is not None
        else script.resolve().parent / ".mutator" / (f"{script.stem}-slim")
    )


def slim(
    script: Path,
    settings: TuneSettings,
    reporter: Reporter,
    workdir: Path | None = None,
    fresh: bool = False,
    model_name: str | None = None,
    runner: Runner | None = None,
    source: str | None = None,
) -> SlimOutcome:
    """`mutate slim` as a library call: lock the run directory, descend, write the report.

    `source` is the script to slim when it is not `script`'s own text (`tune --then-slim`
    slims best.py under the user's script's name, so its imports and paths still work).
    """
    from mutator.search.report import write_report
    from mutator.search.runners import make_runner

    text = source if source is not None else script.read_text(encoding="utf-8")
    checked = api.Script.from_text(text, script, model_name)  # fail now, before any training
    ledger = Ledger(slim_dir_for(script, workdir))
    if fresh and (aside := ledger.move_aside()) is not None:
        reporter.message(f"previous run moved to {aside}")
    own_runner = runner is None
    with ledger.lock():
        runner = runner or make_runner(settings, script)
        try:
            ledger.start(
                {
                    "script": str(script.resolve()),
                    "script_sha256": sha256(text),
                    "model": checked.view.name,
                    "command": "slim",
                    "settings": {
                        k: list(v) if isinstance(v, tuple) else v
                        for k, v in settings.flat().items()
                    },
                }
            )
            outcome = Slim(script, text, ledger, runner, settings, reporter, model_name).run()
        finally:
            if own_runner:
                runner.close()
    summary = summarise(outcome, settings.goal.target or 0.0)
    write_report(
        ledger.root,
        script.name,
        outcome.records,
        settings.goal.target,
        summary,
        mode=outcome.state.mode,
    )
    return outcome
