"""What a trial is given besides its script: the curve it must keep up with."""

from __future__ import annotations

import pytest

from mutator.search.config import TuneSettings
from mutator.search.starts import diverged, prune_plan
from mutator.search.state import SearchState


def best_with_curve(runs: dict[str, dict[int, float]]) -> SearchState:
    return SearchState(
        best_source="# best\n",
        best_id=1,
        best_value=0.6,
        best_history={"val_accuracy": [0.3, 0.5, 0.6]},
        runs=runs,
    )


def test_a_candidate_may_trail_the_best_by_the_prune_margin():
    plan = prune_plan(best_with_curve({}), TuneSettings(noise_runs=1, prune_margin=0.05))
    assert plan is not None and plan.margin == 0.05
    assert plan.reference == (0.3, 0.5, 0.6)


def test_where_seeds_move_the_script_more_it_may_trail_by_a_noise_band():
    # the script reached 0.71 and 0.44 at two seeds: one curve says little of a change's
    noisy = best_with_curve({"a": {0: 0.71, 1: 0.44}})
    plan = prune_plan(noisy, TuneSettings(noise_runs=1, prune_margin=0.05))
    assert plan is not None and plan.margin > 0.3
    unmeasured = prune_plan(noisy, TuneSettings(noise_runs=0, prune_margin=0.05))
    assert unmeasured is not None and unmeasured.margin == pytest.approx(0.05)


def test_no_plan_when_pruning_is_off():
    assert prune_plan(best_with_curve({}), TuneSettings(prune=False)) is None


def test_the_children_of_a_best_that_diverged_start_from_scratch():
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
    settings = TuneSettings(target=0.95)
    assert diverged(thrashing, settings)
    assert not diverged(settled, settings)
