"""A change from scratch stops at the target and its script keeps the epochs it trained: which
trials are watched, the cut itself, and a climb with a fake runner that stops as the harness
would (`target.json` in the trial dir)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mutator import api
from mutator.cli.progress import PlainReporter, describe
from mutator.search.config import TuneSettings
from mutator.search.decide import Planned
from mutator.search.hillclimb import HillClimb
from mutator.search.ledger import Ledger, sha256
from mutator.search.target_cut import cut, stop_for
from mutator.search.tune import summarise
from mutator.training.at_target import TARGET_FILE, TargetStop
from mutator.training.runner import TrialResult, TrialSpec
from mutator.training.warm_plan import WarmPlan

SCRIPT = """\
import keras

EPOCHS = 5  # a first try
model = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(4), keras.layers.Dense(10)])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=EPOCHS, validation_split=0.1)
loss, acc = model.evaluate(x_test, y_test)
"""
LONGER = SCRIPT.replace("EPOCHS = 5", "EPOCHS = 40")


def planned(source: str = LONGER, **fields) -> Planned:
    return Planned(**{"id": 3, "kind": "candidate", "source": source, "description": "x", **fields})


def settings(**flat) -> TuneSettings:
    return TuneSettings.of(**{"target": 0.95, **flat})


def test_a_change_from_scratch_with_epochs_the_engine_can_cut_is_watched(tmp_path):
    script = tmp_path / "train.py"
    plan = stop_for(planned(), settings(), "max", script, None)
    assert plan == TargetStop(target=0.95, mode="max", metric=None, epochs=40)
    named = stop_for(planned(), settings(metric="mae", target=48.0), "min", script, None)
    assert named == TargetStop(target=48.0, mode="min", metric="mae", epochs=40)
    confirm = stop_for(planned(kind="confirm"), settings(), "max", script, None)
    assert confirm == plan  # the best's script from scratch
    baseline = stop_for(planned(kind="baseline"), settings(), "auto", script, None)
    assert baseline == TargetStop(target=0.95, mode="auto", metric=None, epochs=40)


@pytest.mark.parametrize(
    ("item", "flat"),
    [
        (planned(kind="noise"), {}),  # a measure of the best's script as it is
        (planned(kind="final"), {}),
        (planned(warm=WarmPlan("continue", 2, "w.keras", epochs_done=5)), {}),  # an estimate
        (planned(), {"target_stop": False}),
        (planned(), {"target": None}),
        (planned(), {"metric_regex": r"acc (\S+)"}),  # the metric is printed, not evaluate's
        (planned(), {"select_on": "validation"}),
        (planned(), {"metric": "val_accuracy"}),
        (planned(LONGER.replace("EPOCHS = 40", "EPOCHS = 4 * 10")), {}),  # computed: not cut
        (planned(LONGER.replace("EPOCHS = 40", "EPOCHS = 1")), {}),  # nothing to cut
        (planned(LONGER + "schedule = EPOCHS * 10\n"), {}),  # something else reads them
    ],
)
def test_anything_else_trains_every_epoch_it_asks_for(tmp_path, item, flat):
    assert stop_for(item, settings(**flat), "max", tmp_path / "train.py", None) is None


def test_a_trial_stopped_at_the_target_becomes_the_script_with_the_epochs_it_trained(tmp_path):
    folder = tmp_path / "trials" / "0003"
    folder.mkdir(parents=True)
    (folder / "train.py").write_text(LONGER)
    stopped = {"epoch": 13, "planned": 40, "key": "accuracy", "value": 0.9528, "evaluations": 9}
    item = planned(description="epochs 5 -> 40")
    kept = cut(item, {"at_target": stopped}, SCRIPT, tmp_path / "train.py", folder, None)
    assert kept.source == SCRIPT.replace("EPOCHS = 5", "EPOCHS = 13")
    assert (folder / "train.py").read_text() == kept.source  # what the folder says it trained
    assert "-EPOCHS = 5  # a first try\n+EPOCHS = 13  # a first try" in kept.diff
    assert kept.description == (
        "epochs 5 -> 40; epochs 40 -> 13, where it met the target (accuracy 0.9528)"
    )
    assert replace(kept, source=item.source, diff=item.diff, description=item.description) == item
    for metrics in (None, {"at_target": None}, {"status": "ok"}):
        assert cut(item, metrics, SCRIPT, tmp_path / "train.py", folder, None) is item


class StopsAtTheTarget:
    """The curve of a Dense layer of `units`: accuracy 0.3 + 0.002 x units x epochs, capped at
    0.99; a trial with `target.json` stops at the first epoch at its target, as the harness
    would, and its value is that epoch's."""

    name = "fake"

    def __init__(self, seconds: float = 0.01) -> None:
        self.trained: list[tuple[int, int, bool]] = []  # (units, epochs trained, watched)
        self.seconds = seconds  # what each trial says it took: over warm_after, children warm

    def run(self, spec: TrialSpec) -> TrialResult:
        view = api.Script.from_text(spec.script.read_text()).view
        epochs = view.epochs.value
        units = int(spec.script.read_text().split("keras.layers.Dense(")[1].split(")")[0])
        plan = TargetStop.read(spec.trial_dir)
        warm = (spec.trial_dir / "warm.json").exists()
        curve = [min(0.99, 0.3 + 0.002 * units * e) for e in range(1, epochs + 1)]
        at = next((e for e, v in enumerate(curve, 1) if plan and plan.reached(v)), None)
        trained = at if at is not None and at < epochs else epochs
        self.trained.append((units, trained, plan is not None))
        value = round(curve[trained - 1], 4)
        (spec.trial_dir / "model.keras").write_text("weights")  # for a child to start from
        metrics = {
            "status": "ok",
            "value": value,
            "metric": "accuracy",
            "mode": "max",
            "seconds": self.seconds,
            "start": {"mode": "warm" if warm else "cold"},
            "history": [{"initial_epoch": 0, "epochs": {"accuracy": curve[:trained]}}],
            "at_target": {
                "epoch": trained,
                "planned": epochs,
                "key": "accuracy",
                "value": value,
                "evaluations": trained,
            }
            if trained < epochs
            else None,
        }
        (spec.trial_dir / "metrics.json").write_text(json.dumps(metrics))
        return TrialResult("ok", value, "accuracy", "max", 0.01, 0, None, metrics)


@pytest.mark.parametrize("target_stop", [True, False])
def test_the_climb_keeps_the_change_with_the_epochs_it_needed_and_ends_at_the_target(
    tmp_path, target_stop
):
    script = tmp_path / "train.py"
    script.write_text(LONGER)  # Dense(4) for 40 epochs: 0.62; Dense(8): 0.94; Dense(16): 0.95 at 21
    runner = StopsAtTheTarget()
    ledger = Ledger(tmp_path / ".mutator" / "train")
    tune = TuneSettings.of(
        target=0.95,
        max_trials=6,
        parallel=1,
        noise_runs=0,
        rules=("wider_dense",),
        adaptive_steps=False,
        warm_start=False,
        target_stop=target_stop,
    )
    outcome = HillClimb(script, ledger, runner, tune, PlainReporter()).run()
    assert outcome.reason == "target"
    baseline, *changes = ledger.records()
    assert (ledger.trial_dir(baseline.id) / TARGET_FILE).exists() == target_stop
    change = changes[-1]
    assert change.decision == "accepted" and change.params == {"units": [8, 16]}
    if target_stop:
        assert runner.trained == [(4, 40, True), (8, 40, True), (16, 21, True)]
        assert "EPOCHS = 21  # a first try" in outcome.state.best_source
        assert change.value == 0.972
        assert change.description.endswith(
            "epochs 40 -> 21, where it met the target (accuracy 0.972)"
        )
        assert (ledger.root / "best.py").read_text() == outcome.state.best_source
    else:
        assert runner.trained == [(4, 40, False), (8, 40, False), (16, 40, False)]
        assert "EPOCHS = 40" in outcome.state.best_source and change.value == 0.99


def test_a_warm_best_is_confirmed_from_scratch_up_to_the_epoch_it_met_the_target(tmp_path):
    """Trials that take 10 s have warm children: their values are estimates, and the best's
    confirm is the run from scratch that stops at the target; the cut script is the best."""
    script = tmp_path / "train.py"
    script.write_text(LONGER)
    runner = StopsAtTheTarget(seconds=10.0)
    ledger = Ledger(tmp_path / ".mutator" / "train")
    tune = TuneSettings.of(
        target=0.95, max_trials=6, parallel=1, noise_runs=0, rules=("wider_dense",)
    )
    outcome = HillClimb(script, ledger, runner, tune, PlainReporter()).run()
    records = ledger.records()
    assert [(r.decision, r.start) for r in records] == [
        ("baseline", "cold"),
        ("accepted", "warm"),  # Dense(32), an estimate: 0.99
        ("confirm", "cold"),
    ]
    assert runner.trained[-1] == (32, 11, True)  # 0.94 after 10 epochs, 0.99 after 11
    confirm = records[-1]
    assert confirm.value >= 0.95 and outcome.reason == "target"
    assert "EPOCHS = 11  # a first try" in outcome.state.best_source
    assert confirm.description.endswith("epochs 40 -> 11, where it met the target (accuracy 0.99)")
    assert (ledger.root / "best.py").read_text() == outcome.state.best_source
    rebuilt = HillClimb(script, ledger, runner, tune, PlainReporter()).rebuild(
        LONGER, ledger.records()
    )
    assert rebuilt.best_source == outcome.state.best_source and rebuilt.best_confirmed


def test_a_script_as_given_that_meets_the_target_early_ends_the_search_with_its_epochs_cut(
    tmp_path,
):
    script = tmp_path / "train.py"
    script.write_text(LONGER.replace("Dense(4)", "Dense(64)"))  # 0.94 at epoch 5, 0.99 at 6
    runner = StopsAtTheTarget()
    ledger = Ledger(tmp_path / ".mutator" / "train")
    tune = TuneSettings.of(target=0.95, max_trials=6, parallel=2, noise_runs=1)
    outcome = HillClimb(script, ledger, runner, tune, PlainReporter()).run()
    assert [r.decision for r in ledger.records()] == ["baseline", "noise"]
    assert runner.trained == [(64, 6, True), (64, 40, False)]  # the noise run is not cut
    assert outcome.reason == "target" and outcome.state.best_value == 0.99
    assert "EPOCHS = 6  # a first try" in outcome.state.best_source
    assert (ledger.root / "best.py").read_text() == outcome.state.best_source
    baseline = ledger.records()[0]
    assert baseline.at_target["epoch"] == 6 and baseline.sha256 == sha256(outcome.state.best_source)
    assert describe(baseline).endswith(
        "at the target after epoch 6 of 40: accuracy 0.99: its script keeps those epochs)"
    )
    said = summarise(outcome, tune)
    assert "0.9900 (epochs cut to 6, where it met the target) -> 0.9900 in 1 trial(s) + 1" in said
    rebuilt = HillClimb(script, ledger, runner, tune, PlainReporter()).rebuild(
        script.read_text(), ledger.records()
    )
    assert rebuilt.best_source == outcome.state.best_source
