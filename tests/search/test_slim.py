"""`mutate slim`'s descent, with a fake runner that scores and sizes a script from its text.

The fake's MLP reaches 0.96 while its first hidden layer keeps 16 units and it trains 4 epochs
or more, 0.90 below that; at 8 units it is lucky once (0.96 at the script's own seed, 0.90 with
the seeds moved), so its confirm must refuse it. Its parameters are a Dense chain's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mutator import api
from mutator.cli.progress import PlainReporter
from mutator.errors import UsageError
from mutator.search.config import TuneSettings
from mutator.search.ledger import Ledger
from mutator.search.slim import Slim, TargetNotReachedError, slim_dir_for, summarise
from mutator.training.budget import BUDGET_FILE
from mutator.training.runner import TrialResult, TrialSpec

SCRIPT = """\
from keras.models import Sequential
from keras.layers import Dense

model = Sequential()
model.add(Dense(128, activation='relu', input_dim=64))
model.add(Dense(64, activation='relu'))
model.add(Dense(10, activation='softmax'))
model.fit(x, y, epochs=16)
"""


class FakeRunner:
    name = "fake"

    def __init__(self) -> None:
        self.trained: list[str] = []
        self.sized: list[str] = []

    def run(self, spec: TrialSpec) -> TrialResult:
        text = spec.script.read_text()
        view = api.Script.from_text(text).view
        units = [layer.int_arg(0, "units") for layer in view.layers_of({"Dense"})]
        epochs = view.epochs.value
        parameters, width = 0, 64
        for unit in units:
            parameters += width * unit + unit
            width = unit
        budget = spec.trial_dir / BUDGET_FILE
        if budget.exists() and json.loads(budget.read_text()).get("max_params") == 0:
            self.sized.append(text)
            metrics = {"status": "over_budget", "parameters": parameters, "history": []}
            return self._result(spec, "over_budget", None, metrics, "over budget")
        self.trained.append(text)
        offset = int(spec.env.get("MUTATOR_SEED_OFFSET", "0"))
        value = 0.96 if self.good(units, epochs, offset) else 0.90
        metrics = {
            "status": "ok",
            "value": value,
            "metric": "accuracy",
            "mode": "max",
            "parameters": parameters,
            "seconds_per_epoch": parameters / 1e6,
            "history": [{"initial_epoch": 0, "epochs": {"loss": [1.0] * epochs}}],
        }
        (spec.trial_dir / "metrics.json").write_text(json.dumps(metrics))
        return self._result(spec, "ok", value, metrics)

    def good(self, units: list[int], epochs: int, offset: int) -> bool:
        first = units[0]
        return (first >= 16 or (first == 8 and offset == 0)) and epochs >= 4

    @staticmethod
    def _result(spec, status, value, metrics, error=None) -> TrialResult:
        return TrialResult(
            status=status,
            value=value,
            metric="accuracy",
            mode="max",
            seconds=0.01,
            returncode=0,
            log_path=spec.trial_dir / "log.txt",
            metrics=metrics,
            error=error,
        )


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return path


def slim(script: Path, runner: FakeRunner, **settings):
    ledger = Ledger(slim_dir_for(script, None))
    settings = {"parallel": 2, "target": 0.95, "max_trials": 100, **settings}
    search = Slim(
        script, script.read_text(), ledger, runner, TuneSettings.of(**settings), PlainReporter()
    )
    return search.run(), ledger


def test_slim_walks_down_to_the_smallest_script_that_reaches_the_target(script):
    outcome, ledger = slim(script, FakeRunner())
    assert outcome.reason == "smallest"
    best = ledger.best_script.read_text()
    # the first layer keeps the 16 units the fake needs, the second is down to the floor of
    # 2 units (removing it would feed 16 into the output: more), 4 epochs: 1040 + 34 + 30
    assert outcome.best.parameters == 1104 < outcome.baseline.parameters == 17226
    assert "Dense(16, activation='relu', input_dim=64)" in best and "epochs=4" in best
    assert "Dense(2, activation='relu')" in best


def test_every_kept_change_reached_the_target_twice_the_second_time_with_other_seeds(script):
    outcome, ledger = slim(script, FakeRunner())
    records = ledger.records()
    for kept in (r for r in records if r.decision == "accepted"):
        first = [r for r in records if r.decision == "reached" and r.address == kept.address]
        assert first and first[-1].id < kept.id and first[-1].seed_offset == 0
        assert kept.seed_offset > 0 and kept.value >= 0.95


def test_a_change_that_reached_the_target_by_luck_is_refused_at_its_confirm(script):
    outcome, ledger = slim(script, FakeRunner())
    refused = [r for r in ledger.records() if r.decision == "refused"]
    assert refused and all(r.value < 0.95 for r in refused)
    assert any("-> 8" in r.description for r in refused)


def test_candidates_are_sized_before_training_and_only_smaller_ones_train(script):
    runner = FakeRunner()
    outcome, ledger = slim(script, runner)
    records = ledger.records()
    sized = [r for r in records if r.decision == "sized"]
    assert sized and all(r.parameters and r.error is None for r in sized)
    assert len(runner.sized) == len(sized)
    for record in records:
        if record.decision in ("reached", "missed") and record.parameters is not None:
            parent = next(r for r in records if r.id == record.parent)
            assert record.parameters <= parent.parameters


def test_the_baseline_must_reach_the_target(script):
    with pytest.raises(TargetNotReachedError, match="not the target 0.99"):
        slim(script, FakeRunner(), target=0.99)
    again = FakeRunner()
    with pytest.raises(TargetNotReachedError, match="not the target 0.99"):
        slim(script, again, target=0.99)  # the same command again: refused, nothing trained
    assert not again.trained and not again.sized


def test_a_target_is_required(script):
    with pytest.raises(UsageError, match="--target"):
        slim(script, FakeRunner(), target=None)


def test_a_killed_run_resumes_and_trains_nothing_twice(script):
    whole, _ = slim(script, FakeRunner())
    (script.parent / ".mutator").rename(script.parent / "whole")
    first = FakeRunner()
    stopped, _ = slim(script, first, max_trials=4)
    assert stopped.reason == "max_trials"
    second = FakeRunner()
    resumed, ledger = slim(script, second)
    assert resumed.best.parameters == whole.best.parameters
    assert not set(first.trained) & set(second.trained)
    assert len(first.trained) + len(second.trained) == whole.state.trials
    assert [r.description for r in ledger.records()] == [
        r.description for r in Ledger(script.parent / "whole" / "train-slim").records()
    ]


def test_the_summary_says_how_much_smaller(script):
    outcome, _ = slim(script, FakeRunner())
    text = summarise(outcome, 0.95)
    assert "17,226 -> 1,104 parameters (15.6x smaller)" in text
    assert "reached the target twice" in text


class LongerHelps(FakeRunner):
    """Units times epochs is what counts: a narrower layer reaches the target trained longer."""

    def good(self, units: list[int], epochs: int, offset: int) -> bool:
        return units[0] * epochs >= 128


def test_a_narrower_model_that_falls_short_comes_back_trained_twice_as_long(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        SCRIPT.replace("model.add(Dense(64, activation='relu'))\n", "")
        .replace("Dense(128,", "Dense(32,")
        .replace("epochs=16", "epochs=4")
    )
    outcome, ledger = slim(script, LongerHelps())
    best = ledger.best_script.read_text()
    # 32 units x 4 epochs -> 16 x 8 (the x2 trade) -> 4 x 32? past 4x the 4 epochs: the x4
    # trade of 16 -> 4 units stops at 16 epochs; 8 x 16 (x2 from 8) is the smallest
    assert "Dense(8, activation='relu', input_dim=64)" in best and "epochs=16" in best
    trades = [r for r in ledger.records() if r.decision == "accepted"]
    assert {r.rules_label for r in trades} == {"fewer_units+more_epochs"}
    assert not any("epochs 16 -> 32" in r.description for r in ledger.records())


def test_a_trade_that_falls_short_at_twice_the_epochs_is_tried_at_four_times(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        SCRIPT.replace("model.add(Dense(64, activation='relu'))\n", "")
        .replace("Dense(128,", "Dense(32,")
        .replace("epochs=16", "epochs=4")
    )

    class NeedsFourTimes(FakeRunner):
        def good(self, units: list[int], epochs: int, offset: int) -> bool:
            return units[0] >= 32 or (units[0] == 16 and epochs >= 16)

    outcome, ledger = slim(script, NeedsFourTimes())
    best = ledger.best_script.read_text()
    assert "Dense(16, activation='relu', input_dim=64)" in best and "epochs=16" in best
    described = [r.description for r in ledger.records() if r.decision == "missed"]
    assert any("units 32 -> 16, with epochs 4 -> 8" in d for d in described)
