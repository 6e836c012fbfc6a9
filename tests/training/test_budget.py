"""The budget's pure parts: the file, the figures and the verdicts (the harness runs are in
test_harness.py, marked slow)."""

from __future__ import annotations

import pytest

from mutator.training.budget import (
    BUDGET_FILE,
    PACE_BATCHES,
    PACE_WARMUP,
    BudgetWatch,
    OverBudgetError,
    PaceEstimate,
    TrialBudget,
    charged,
    seconds_per_epoch,
)
from mutator.training.keras_hooks import FitRecord
from mutator.training.runner import HARNESS_STATUSES, TrialSpec, read_result


def test_the_budget_travels_in_the_trial_folder(tmp_path):
    budget = TrialBudget(max_params=100_000, max_epoch_seconds=2.5)
    budget.write(tmp_path)
    assert TrialBudget.read(tmp_path) == budget
    (tmp_path / BUDGET_FILE).unlink()  # a trial without one (`starts.place_inputs`)
    assert TrialBudget.read(tmp_path) is None
    (tmp_path / BUDGET_FILE).write_text("{not json")
    assert TrialBudget.read(tmp_path) is None


def test_the_errors_are_one_line_a_user_can_act_on():
    budget = TrialBudget(max_params=100_000, max_epoch_seconds=5.0)
    assert budget.over_params(100_000, "x") is None  # at the limit is within it
    breach = budget.over_params(1_234_567, "at the start of fit 1")
    assert breach.error() == "over budget: 1,234,567 parameters > --max-params 100,000"
    assert breach.to_json() == {
        "measure": "parameters",
        "value": 1_234_567,
        "limit": 100_000,
        "how": "at the start of fit 1",
    }
    pace = budget.over_pace(12.34567, "median of 2 epoch(s) after the first, fit 1")
    assert pace.error() == (
        "over budget: 12.35 s per epoch > --max-epoch-seconds 5 "
        "(median of 2 epoch(s) after the first, fit 1)"
    )
    assert TrialBudget().over_params(10**9, "x") is None  # no limit set
    assert budget.over_pace(None, "x") is None  # nothing measured


@pytest.mark.parametrize(
    "fits, expected",
    [
        ([], None),
        ([[]], None),
        ([[3.0]], 3.0),  # one epoch: all there is, tracing included
        ([[3.0, 1.0]], 1.0),
        ([[3.0, 1.0, 2.0, 9.0]], 2.0),  # the median, the first epoch left out
        ([[5.0, 1.0, 1.0], [7.0, 4.0]], 1.0),  # the fit that trained most epochs
        ([[5.0, 1.0], [7.0, 4.0]], 4.0),  # a tie: the later fit, whose model is kept
    ],
)
def test_seconds_per_epoch(fits, expected):
    assert seconds_per_epoch(fits) == expected


def test_the_batch_estimate_leaves_out_the_warmup_and_needs_enough_batches():
    estimate = PaceEstimate(steps=40, epoch=0)
    # when each batch ended: the first traced the graph (5 s), the second warmed up (0.5 s)
    ends = [5.0, 5.5] + [5.5 + 0.1 * k for k in range(1, PACE_BATCHES + 1)]
    assert len(ends) == PACE_WARMUP + PACE_BATCHES
    found = [estimate.batch_ended(batch, t) for batch, t in enumerate(ends)]
    assert found[:-1] == [None] * (len(ends) - 1)
    seconds, how = found[-1]
    assert seconds == pytest.approx(0.1 * 40)  # the 5 s tracing batch counts for nothing
    assert how == "estimated from batches 3-10 of 40 in epoch 1"
    assert estimate.batch_ended(10, 9.9) is None  # said once
    few = PaceEstimate(steps=12, epoch=0)  # the epoch ends soon: its own time will say
    assert all(few.batch_ended(t, float(t)) is None for t in range(12))
    assert all(PaceEstimate(None, 0).batch_ended(t, float(t)) is None for t in range(40))


def test_batches_run_several_at_a_time_share_their_interval():
    estimate = PaceEstimate(steps=80, epoch=2)  # steps_per_execution=4: ends at 3, 7, 11...
    calls = [(4 * k + 3, 5.0 + 0.4 * k) for k in range(PACE_WARMUP + PACE_BATCHES)]
    *early, (seconds, how) = [estimate.batch_ended(batch, t) for batch, t in calls]
    assert early == [None] * (len(calls) - 1)
    assert seconds == pytest.approx(0.1 * 80)  # 0.4 s per call is 0.1 s per batch
    assert how == "estimated from batches 9-40 of 80 in epoch 3"


def test_a_loaded_machine_is_not_charged_to_the_model():
    assert charged(2.0, 1.5) == 1.5  # other work stretched the wall time: the CPU time counts
    assert charged(2.0, 3.8) == 2.0  # two threads busy: the wall time counts
    assert charged(2.0, None) == 2.0
    estimate = PaceEstimate(steps=40, epoch=0)
    # wall clock runs 0.3 s a batch (the machine is loaded), the process's CPU only 0.1 s
    calls = [(b, 1.0 + 0.3 * b, 0.5 + 0.1 * b) for b in range(PACE_WARMUP + PACE_BATCHES)]
    *_, (seconds, _) = [estimate.batch_ended(*call) for call in calls]
    assert seconds == pytest.approx(0.1 * 40)


def test_a_guess_is_held_to_its_pace_times_its_epochs_while_it_trains_only():
    budget = TrialBudget(max_fit_seconds=10.0)
    assert budget.times_epochs and not TrialBudget(max_params=5).times_epochs
    assert budget.over_cost(0.4, 25, "x") is None  # 10 s: within it
    breach = budget.over_cost(0.5, 30, "median of 2 epoch(s) after the first, fit 1")
    assert (breach.measure, breach.value, breach.limit) == ("fit_seconds", 15.0, 10.0)
    assert breach.error() == (
        "too dear for a guess: 15 s to train (0.5 s an epoch x 30 epochs, median of 2 "
        "epoch(s) after the first, fit 1) > the 10 s the search has spent so far"
    )
    assert budget.over_cost(0.5, None, "x") is None  # epochs unknown: no projection
    assert BudgetWatch(budget).final(500, [[9.0, 9.0, 9.0]]) is None  # paid for: kept


def test_a_breach_is_remembered_and_a_finished_trial_is_judged_by_its_figures():
    watch = BudgetWatch(TrialBudget(max_params=10))
    with pytest.raises(OverBudgetError, match="over budget: 11 parameters"):
        watch.stop_if(watch.budget.over_params(11, "at the start of fit 1"))
    watch.stop_if(None)  # nothing over: nothing happens
    assert watch.breach.value == 11
    paced = BudgetWatch(TrialBudget(max_epoch_seconds=2.0))
    assert paced.final(500, [[1.0, 1.5]]) is None
    late = BudgetWatch(TrialBudget(max_epoch_seconds=2.0))
    breach = late.final(500, [[4.0]])  # one epoch: the trial's own figure, tracing and all
    assert breach.value == 4.0 and breach.how == "the trial's pace over 1 epoch(s), the first included"


def test_a_fit_record_times_its_epochs_and_stays_readable():
    record = FitRecord(fit=1, epochs_requested=2)
    record.add_epoch({"loss": 1.0}, seconds=0.51234, cpu_seconds=0.4)
    record.add_epoch({"loss": 0.5})  # read back from History: no time
    record.parameters = 178
    out = record.to_json()
    assert out["epoch_seconds"] == [0.5123] and out["parameters"] == 178
    assert out["epoch_cpu_seconds"] == [0.4] and record.charged_seconds == [0.4]
    assert out["epochs"] == {"loss": [1.0, 0.5]} and out["epochs_completed"] == 2
    assert "epoch_seconds" not in record.state()  # a resumed process times its own epochs


def test_over_budget_is_a_result_the_harness_judged_not_a_crash(tmp_path):
    assert "over_budget" in HARNESS_STATUSES
    (tmp_path / "metrics.json").write_text(
        '{"status": "over_budget", "value": 0.5, "metric": "accuracy", "mode": "max",'
        ' "error": "over budget: 178 parameters > --max-params 100"}'
    )
    spec = TrialSpec(script=tmp_path / "train.py", trial_dir=tmp_path)
    result = read_result(spec, returncode=1, seconds=1.0, log_path=None)
    assert (result.status, result.value, result.ok) == ("over_budget", None, False)
    assert result.error == "over budget: 178 parameters > --max-params 100"
