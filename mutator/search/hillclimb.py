"""The hill-climb (seed 002's tweaker.py, generalised), as a state machine rebuilt from the ledger.

1. Train the script as pushed: the baseline is the best so far.
2. Propose candidates on the best source, in rule order; the first not yet refused is tried.
   When the best trial's learning curve was still rising at its last epoch, `more_epochs` goes
   first: an under-trained model gains more from training than from capacity.
3. A trial that beats the best by more than `min_improvement` is accepted, and its rule is pushed
   again; anything else is reverted and its (rule, site, params) never tried again.
4. Stop at the target, at the trial or time budget, or when nothing is left to try.
Every decision is a ledger line, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from mutator import api
from mutator.engine.candidate import Candidate
from mutator.errors import MutatorError
from mutator.search.config import TuneSettings
from mutator.search.ledger import Ledger, TrialRecord, sha256
from mutator.training.runner import Runner, TrialResult, TrialSpec


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
    mode: str = "max"
    refused: set[str] = field(default_factory=set)  # addresses that were tried and reverted
    push_rule: str | None = None  # the rule just accepted: tried again first
    trials: int = 0
    seconds: float = 0.0


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
        return next((r for r in self.records if r.id == self.state.best_id), None)


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


def reached(value: float | None, target: float | None, mode: str) -> bool:
    if value is None or target is None:
        return False
    if mode == "max":
        return value >= target - TARGET_TOLERANCE
    return value <= target + TARGET_TOLERANCE


def still_rising(history: dict[str, list[float]], mode: str, margin: float) -> bool:
    """True when the validation (else training) curve was still improving at the last epoch."""
    for key in ("val_accuracy", "val_acc", "accuracy", "acc", "val_loss", "loss"):
        curve = [v for v in history.get(key, []) if v is not None and not math.isnan(v)]
        if not curve:
            continue
        if len(curve) == 1:
            return True  # one epoch says nothing of convergence: it is surely not converged
        sign = -1 if key.endswith("loss") else 1
        return sign * (curve[-1] - curve[-2]) > margin
    return False


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

    # -- state -------------------------------------------------------------------------------
    def rebuild(self, original: str, records: Sequence[TrialRecord]) -> SearchState:
        state = SearchState(best_source=original)
        for record in records:
            state.trials += 1
            state.seconds += record.seconds
            if record.decision == "baseline":
                if record.status != "ok":
                    continue  # a failed baseline (e.g. killed by the OOM killer) is run again
                state.best_id, state.best_value = record.id, record.value
                state.best_history = record.history
                state.mode = self._mode_of(record)
            elif record.decision == "accepted":
                state.best_source = self._trial_source(record)
                state.best_id, state.best_value = record.id, record.value
                state.best_history = record.history
                state.push_rule = record.rule
            else:
                state.refused.add(address_key(record.address))
                state.push_rule = None
        return state

    def _mode_of(self, record: TrialRecord) -> str:
        if self.settings.mode != "auto":
            return self.settings.mode
        metrics_file = self.ledger.trial_dir(record.id) / "metrics.json"
        if metrics_file.exists():
            mode = json.loads(metrics_file.read_text(encoding="utf-8")).get("mode")
            if mode in ("max", "min"):
                return mode
        return "max"

    def _trial_source(self, record: TrialRecord) -> str:
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
            reason = self._stop_reason(state)
            if reason:
                return Outcome(reason, state, records, self.ledger.root)
            if state.best_id is None:
                record = self._trial(state, None, original, len(records) + 1)
                if record.status != "ok":
                    records.append(record)
                    raise BaselineFailedError(
                        f"the script as given does not train ({record.status}: {record.error}); "
                        f"see {self.ledger.trial_dir(record.id) / 'log.txt'}"
                    )
            else:
                chosen = self._next_candidate(state)
                if chosen is None:
                    return Outcome("exhausted", state, records, self.ledger.root)
                record = self._trial(state, chosen, None, len(records) + 1)
            records.append(record)

    def _stop_reason(self, state: SearchState) -> str | None:
        if state.best_id is not None and reached(
            state.best_value, self.settings.target, state.mode
        ):
            return "target"
        if state.trials >= self.settings.max_trials:
            return "max_trials"
        budget = self.settings.time_budget
        if budget is not None and state.seconds >= budget:
            return "time_budget"
        return None

    def _next_candidate(self, state: SearchState) -> tuple[api.Script, Candidate] | None:
        """The best script and the first candidate on it not yet refused (edits refer to it)."""
        script = api.Script.from_text(state.best_source, self.script, self.model_name)
        rules = list(self.rules)
        if self.settings.epochs_first_when_rising and still_rising(
            state.best_history, state.mode, self.settings.min_improvement
        ):
            rules.sort(key=lambda rule: rule.name != "more_epochs")
        if state.push_rule is not None:
            rules.sort(key=lambda rule: rule.name != state.push_rule)
        fresh = [
            p
            for p in api.propose(script, rules)
            if isinstance(p, Candidate) and address_key(p.address()) not in state.refused
        ]
        return (script, fresh[0]) if fresh else None

    def _trial(
        self,
        state: SearchState,
        chosen: tuple[api.Script, Candidate] | None,
        baseline: str | None,
        trial_id: int,
    ) -> TrialRecord:
        candidate = chosen[1] if chosen else None
        if chosen is None:
            assert baseline is not None
            source, diff, description = baseline, "", "baseline: the script as given"
        else:
            script, candidate = chosen
            rewrite = api.rewrite(script, candidate)
            source, diff, description = rewrite.source, rewrite.diff, candidate.description
        address = candidate.address() if candidate else {"rule": None, "site": None, "params": {}}
        folder = self.ledger.trial_dir(trial_id)
        resumed = (folder / self.script.name).exists()
        folder = self.ledger.prepare_trial(
            trial_id, self.script.name, source, {"id": trial_id, "parent": state.best_id, **address}
        )
        self.reporter.trial_started(trial_id, description, resumed)
        started = _now()
        result, restarts = self._run_with_retries(folder / self.script.name, folder, state)
        value = result.value if result.status == "ok" else None
        if candidate is None:
            decision = "baseline"
        elif result.status == "ok" and improves(
            value, state.best_value, state.mode, self.settings.min_improvement
        ):
            decision = "accepted"
        else:
            decision = "rejected"
        record = TrialRecord(
            id=trial_id,
            parent=state.best_id,
            rule=address["rule"],
            site=address["site"],
            params=address["params"],
            description=description,
            sha256=sha256(source),
            diff=diff,
            status=result.status,
            value=value,
            decision=decision,
            best_after=value if decision in ("baseline", "accepted") else state.best_value,
            seconds=round(result.seconds, 3),
            started=started,
            finished=_now(),
            resumed_from_epoch=_resumed_from(result),
            restarts=restarts,
            error=result.error,
            history=_last_history(result),
        )
        self.ledger.append(record)
        self._update(state, record, source)
        self.reporter.trial_finished(record)
        return record

    def _run_with_retries(self, script: Path, folder: Path, state: SearchState):
        restarts = 0
        remaining = None
        if self.settings.time_budget is not None:
            remaining = max(1.0, self.settings.time_budget - state.seconds)
        timeout = min(filter(None, [self.settings.trial_timeout, remaining]), default=None)
        spec = TrialSpec(
            script=script,
            trial_dir=folder,
            metric=self.settings.metric,
            mode=self.settings.mode,
            metric_regex=self.settings.metric_regex,
            timeout=timeout,
            script_args=self.settings.script_args,
            env=_seed_env(self.settings.seed),
            source_dir=self.script.resolve().parent,
        )
        started = time.monotonic()
        while True:
            result = self.runner.run(spec)
            if result.status != "crashed" or restarts >= self.settings.retries:
                break
            restarts += 1
            self.reporter.message(f"trial crashed ({result.error}); restarting from its checkpoint")
        result.seconds = time.monotonic() - started
        return result, restarts + result.restarts  # + the runner's own (e.g. `mutate monitor`'s)

    def _update(self, state: SearchState, record: TrialRecord, source: str) -> None:
        state.trials += 1
        state.seconds += record.seconds
        if record.decision == "baseline":
            if record.status == "ok":
                state.best_id, state.best_value, state.best_history = (
                    record.id,
                    record.value,
                    record.history,
                )
                state.mode = self._mode_of(record)
                self.ledger.save_best(source, record.id)
        elif record.decision == "accepted":
            state.best_source = source
            state.best_id, state.best_value, state.best_history = (
                record.id,
                record.value,
                record.history,
            )
            state.push_rule = record.rule
            self.ledger.save_best(source, record.id)
        else:
            state.refused.add(address_key(record.address))
            state.push_rule = None


def _seed_env(seed: int | None) -> dict[str, str]:
    return {} if seed is None else {"MUTATOR_SEED": str(seed), "PYTHONHASHSEED": str(seed)}


def _resumed_from(result: TrialResult) -> int:
    fits = (result.metrics or {}).get("history") or []
    return max((fit.get("initial_epoch") or 0 for fit in fits), default=0)


def _last_history(result: TrialResult) -> dict[str, list[float]]:
    fits = (result.metrics or {}).get("history") or []
    return dict(fits[-1].get("epochs") or {}) if fits else {}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"
