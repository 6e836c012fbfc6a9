"""The climb on a script that over-fits: its baseline stopped past its peak, with a fake runner
that answers as the harness would (`peak.json` in the trial dir: stopped at epoch 25)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mutator import api
from mutator.cli.progress import PlainReporter
from mutator.search.config import TuneSettings
from mutator.search.hillclimb import HillClimb
from mutator.search.ledger import Ledger
from mutator.search.tune import summarise
from mutator.training.peak import PEAK_FILE
from mutator.training.runner import TrialResult, TrialSpec

SCRIPT = """\
import keras

model = keras.Sequential([keras.Input(shape=(10,)), keras.layers.Dense(512), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=100, validation_split=0.1)  # far too long
"""
STOP_AT, LOWEST_AT = 25, 8


class OverFittingRunner:
    """Accuracy 0.96 at 8 epochs, falling by 0.002 an epoch after; a run with `peak.json`
    stops at epoch 25, as the harness would, and says so."""

    name = "fake"

    def __init__(self) -> None:
        self.trained: list[tuple[int, bool]] = []  # (epochs asked, stopped past its peak)

    def run(self, spec: TrialSpec) -> TrialResult:
        epochs = api.Script.from_text(spec.script.read_text()).view.epochs.value
        stops = (spec.trial_dir / PEAK_FILE).exists() and epochs > 2 * STOP_AT
        trained = STOP_AT if stops else epochs
        self.trained.append((epochs, stops))
        done = range(1, trained + 1)
        curve = [3.0 - 0.2 * min(e, LOWEST_AT) + 0.05 * max(0, e - LOWEST_AT) for e in done]
        falling = [2.0 / e for e in range(1, trained + 1)]  # it learns its training data
        value = round(0.96 - 0.002 * max(0, trained - LOWEST_AT), 4)
        metrics = {
            "status": "ok",
            "value": value,
            "metric": "accuracy",
            "mode": "max",
            "history": [{"initial_epoch": 0, "epochs": {"loss": falling, "val_loss": curve}}],
            "past_peak": {
                "key": "val_loss",
                "epoch": trained,
                "planned": epochs,
                "best_epoch": LOWEST_AT,
                "value": curve[-1],
                "best": min(curve),
            }
            if stops
            else None,
        }
        (spec.trial_dir / "metrics.json").write_text(json.dumps(metrics))
        return TrialResult("ok", value, "accuracy", "max", 0.01, 0, None, metrics)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return path


def climb(script: Path, runner: OverFittingRunner, **settings):
    ledger = Ledger(script.parent / ".mutator" / script.stem)
    settings = {"rules": ("fewer_epochs", "more_epochs"), "adaptive_steps": False, **settings}
    tune = TuneSettings.of(**settings)
    return HillClimb(script, ledger, runner, tune, PlainReporter()).run(), ledger, tune


@pytest.mark.parametrize("parallel", [1, 2])
def test_the_stopped_baseline_leads_to_its_best_epoch_and_the_target_from_scratch(
    script, parallel
):
    runner = OverFittingRunner()
    outcome, ledger, settings = climb(
        script, runner, parallel=parallel, target=0.95, max_trials=6, noise_runs=1
    )
    records = ledger.records()
    assert [r.decision for r in records[:2]] == ["baseline", "noise"]
    assert all(r.past_peak["epoch"] == STOP_AT for r in records[:2])
    assert runner.trained[:2] == [(100, True), (100, True)]  # no full 100-epoch run at all
    cut = next(r for r in records if r.decision == "accepted")
    assert cut.rule == "fewer_epochs" and cut.params == {"epochs": [100, LOWEST_AT]}
    assert outcome.reason == "target" and outcome.state.best_value == 0.96
    assert all(not stopped for _, stopped in runner.trained[2:])  # changes train to their end
    assert "0.9260 (stopped at epoch 25 of 100) -> 0.9600" in summarise(outcome, settings)


def test_a_stopped_best_at_the_target_is_not_called_reached_and_is_confirmed_at_the_end(script):
    """Nothing to change (more epochs only): the script is retrained to its last epoch before
    the search ends, and its own value is the one reported."""
    runner = OverFittingRunner()
    outcome, ledger, settings = climb(
        script, runner, parallel=1, target=0.9, max_trials=2, rules=("more_epochs",)
    )
    decisions = [r.decision for r in ledger.records()]
    assert decisions[0] == "baseline" and decisions[-1] == "confirm"
    assert runner.trained[-1] == (100, False)
    assert outcome.state.best_confirmed and outcome.state.best_value == 0.776
    assert outcome.reason != "target"


def test_no_peak_stop_trains_the_script_as_given_to_its_last_epoch(script):
    runner = OverFittingRunner()
    climb(script, runner, parallel=2, target=0.95, max_trials=3, noise_runs=1, peak_stop=False)
    assert runner.trained[:2] == [(100, False), (100, False)]
