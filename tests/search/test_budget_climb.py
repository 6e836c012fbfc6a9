"""The size and pace budget in the climb: only candidates are held to it, and one over it is
reverted, refused and never run again (a fake runner that plays the harness: no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_search import SCRIPT, FakeRunner, WarmFakeRunner, climb

from mutator import api
from mutator.cli.progress import PlainReporter
from mutator.search.config import TuneSettings
from mutator.search.hillclimb import HillClimb
from mutator.search.starts import budget_for
from mutator.search.state import address_key
from mutator.training.budget import BUDGET_FILE, TrialBudget
from mutator.training.runner import TrialResult, TrialSpec, read_result


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return path


class BudgetRunner(FakeRunner):
    """Plays the harness with a budget: a model has 100 parameters per filter and trains 0.5 s
    an epoch; over the budget.json it finds, it stops, as the real harness does. Each trial's
    budget (None: no file) is noted by the kind of trial its description tells."""

    def __init__(self) -> None:
        super().__init__()
        self.budgets: dict[str, dict | None] = {}

    def run(self, spec: TrialSpec) -> TrialResult:
        path = spec.trial_dir / BUDGET_FILE
        budget = json.loads(path.read_text()) if path.exists() else None
        self.budgets[spec.trial_dir.name] = budget
        text = spec.script.read_text()
        filters = api.Script.from_text(text).view.layers_of({"Conv2D"})[0].int_arg(0, "filters")
        parameters = 100 * filters
        limit = (budget or {}).get("max_params")
        if limit is None or parameters <= limit:
            result = super().run(spec)
            metrics = {**result.metrics, "parameters": parameters, "seconds_per_epoch": 0.5}
        else:
            self.runs.append(text)
            error = f"over budget: {parameters:,} parameters > --max-params {limit:,}"
            metrics = {
                "status": "over_budget",
                "value": None,
                "metric": "accuracy",
                "mode": "max",
                "error": error,
                "parameters": parameters,
                "seconds_per_epoch": None,
                "over_budget": {"measure": "parameters", "value": parameters, "limit": limit},
                "history": [{"initial_epoch": 0, "epochs": {}}],
            }
        (spec.trial_dir / "metrics.json").write_text(json.dumps(metrics))
        ok = metrics["status"] == "ok"
        return read_result(spec, returncode=0 if ok else 1, seconds=0.01, log_path=None)


def test_budget_json_is_written_for_candidates_only(script):
    ledger_root = script.parent / ".mutator" / script.stem
    stale = ledger_root / "trials" / "0001"
    stale.mkdir(parents=True)
    (stale / script.name).write_text(SCRIPT)  # the baseline's folder, left by an earlier run
    TrialBudget(max_params=1).write(stale)
    runner = BudgetRunner()
    _, ledger = climb(
        script, runner, max_trials=4, max_params=5000, max_epoch_seconds=30.0, noise_runs=1,
        rules=("more_filters",),
    )  # fmt: skip
    records = ledger.records()
    assert {"baseline", "noise", "accepted", "rejected"} <= {r.decision for r in records}
    for record in records:
        budget = runner.budgets[f"{record.id:04d}"]
        if record.decision in ("baseline", "noise"):
            assert budget is None, record.id
            continue
        guess = budget.pop("max_fit_seconds")  # a candidate's: what the search had spent
        assert budget == {"max_params": 5000, "max_epoch_seconds": 30.0}, record.id
        assert (guess is None) == bool(record.rechecked), record.id


class WarmBudgetRunner(BudgetRunner, WarmFakeRunner):
    """The budget's harness, with warm starts that estimate 0.1 high (so a confirm runs)."""


def test_the_confirm_of_the_best_is_not_held_to_the_budget(script):
    runner = WarmBudgetRunner()
    _, ledger = climb(
        script, runner, target=0.8, max_trials=20, max_params=5000, rules=("more_filters",)
    )
    records = ledger.records()
    confirms = [f"{r.id:04d}" for r in records if r.decision == "confirm"]
    candidates = [f"{r.id:04d}" for r in records if r.decision in ("accepted", "rejected")]
    assert confirms and candidates
    assert all(runner.budgets[trial] is None for trial in confirms)
    assert all({**runner.budgets[trial], "max_fit_seconds": None} == {
        "max_params": 5000, "max_epoch_seconds": None, "max_fit_seconds": None,
    } for trial in candidates)  # fmt: skip


def test_without_a_budget_a_candidate_is_held_only_to_what_the_search_spent(script):
    runner = BudgetRunner()
    _, ledger = climb(script, runner, max_trials=3)
    records = ledger.records()
    spent = 0.0
    for record in records:  # one trial a round: the search's seconds are the trials' own
        budget = runner.budgets[f"{record.id:04d}"]
        if record.decision == "baseline":
            assert budget is None
        else:
            assert budget == {
                "max_params": None, "max_epoch_seconds": None, "max_fit_seconds": round(spent, 3),
            }  # fmt: skip
        spent += record.seconds
    again = script.parent / "again"
    again.mkdir()
    (again / script.name).write_text(SCRIPT)
    uncapped = BudgetRunner()
    climb(again / script.name, uncapped, max_trials=3, guess_cap=False)
    assert set(uncapped.budgets.values()) == {None}
    assert budget_for(TuneSettings()) is None
    assert budget_for(TuneSettings.of(max_params=10)) == TrialBudget(10, None)
    assert budget_for(TuneSettings.of(max_epoch_seconds=2.0).budget) == TrialBudget(None, 2.0)


def test_an_over_budget_candidate_is_rejected_refused_and_not_retried(script):
    runner = BudgetRunner()
    outcome, ledger = climb(
        script, runner, max_trials=8, max_params=1000, retries=2,
        rules=("more_filters", "more_epochs"),
    )  # fmt: skip
    records = ledger.records()
    baseline, wider, too_wide = records[:3]
    assert (baseline.parameters, baseline.seconds_per_epoch) == (400, 0.5)
    assert (wider.params, wider.decision, wider.parameters) == (
        {"filters": [4, 8]},
        "accepted",
        800,
    )
    # filters 8 -> 16 is 1,600 parameters: stopped before it trained, reverted with its reason
    assert too_wide.params == {"filters": [8, 16]}
    assert (too_wide.status, too_wide.decision, too_wide.value) == ("over_budget", "rejected", None)
    assert too_wide.error == "over budget: 1,600 parameters > --max-params 1,000"
    assert (too_wide.parameters, too_wide.seconds_per_epoch) == (1600, None)
    assert too_wide.restarts == 0  # understood, not a crash to run again
    sixteen = [text for text in runner.runs if "Conv2D(16," in text]
    assert len(sixteen) == 1  # and never proposed again
    assert any(r.rule == "more_epochs" and r.decision == "accepted" for r in records)
    assert "Conv2D(8, (3, 3)" in ledger.best_script.read_text()
    rebuilt = HillClimb(
        script, ledger, BudgetRunner(), TuneSettings.of(max_params=1000), PlainReporter()
    ).rebuild(SCRIPT, records)
    assert address_key(too_wide.address) in rebuilt.refused
    assert outcome.state.refused == rebuilt.refused


def test_a_script_over_the_budget_is_still_the_start_and_says_so(script, capsys):
    runner = BudgetRunner()
    _, ledger = climb(script, runner, max_trials=3, max_params=100, rules=("more_filters",))
    baseline, candidate = ledger.records()[:2]
    assert (baseline.status, baseline.parameters) == ("ok", 400)  # not held to it
    assert candidate.status == "over_budget"
    said = capsys.readouterr()
    assert "the script as given is over budget: 400 parameters > --max-params 100" in (
        said.out + said.err
    )
