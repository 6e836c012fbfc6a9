"""The hill-climb's decisions, with a fake runner that scores a script from its text (no training).

The fake's score rises with filters and epochs up to a point, so the tests know which changes
must be accepted, which reverted, and when the search must stop.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import Future
from pathlib import Path

import pytest

from mutator import api
from mutator.cli.progress import PlainReporter
from mutator.search.config import TuneSettings
from mutator.search.diagnosis import still_rising
from mutator.search.hillclimb import BaselineFailedError, HillClimb
from mutator.search.ledger import Ledger
from mutator.search.state import address_key
from mutator.training.runner import TrialResult, TrialSpec

SCRIPT = """\
from keras.models import Sequential
from keras.layers import Conv2D, MaxPooling2D, Flatten, Dense

model = Sequential()
model.add(Conv2D(4, (3, 3), activation='relu', input_shape=(8, 8, 1)))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Flatten())
model.add(Dense(10, activation='softmax'))
model.fit(x, y, epochs=2)
"""


class FakeRunner:
    """Scores: filters help up to 16, epochs up to 8; extra layers and kernels do nothing."""

    name = "fake"

    def __init__(self, fail_when: str | None = None, history_rising: bool = False) -> None:
        self.runs: list[str] = []
        self.fail_when = fail_when
        self.history_rising = history_rising

    def run(self, spec: TrialSpec) -> TrialResult:
        text = spec.script.read_text()
        self.runs.append(text)
        if self.fail_when and self.fail_when in text:
            return _result(spec, "failed", None, error="ValueError: boom")
        view = api.Script.from_text(text).view
        filters = view.layers_of({"Conv2D"})[0].int_arg(0, "filters")
        epochs = view.epochs.value
        score = self.score(filters, epochs)
        curve = [score - 0.1, score] if self.history_rising else [score, score]
        metrics = {  # what the harness writes last, once the trial is judged
            "status": "ok",
            "value": round(score, 4),
            "metric": "accuracy",
            "mode": "max",
            "history": [{"initial_epoch": 0, "epochs": {"val_accuracy": curve}}],
        }
        (spec.trial_dir / "metrics.json").write_text(json.dumps(metrics))
        return _result(spec, "ok", round(score, 4), metrics=metrics)

    def score(self, filters: int, epochs: int) -> float:
        return 0.5 + 0.1 * min(filters, 16) / 4 + 0.02 * min(epochs, 8)


def _result(spec, status, value, error=None, metrics=None) -> TrialResult:
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


def climb(script: Path, runner, **settings) -> tuple:
    """The plain climb (one trial at a time, fixed steps, the margin alone deciding: the fake
    is deterministic) unless the test asks otherwise."""
    ledger = Ledger(script.parent / ".mutator" / script.stem)
    settings = {"parallel": 1, "adaptive_steps": False, "noise_runs": 0, **settings}
    search = HillClimb(script, ledger, runner, TuneSettings.of(**settings), PlainReporter())
    return search.run(), ledger


def test_accepts_improvements_pushes_the_rule_and_reverts_the_rest(script):
    outcome, ledger = climb(
        script, FakeRunner(), max_trials=8, rules=("more_filters", "more_epochs")
    )
    decisions = [(r.rule, r.decision) for r in ledger.records()]
    assert decisions[:4] == [
        (None, "baseline"),
        ("more_filters", "accepted"),  # 4 -> 8
        ("more_filters", "accepted"),  # 8 -> 16: the same rule is pushed again
        ("more_filters", "rejected"),  # 16 -> 32 gains nothing: reverted
    ]
    assert decisions[4:] == [
        ("more_epochs", "accepted"),  # 2 -> 4
        ("more_epochs", "accepted"),  # 4 -> 8
        ("more_epochs", "rejected"),  # 8 -> 16 gains nothing
    ]
    assert outcome.reason == "exhausted"
    best = ledger.best_script.read_text()
    assert "Conv2D(16, (3, 3)" in best and "epochs=8" in best


def test_stops_at_the_target(script):
    outcome, ledger = climb(script, FakeRunner(), target=0.72, max_trials=20)
    assert outcome.reason == "target" and outcome.reached
    assert ledger.records()[-1].value >= 0.72


def test_stops_when_nothing_is_left(script):
    outcome, ledger = climb(script, FakeRunner(), max_trials=50, rules=("more_filters",))
    assert outcome.reason == "exhausted"
    # 4->8, 8->16 accepted; 16->32 refused; nothing else to try.
    assert len(ledger.records()) == 4


def test_the_trial_budget_counts_the_baseline(script):
    outcome, ledger = climb(script, FakeRunner(), max_trials=3)
    assert outcome.reason == "max_trials" and len(ledger.records()) == 3


def test_a_failed_trial_is_recorded_and_the_search_goes_on(script):
    outcome, ledger = climb(
        script,
        FakeRunner(fail_when="(5, 5)"),
        max_trials=10,
        rules=("larger_kernel", "more_epochs"),
    )
    records = ledger.records()
    assert (records[1].rule, records[1].status, records[1].decision) == (
        "larger_kernel",
        "failed",
        "rejected",
    )
    assert records[1].error == "ValueError: boom"
    assert any(r.rule == "more_epochs" and r.decision == "accepted" for r in records)


def test_a_failing_baseline_stops_with_a_clear_error(script):
    with pytest.raises(BaselineFailedError, match="does not train"):
        climb(script, FakeRunner(fail_when="Sequential"), max_trials=5)


def test_a_rising_curve_puts_more_epochs_first(script):
    outcome, ledger = climb(script, FakeRunner(history_rising=True), max_trials=2)
    assert ledger.records()[1].rule == "more_epochs"


def test_resume_repeats_no_finished_trial(script):
    first = FakeRunner()
    climb(script, first, max_trials=3)
    assert len(first.runs) == 3
    second = FakeRunner()
    outcome, ledger = climb(script, second, max_trials=6)
    assert len(second.runs) == 3  # only trials 4-6 ran
    assert [r.id for r in ledger.records()] == [1, 2, 3, 4, 5, 6]
    # The same decisions as one uninterrupted run.
    other = script.parent / "again" / "train.py"
    other.parent.mkdir()
    other.write_text(SCRIPT)
    _, straight = climb(other, FakeRunner(), max_trials=6)
    assert [(r.rule, r.params, r.decision) for r in straight.records()] == [
        (r.rule, r.params, r.decision) for r in ledger.records()
    ]


def test_a_changed_script_refuses_to_resume(script):
    from mutator.search.tune import tune

    tune(script, TuneSettings.of(max_trials=2, noise_runs=0), PlainReporter(), runner=FakeRunner())
    script.write_text(SCRIPT.replace("epochs=2", "epochs=3"))
    with pytest.raises(Exception, match="changed since the run"):
        tune(
            script,
            TuneSettings.of(max_trials=3, noise_runs=0),
            PlainReporter(),
            runner=FakeRunner(),
        )
    outcome = tune(
        script,
        TuneSettings.of(max_trials=2, noise_runs=0),
        PlainReporter(),
        fresh=True,
        runner=FakeRunner(),
    )
    assert len(outcome.records) == 2
    assert (script.parent / ".mutator" / "train.old1").is_dir()


def test_tune_writes_best_script_and_report(script):
    from mutator.search.tune import tune

    outcome = tune(
        script, TuneSettings.of(max_trials=4, noise_runs=0), PlainReporter(), runner=FakeRunner()
    )
    run_dir = outcome.run_dir
    assert (run_dir / "best.py").read_text() != SCRIPT
    report = (run_dir / "report.html").read_text()
    assert "Accepted changes" in report and "filters 4 -&gt; 8" in report
    assert (run_dir / "metrics.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "history, rising",
    [
        ({"val_accuracy": [0.5, 0.6]}, True),
        ({"val_accuracy": [0.6, 0.6]}, False),
        ({"val_accuracy": [0.3]}, True),
        ({"accuracy": [0.5, 0.7]}, True),
        ({"val_loss": [0.5, 0.4]}, True),
        ({}, False),
    ],
)
def test_still_rising(history, rising):
    assert still_rising(history, "max", 0.001) is rising


def test_a_float32_metric_at_the_target_counts_as_reached():
    from mutator.search.hillclimb import reached

    assert reached(0.949999988079071, 0.95, "max")  # Keras's float32 of 342/360
    assert not reached(0.9497, 0.95, "max")
    assert reached(0.2000001, 0.2, "min")


def test_the_rule_order_is_kept_when_epochs_first_is_off(script):
    settings = dict(max_trials=2, epochs_first_when_rising=False)
    outcome, ledger = climb(script, FakeRunner(history_rising=True), **settings)
    assert ledger.records()[1].rule == "more_filters"


# -- rounds: candidates side by side ------------------------------------------------------------


def test_a_round_trains_the_first_candidate_of_two_rules_and_keeps_the_better(script):
    outcome, ledger = climb(
        script, FakeRunner(), max_trials=3, parallel=2, rules=("more_filters", "more_epochs")
    )
    baseline, filters, epochs = ledger.records()
    assert (filters.rule, epochs.rule) == ("more_filters", "more_epochs")
    assert filters.round == epochs.round == 2 and baseline.round == 1
    # filters 4 -> 8 scores 0.74, epochs 2 -> 4 scores 0.68: both beat 0.64, filters wins
    assert (filters.decision, epochs.decision) == ("accepted", "rejected")
    assert epochs.beaten_by == filters.id and filters.beaten_by is None
    assert epochs.best_after == filters.value == outcome.state.best_value


def test_a_beaten_candidate_comes_back_but_a_refused_one_never(script):
    _, ledger = climb(
        script, FakeRunner(), max_trials=12, parallel=2, rules=("more_filters", "more_epochs")
    )
    records = ledger.records()
    epochs_two_to_four = [
        r for r in records if r.rule == "more_epochs" and r.params == {"epochs": [2, 4]}
    ]
    assert epochs_two_to_four[0].beaten_by is not None
    assert len(epochs_two_to_four) >= 2  # tried again on a later best, not refused
    first_refusal: dict[str, int] = {}
    for record in records:
        key = json.dumps(record.address, sort_keys=True)
        assert key not in first_refusal, f"{key} was refused at trial {first_refusal[key]}"
        if record.decision == "rejected" and record.beaten_by is None:
            first_refusal[key] = record.id


def test_a_runner_up_that_gained_near_what_the_winner_did_comes_back_next_round(script):
    _, ledger = climb(
        script, FakeRunner(), max_trials=5, parallel=2,
        rules=("more_filters", "more_epochs", "larger_kernel"),
        rule_settings={"more_epochs": {"factor": 4}},
    )  # fmt: skip
    records = ledger.records()
    # round 2: epochs 2 -> 8 scores 0.76 and wins; filters 4 -> 8 gained 0.10 of its 0.12
    assert [(r.rule, r.decision) for r in records[1:3]] == [
        ("more_filters", "rejected"),
        ("more_epochs", "accepted"),
    ]
    # round 3: the winner's rule again, then the runner-up (not the untried kernel)
    assert [(r.rule, r.params, r.round) for r in records[3:5]] == [
        ("more_epochs", {"epochs": [8, 32]}, 3),
        ("more_filters", {"filters": [4, 8]}, 3),
    ]
    assert records[4].decision == "accepted"


def test_a_beaten_change_that_gained_little_waits_for_the_untried_ones(script):
    _, ledger = climb(
        script, FakeRunner(), max_trials=5, parallel=2,
        rules=("more_filters", "more_epochs", "larger_kernel"),
    )  # fmt: skip
    records = ledger.records()
    # round 2: filters wins (+0.10), epochs 2 -> 4 gained only 0.04 of it
    assert records[2].rule == "more_epochs" and records[2].beaten_by == records[1].id
    assert [r.rule for r in records[3:5]] == ["more_filters", "larger_kernel"]


class LogScoreRunner(FakeRunner):
    """Every doubling of filters or of epochs gains the same 0.05, without a ceiling."""

    def score(self, filters: int, epochs: int) -> float:
        return 0.5 + 0.05 * math.log2(filters) + 0.05 * math.log2(epochs)


def test_the_runner_up_comes_back_at_the_step_it_was_tried_at(script):
    """Adaptive steps shrink nearer the target; the runner-up's measured change keeps its own."""
    _, ledger = climb(
        script, LogScoreRunner(), max_trials=5, parallel=2, adaptive_steps=True, target=0.96,
        rules=("more_filters", "more_epochs", "larger_kernel"),
    )  # fmt: skip
    records = ledger.records()
    # round 2, gap 0.31: both rules at x8; filters (first) and epochs both reach 0.80
    assert [(r.rule, r.params, r.step) for r in records[1:3]] == [
        ("more_filters", {"filters": [4, 32]}, 8),
        ("more_epochs", {"epochs": [2, 16]}, 8),
    ]
    assert records[2].beaten_by == records[1].id
    # round 3, gap 0.16: a new epochs step would be x4 (2 -> 8); the runner-up comes back at x8
    assert [(r.rule, r.params, r.step) for r in records[3:5]] == [
        ("more_filters", {"filters": [32, 256]}, 8),
        ("more_epochs", {"epochs": [2, 16]}, 8),
    ]


class InterruptedRunner(FakeRunner):
    """Trains the first trial of the round, then is killed while training the second."""

    def __init__(self, kill_at: int) -> None:
        super().__init__()
        self.kill_at = kill_at

    def run(self, spec: TrialSpec) -> TrialResult:
        if int(spec.trial_dir.name) == self.kill_at:
            raise KeyboardInterrupt
        return super().run(spec)


def test_a_run_killed_mid_round_loses_and_repeats_no_trial(script):
    settings = dict(max_trials=5, parallel=2, rules=("more_filters", "more_epochs"))
    with pytest.raises(KeyboardInterrupt):
        climb(script, InterruptedRunner(kill_at=3), **settings)
    ledger = Ledger(script.parent / ".mutator" / script.stem)
    assert [r.id for r in ledger.records()] == [1]  # round 2 was not decided
    assert (ledger.trial_dir(2) / "metrics.json").exists()  # but trial 2 had finished
    again = FakeRunner()
    outcome, ledger = climb(script, again, **settings)
    assert [r.id for r in ledger.records()] == [1, 2, 3, 4, 5]
    trained = [api.Script.from_text(text).view.epochs.value for text in again.runs]
    assert len(again.runs) == 3  # trials 3, 4, 5: trial 2 was read back, not trained again
    other = script.parent / "again" / "train.py"
    other.parent.mkdir()
    other.write_text(SCRIPT)
    _, straight = climb(other, FakeRunner(), **settings)
    assert [(r.rule, r.params, r.decision) for r in straight.records()] == [
        (r.rule, r.params, r.decision) for r in ledger.records()
    ]
    assert trained  # the fake scored real scripts


class WarmFakeRunner(FakeRunner):
    """A warm start (warm.json present) scores 0.1 above what the script reaches from scratch.

    `script_seconds` is how long each script says it ran (metrics.json "seconds"); None: not
    recorded, as from a runner that does not time it.
    """

    def __init__(self, script_seconds: float | None = None) -> None:
        super().__init__()
        self.warm_dirs: list[str] = []
        self.script_seconds = script_seconds

    def run(self, spec: TrialSpec) -> TrialResult:
        result = super().run(spec)
        warm = (spec.trial_dir / "warm.json").exists()
        (spec.trial_dir / "model.keras").write_bytes(b"weights")
        metrics = dict(result.metrics or {})
        metrics["start"] = {"mode": "warm" if warm else "cold", "why": "fake"}
        if self.script_seconds is not None:
            metrics["seconds"] = self.script_seconds
        (spec.trial_dir / "metrics.json").write_text(json.dumps(metrics))
        result.metrics = metrics
        if warm:
            self.warm_dirs.append(spec.trial_dir.name)
            result.value = round(result.value + 0.1, 4)
        return result


def test_a_warm_estimate_at_the_target_is_confirmed_from_scratch_before_it_counts(script):
    runner = WarmFakeRunner()
    outcome, ledger = climb(script, runner, target=0.8, max_trials=20, rules=("more_filters",))
    records = ledger.records()
    # filters 4 -> 8 warm: 0.74 + 0.1 = 0.84 reaches 0.8, but from scratch it is 0.74
    warm = records[1]
    assert warm.start == "warm" and warm.decision == "accepted" and warm.value == 0.84
    confirm = records[2]
    assert confirm.decision == "confirm" and confirm.start == "cold" and confirm.value == 0.74
    assert not (ledger.trial_dir(confirm.id) / "warm.json").exists()
    # short of the target from scratch: the climb went on from the confirmed value
    assert outcome.reached and records[-1].decision == "confirm"
    assert records[-1].value >= 0.8 and outcome.best.value == records[-1].value
    assert json.loads((ledger.trial_dir(2) / "warm.json").read_text())["mode"] == "transfer"


def test_a_more_epochs_child_continues_its_parent(script):
    runner = WarmFakeRunner()
    climb(script, runner, max_trials=2, rules=("more_epochs",))
    trial = Ledger(script.parent / ".mutator" / script.stem).trial_dir(2)
    plan = json.loads((trial / "warm.json").read_text())
    assert plan["mode"] == "continue" and plan["epochs_done"] == 2 and plan["parent_trial"] == 1
    assert plan["parent_model"].endswith("weights/0001.keras")


def test_with_warm_start_off_no_child_is_warm_and_nothing_is_confirmed(script):
    runner = WarmFakeRunner()
    _, ledger = climb(script, runner, target=0.8, max_trials=20, warm_start=False)
    records = ledger.records()
    assert runner.warm_dirs == [] and all(r.start == "cold" for r in records)
    assert not any(r.decision == "confirm" for r in records)
    assert {r.start_reason for r in records if r.decision != "baseline"} == {"warm start is off"}


def test_a_child_of_a_parent_that_trained_fast_trains_cold_and_needs_no_confirm(script):
    runner = WarmFakeRunner(script_seconds=1.2)
    outcome, ledger = climb(script, runner, target=0.8, max_trials=20, rules=("more_filters",))
    records = ledger.records()
    assert runner.warm_dirs == [] and not any(r.decision == "confirm" for r in records)
    assert all(r.start == "cold" for r in records)
    assert "its parent's script ran in 1.2 s (< warm_after 5 s)" in records[1].start_reason
    assert outcome.reached and outcome.state.best_confirmed
    assert outcome.best.value == records[-1].value >= 0.8  # the cold candidate's own value


def test_a_parent_that_trained_long_enough_still_has_warm_children(script):
    runner = WarmFakeRunner(script_seconds=1.2)
    _, ledger = climb(
        script, runner, target=0.8, max_trials=20, rules=("more_filters",), warm_after=1.0
    )
    records = ledger.records()
    assert records[1].start == "warm" and runner.warm_dirs[0] == "0002"
    assert any(r.decision == "confirm" for r in records)


class SlowSecondRunner(WarmFakeRunner):
    """Submits like a real runner: the round's first trial ends at once, the second only when
    it is cancelled."""

    def __init__(self) -> None:
        super().__init__(script_seconds=1.0)
        self.held: dict[Path, Future] = {}
        self.cancelled: list[str] = []

    def submit(self, spec: TrialSpec) -> Future:
        future: Future = Future()
        if spec.trial_dir.name == "0003":
            self.held[spec.trial_dir] = future
        else:
            future.set_result(self.run(spec))
        return future

    def cancel(self, spec: TrialSpec) -> None:
        self.cancelled.append(spec.trial_dir.name)
        self.held.pop(spec.trial_dir).set_result(_result(spec, "cancelled", None))


def test_a_cold_candidate_at_the_target_ends_its_round_at_once(script):
    runner = SlowSecondRunner()
    outcome, ledger = climb(
        script, runner, target=0.7, max_trials=20, parallel=2,
        rules=("more_filters", "more_epochs"),
    )  # fmt: skip
    baseline, filters, epochs = ledger.records()
    assert runner.cancelled == ["0003"]  # not waited for: the target was reached
    assert (filters.decision, filters.start, filters.value) == ("accepted", "cold", 0.74)
    assert (epochs.status, epochs.decision) == ("cancelled", "rejected")
    assert outcome.reached and outcome.best.id == filters.id


class StopsBeforeReportingRunner(WarmFakeRunner):
    """Trial 0002 ends (cancelled, crashed at import) before its harness wrote a start."""

    def run(self, spec: TrialSpec) -> TrialResult:
        if spec.trial_dir.name == "0002":
            return _result(spec, "cancelled", None)
        return super().run(spec)


def test_a_trial_that_never_reported_its_start_is_recorded_with_the_start_it_was_planned(script):
    _, ledger = climb(script, StopsBeforeReportingRunner(), max_trials=3, rules=("more_epochs",))
    stopped, ran = ledger.records()[1:3]
    assert (stopped.status, stopped.start) == ("cancelled", "warm")  # as planned, not "cold"
    assert "planned continue from trial 1" in stopped.start_reason
    assert ran.start == "warm" and ran.start_reason == "fake"


class StillLearningRunner(FakeRunner):
    """Curves of a model that under-fits while it still learns: train far below, val rising."""

    def run(self, spec: TrialSpec) -> TrialResult:
        result = super().run(spec)
        if result.value is not None:
            score = result.value
            curves = {"accuracy": [score - 0.3, score - 0.2], "val_accuracy": [score - 0.1, score]}
            result.metrics["history"] = [{"initial_epoch": 0, "epochs": curves}]
            (spec.trial_dir / "metrics.json").write_text(json.dumps(result.metrics))
        return result


def test_an_under_fitting_model_still_learning_gets_capacity_and_epochs_as_one_change(script):
    outcome, ledger = climb(
        script, StillLearningRunner(), max_trials=3, parallel=2, target=0.98,
        rules=("more_filters", "more_epochs"),
    )  # fmt: skip
    baseline, joint, filters = ledger.records()
    assert "still rising: capacity and epochs" in joint.diagnosis
    # round 2: filters 4 -> 8 with epochs 2 -> 4 (0.78) beside filters 4 -> 8 alone (0.74)
    assert (joint.rule, joint.params, joint.step) == ("more_filters", {"filters": [4, 8]}, 2)
    assert joint.also == [
        {"rule": "more_epochs", "site": 0, "params": {"epochs": [2, 4]}, "step": 2}
    ]
    assert joint.rules_label == "more_filters+more_epochs"
    assert joint.description.endswith(", with epochs 2 -> 4 (epochs=2 in the fit call)")
    assert (filters.rule, filters.params) == ("more_filters", {"filters": [4, 8]})
    assert filters.also is None
    assert (joint.decision, filters.decision) == ("accepted", "rejected")
    assert filters.beaten_by == joint.id and joint.value == 0.78
    best = ledger.best_script.read_text()
    assert "Conv2D(8, (3, 3)" in best and "epochs=4" in best
    rebuilt = HillClimb(
        script, ledger, StillLearningRunner(), TuneSettings.of(target=0.98), PlainReporter()
    ).rebuild(SCRIPT, ledger.records())
    assert rebuilt.best_id == joint.id and rebuilt.best_source == best
    assert rebuilt.push_rule == "more_filters" and rebuilt.runner_up is None


def test_a_joint_change_moves_the_steps_of_both_its_rules(script):
    _, ledger = climb(
        script, StillLearningRunner(), max_trials=3, parallel=2, target=0.98,
        adaptive_steps=True, rules=("more_filters", "more_epochs"),
    )  # fmt: skip
    joint = ledger.records()[1]
    assert (joint.step, joint.also[0]["step"]) == (8, 8)  # 0.34 to go: x8 for both
    state = HillClimb(
        script, ledger, StillLearningRunner(), TuneSettings.of(target=0.98), PlainReporter()
    ).rebuild(SCRIPT, ledger.records())
    # filters 4 -> 32 with epochs 2 -> 16 gained 0.26: both rules keep their largest step
    assert state.levels == {"more_filters": 2, "more_epochs": 2}


def test_with_joint_changes_off_capacity_and_epochs_go_side_by_side(script):
    _, ledger = climb(
        script, StillLearningRunner(), max_trials=3, parallel=2, target=0.98,
        joint_changes=False, rules=("more_filters", "more_epochs"),
    )  # fmt: skip
    assert [(r.rule, r.also) for r in ledger.records()[1:]] == [
        ("more_filters", None),
        ("more_epochs", None),
    ]


def test_a_refused_joint_change_is_not_tried_again_and_its_parts_still_are(script):
    class JointHurts(StillLearningRunner):
        def score(self, filters: int, epochs: int) -> float:
            both = filters > 4 and epochs > 2
            return 0.3 if both else super().score(filters, epochs)

    _, ledger = climb(
        script, JointHurts(), max_trials=6, parallel=2, target=0.98,
        rules=("more_filters", "more_epochs"),
    )  # fmt: skip
    records = ledger.records()
    assert (records[1].rules_label, records[1].decision, records[1].beaten_by) == (
        "more_filters+more_epochs", "rejected", None,
    )  # fmt: skip
    assert records[2].rules_label == "more_filters" and records[2].decision == "accepted"
    joint_keys = [json.dumps(r.address, sort_keys=True) for r in records if r.also]
    assert len(joint_keys) == len(set(joint_keys)), "a refused joint change came back"


def test_a_warm_estimate_of_a_capacity_change_is_confirmed_in_the_next_round(script):
    _, ledger = climb(
        script, WarmFakeRunner(), max_trials=4, parallel=2, rules=("more_filters", "more_epochs")
    )
    records = ledger.records()
    # round 2: filters 4 -> 8 (a transfer) wins warm over epochs 2 -> 4 (a continue)
    assert [(r.rule, r.decision, r.start) for r in records[1:3]] == [
        ("more_filters", "accepted", "warm"),
        ("more_epochs", "rejected", "warm"),
    ]
    # round 3: its confirm beside one candidate, though no core would idle and no target is near
    assert [(r.decision, r.round) for r in records[3:5]] == [("confirm", 3), ("accepted", 3)]
    assert records[3].parent == records[1].id and records[3].value == 0.74


def test_a_warm_estimate_of_more_epochs_is_not_confirmed_before_it_is_needed(script):
    _, ledger = climb(
        script, WarmFakeRunner(), max_trials=5, parallel=2, rules=("more_epochs", "larger_kernel")
    )
    records = ledger.records()
    # round 2: epochs 2 -> 4 continues its parent (0.68 + 0.1) and beats the kernel (0.64 + 0.1)
    assert (records[1].rule, records[1].decision, records[1].start) == (
        "more_epochs", "accepted", "warm",
    )  # fmt: skip
    # round 3: two candidates and no confirm; it comes once the budget is spent
    assert [(r.rule, r.round) for r in records[3:5]] == [("more_epochs", 3), ("larger_kernel", 3)]
    assert [r.decision for r in records[5:]] == ["confirm"]


class NoisyRunner(FakeRunner):
    """The fake's score plus a seed's noise: runs with their seeds moved land `spread` apart."""

    def __init__(self, spread: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spread = spread

    def run(self, spec: TrialSpec) -> TrialResult:
        result = super().run(spec)
        offset = int(spec.env.get("MUTATOR_SEED_OFFSET", "0"))
        wobble = self.spread * (-1 if offset % 2 else 1) if offset else 0.0
        if result.value is not None:
            result.value = round(result.value + wobble, 4)
            result.metrics["value"] = result.value
            (spec.trial_dir / "metrics.json").write_text(json.dumps(result.metrics))
        return result


def test_a_gain_inside_the_measured_noise_is_rechecked_and_refused(script):
    """Seeds move the score by ±0.2: the baseline's mean is 0.54, filters 4 -> 8 scores 0.74
    as written, then 0.94 at another seed: a gain of 0.30, still inside a band that wide."""
    outcome, ledger = climb(
        script, NoisyRunner(0.2), max_trials=3, rules=("more_filters",), noise_runs=1
    )
    records = ledger.records()
    assert [(r.decision, r.seed_offset) for r in records[:2]] == [("baseline", 0), ("noise", 1)]
    first = records[2]
    assert first.decision == "rejected" and first.noise["verdict"] == "recheck"
    recheck = records[3]
    assert recheck.noise["rechecked"] == first.id and recheck.seed_offset == 2
    assert recheck.decision == "rejected" and recheck.noise["verdict"] == "refuse"
    assert recheck.noise["why"] == "inside the noise band after a recheck: refused"
    assert recheck.noise["gain"] == pytest.approx(0.30)
    assert not [r for r in records if r.decision == "accepted"]
    assert outcome.state.trials == 2  # the noise run and the recheck are not in the budget


class SmallGainsRunner(NoisyRunner):
    """More filters, a larger kernel and more epochs each add 0.05, the seeds move it ±spread."""

    def score_of(self, text: str) -> float:
        view = api.Script.from_text(text).view
        conv = view.layers_of({"Conv2D"})[0]
        larger = "(3, 3)" not in text.split("Conv2D(", 1)[1].split(")", 1)[0] + ")"
        changed = (conv.int_arg(0, "filters") > 4, larger, view.epochs.value > 2)
        return 0.5 + 0.05 * sum(changed)

    def run(self, spec: TrialSpec) -> TrialResult:
        offset = int(spec.env.get("MUTATOR_SEED_OFFSET", "0"))
        wobble = self.spread * (-1 if offset % 2 else 1) if offset else 0.0
        value = round(self.score_of(spec.script.read_text()) + wobble, 4)
        metrics = {
            "status": "ok",
            "value": value,
            "metric": "accuracy",
            "mode": "max",
            "history": [{"initial_epoch": 0, "epochs": {"val_accuracy": [value, value]}}],
        }
        (spec.trial_dir / "metrics.json").write_text(json.dumps(metrics))
        return _result(spec, "ok", value, metrics=metrics)


def test_changes_that_each_gained_inside_the_noise_band_are_tried_as_one(script):
    """Filters and kernel each gain 0.05 inside a band of 0.15: the next round trains both as
    one change (at the steps they were tried at), which clears it and is kept."""
    outcome, ledger = climb(
        script,
        SmallGainsRunner(0.02),
        max_trials=4,
        rules=("more_filters", "larger_kernel"),
        noise_runs=1,
        parallel=2,
    )
    records = ledger.records()
    singles = records[2:4]
    assert [r.rule for r in singles] == ["more_filters", "larger_kernel"]
    assert all(r.noise["near"] and r.noise["gain"] < r.noise["band"] for r in singles)
    joined = records[5]
    assert joined.address["also"] == [singles[1].address]
    assert (joined.rule, joined.params) == ("more_filters", singles[0].params)
    assert (joined.step, joined.also[0]["step"]) == (singles[0].step, singles[1].step)
    assert joined.decision == "accepted" and joined.noise["gain"] > joined.noise["band"]
    rebuilt = HillClimb(
        script, ledger, SmallGainsRunner(0.02), TuneSettings.of(parallel=2), PlainReporter()
    ).rebuild(script.read_text(), records[:4])
    assert set(rebuilt.near) == {address_key(r.address) for r in singles}


def test_a_gain_far_beyond_the_measured_noise_is_kept_at_once(script):
    outcome, ledger = climb(
        script, NoisyRunner(0.001), max_trials=3, rules=("more_filters",), noise_runs=1
    )
    accepted = [r for r in ledger.records() if r.decision == "accepted"]
    assert accepted and accepted[0].noise["verdict"] == "accept"
    assert not [r for r in ledger.records() if (r.noise or {}).get("rechecked")]


def test_a_resumed_run_rebuilds_the_noise_it_measured(script):
    climb(script, NoisyRunner(0.2), max_trials=2, rules=("more_filters",), noise_runs=1)
    ledger = Ledger(script.parent / ".mutator" / script.stem)
    search = HillClimb(
        script,
        ledger,
        NoisyRunner(0.2),
        TuneSettings.of(parallel=1, adaptive_steps=False, noise_runs=1, max_trials=2),
        PlainReporter(),
    )
    state = search.rebuild(script.read_text(), ledger.records())
    assert state.noise_trials == 1 and state.last_offset >= 1
    assert len(state.runs) >= 1 and state.trials == 2


def test_final_runs_give_the_best_its_spread(script):
    outcome, ledger = climb(
        script, NoisyRunner(0.01), max_trials=2, rules=("more_filters",), final_runs=2
    )
    finals = [r for r in ledger.records() if r.decision == "final"]
    assert len(finals) == 2 and {r.seed_offset for r in finals} == {1, 2}
    assert all(r.sha256 == outcome.best.sha256 for r in finals)
    assert outcome.state.trials == 2


TWO_CONV = SCRIPT.replace(
    "model.add(MaxPooling2D(pool_size=(2, 2)))\n",
    "model.add(Conv2D(4, (3, 3), activation='relu'))\nmodel.add(MaxPooling2D(pool_size=(2, 2)))\n",
)


class BottleneckRunner(FakeRunner):
    """The narrowest Conv2D decides: widening one layer of two gains nothing."""

    def run(self, spec: TrialSpec) -> TrialResult:
        view = api.Script.from_text(spec.script.read_text()).view
        self.narrowest = min(layer.int_arg(0, "filters") for layer in view.layers_of({"Conv2D"}))
        return super().run(spec)

    def score(self, filters: int, epochs: int) -> float:
        return super().score(self.narrowest, epochs)


def test_the_first_capacity_change_widens_every_layer_at_once(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TWO_CONV)
    _, ledger = climb(script, BottleneckRunner(), max_trials=3, rules=("more_filters",))
    first = ledger.records()[1]
    assert first.rules_label == "more_filters+more_filters" and first.decision == "accepted"
    assert first.description == (
        "layer 0 (Conv2D): filters 4 -> 8, with layer 1 (Conv2D): filters 4 -> 8"
    )
    # pushed again: every layer wider again, before any one layer alone
    assert ledger.records()[2].rules_label == "more_filters+more_filters"


def test_a_rule_that_did_not_pay_on_this_best_waits_behind_the_untried_ones(script):
    class FiltersDoNothing(FakeRunner):
        def score(self, filters: int, epochs: int) -> float:
            return super().score(4, epochs)

    _, ledger = climb(
        script, FiltersDoNothing(), max_trials=4, target=0.99, adaptive_steps=True,
        rules=("more_filters", "larger_kernel", "more_epochs"),
    )  # fmt: skip
    tried = [(r.rule, r.decision) for r in ledger.records()[1:]]
    # filters x8 refused: the next step of filters (x4) waits behind kernel and epochs
    assert tried == [
        ("more_filters", "rejected"),
        ("larger_kernel", "rejected"),
        ("more_epochs", "accepted"),
    ]


def test_on_a_new_best_a_rule_refused_before_waits_behind_one_not_tried_yet(script):
    class FiltersDoNothing(FakeRunner):
        def score(self, filters: int, epochs: int) -> float:
            return super().score(4, epochs)

    _, ledger = climb(
        script, FiltersDoNothing(), max_trials=7, target=0.99,
        rules=("more_filters", "larger_kernel", "more_epochs", "add_dense"),
    )  # fmt: skip
    tried = [(r.rule, r.decision) for r in ledger.records()[1:]]
    assert tried[:5] == [
        ("more_filters", "rejected"),
        ("larger_kernel", "rejected"),
        ("more_epochs", "accepted"),  # 2 -> 4: a new best
        ("more_epochs", "accepted"),  # 4 -> 8, pushed: another
        ("more_epochs", "rejected"),  # 8 -> 16 gains nothing
    ]
    # on this best, filters and kernel are untried but refused before: the Dense layer first
    assert tried[5][0] == "add_dense"


def test_the_wider_model_takes_at_most_x4_a_layer_and_records_it(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TWO_CONV)
    _, ledger = climb(
        script, BottleneckRunner(), max_trials=3, target=0.99, adaptive_steps=True,
        rules=("more_filters",),
    )  # fmt: skip
    wider, pushed = ledger.records()[1:3]
    # 0.35 to go: a single layer would take x8; each layer of the wider model takes x4
    assert wider.description.startswith("layer 0 (Conv2D): filters 4 -> 16, with layer 1")
    assert (wider.step, wider.also[0]["step"]) == (4, 4)
    assert pushed.rules_label == "more_filters+more_filters"  # pushed: wider again
