"""What a trial is given besides its script: the curve it must keep up with, its input files."""

from __future__ import annotations

import pytest

from mutator.search.config import TuneSettings
from mutator.search.starts import place_inputs, prune_plan, unsound_parent
from mutator.search.state import STOPPED, SearchState
from mutator.training.budget import TrialBudget
from mutator.training.peak import PeakStop
from mutator.training.prune import PrunePlan


def best_with_curve(runs: dict[str, dict[int, float]]) -> SearchState:
    return SearchState(
        best_source="# best\n",
        best_id=1,
        best_value=0.6,
        best_history={"val_accuracy": [0.3, 0.5, 0.6]},
        runs=runs,
    )


def test_a_candidate_may_trail_the_best_by_the_prune_margin():
    plan = prune_plan(best_with_curve({}), TuneSettings.of(noise_runs=1, prune_margin=0.05))
    assert plan is not None and plan.margin == 0.05
    assert plan.reference == (0.3, 0.5, 0.6)


def test_where_seeds_move_the_script_more_it_may_trail_by_a_noise_band():
    # the script reached 0.71 and 0.44 at two seeds: one curve says little of a change's
    noisy = best_with_curve({"a": {0: 0.71, 1: 0.44}})
    plan = prune_plan(noisy, TuneSettings.of(noise_runs=1, prune_margin=0.05))
    assert plan is not None and plan.margin > 0.3
    unmeasured = prune_plan(noisy, TuneSettings.of(noise_runs=0, prune_margin=0.05))
    assert unmeasured is not None and unmeasured.margin == pytest.approx(0.05)


def test_no_plan_when_pruning_is_off():
    assert prune_plan(best_with_curve({}), TuneSettings.of(prune=False)) is None


def test_the_children_of_a_best_that_diverged_or_over_fitted_start_from_scratch():
    thrashing = SearchState(
        best_source="# best\n",
        best_id=1,
        best_value=0.6,
        best_history={"loss": [40.0, 1.2, 1.1, 1.1], "accuracy": [0.4, 0.6, 0.6, 0.6]},
    )
    settled = SearchState(
        best_source="# best\n",
        best_id=1,
        best_value=0.6,
        best_history={"loss": [2.0, 1.2, 1.1, 1.0], "accuracy": [0.4, 0.5, 0.55, 0.6]},
    )
    settings = TuneSettings.of(target=0.95)
    assert "diverged" in unsound_parent(thrashing, settings)
    assert unsound_parent(settled, settings) is None
    over_fitted = SearchState(
        best_source="# best\n",
        best_id=1,
        best_value=0.6,
        best_history={"loss": [9.0, 5.0, 3.0, 2.0, 1.0], "val_loss": [8.0, 4.0, 5.0, 6.0, 7.0]},
    )
    assert "over-fitted" in unsound_parent(over_fitted, TuneSettings.of(target=3.0))


def test_a_trial_s_cost_is_its_cpu_time_when_the_machine_was_loaded(tmp_path):
    import json

    from mutator.search.starts import script_seconds

    (tmp_path / "metrics.json").write_text(json.dumps({"seconds": 9.5, "cpu_seconds": 3.1}))
    assert script_seconds(tmp_path) == 3.1  # other work stretched its wall time
    (tmp_path / "metrics.json").write_text(json.dumps({"seconds": 2.0, "cpu_seconds": 3.8}))
    assert script_seconds(tmp_path) == 2.0  # two threads: more CPU than wall
    (tmp_path / "metrics.json").write_text(json.dumps({"seconds": 2.0}))
    assert script_seconds(tmp_path) == 2.0  # an older trial


def test_a_validation_loss_is_watched_relative_to_its_value():
    regression = SearchState(
        best_source="# best\n",
        best_id=1,
        best_value=57.5,
        best_history={"val_loss": [6176.0, 5230.0, 3048.0]},
        mode="min",
        runs={"a": {0: 57.5, 1: 57.4}},
    )
    plan = prune_plan(regression, TuneSettings.of(noise_runs=1, prune_margin=0.05))
    assert plan is not None and plan.relative and plan.margin == 0.05


def test_a_trial_folder_holds_the_inputs_given_and_none_left_from_an_earlier_run(tmp_path):
    place_inputs(
        tmp_path,
        prune=PrunePlan("val_loss", "min", (1.0,)),
        budget=TrialBudget(max_params=10),
        peak=PeakStop(),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budget.json", "peak.json", "prune.json"]
    assert PeakStop.read(tmp_path) == PeakStop() and TrialBudget.read(tmp_path).max_params == 10
    place_inputs(tmp_path, budget=TrialBudget(max_params=0))  # the folder reused, resumed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budget.json"]


def test_the_children_of_a_baseline_stopped_past_its_peak_start_from_scratch():
    state = best_with_curve({})
    state.best_estimate = STOPPED
    assert "stopped past its peak" in unsound_parent(state, TuneSettings.of())
