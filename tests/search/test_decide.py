"""Deciding a round on recorded values: which trial is kept, and against what."""

from __future__ import annotations

import pytest

from mutator.engine.candidate import Candidate
from mutator.search.config import TuneSettings
from mutator.search.decide import Planned, decide
from mutator.search.rounds import FinishedTrial
from mutator.search.state import Recheck, SearchState
from mutator.training.runner import TrialResult


def result(value: float | None, status: str = "ok") -> FinishedTrial:
    return FinishedTrial(TrialResult(status, value, "accuracy", "max", 1.0, 0, None, {}))


def candidate(trial_id: int, rule: str = "more_filters") -> Planned:
    change = Candidate(rule, trial_id, {"filters": [4, 8 * trial_id]}, f"change {trial_id}")
    return Planned(trial_id, "candidate", f"# {trial_id}\n", change.description, change)


def confirm(trial_id: int) -> Planned:
    return Planned(trial_id, "confirm", "# best\n", "confirm")


def round_of(state, planned, values, target=None, noise_runs=0):
    outcomes = [result(v) for v in values]
    settings = TuneSettings.of(target=target, noise_runs=noise_runs)
    return decide(state, planned, outcomes, ["t"] * len(planned), 2, settings)


def best(value: float) -> SearchState:
    return SearchState(
        best_source="# best\n", best_id=1, best_value=value, best_estimate="continue"
    )


def test_the_best_candidate_that_beats_the_best_is_accepted_and_the_other_beaten():
    records = round_of(best(0.5), [candidate(2), candidate(3)], [0.6, 0.7])
    assert [r.decision for r in records] == ["rejected", "accepted"]
    assert records[0].beaten_by == 3 and records[1].beaten_by is None
    assert [r.best_after for r in records] == [0.7, 0.7]


def test_a_candidate_inside_min_improvement_is_rejected():
    records = round_of(best(0.5), [candidate(2)], [0.5005])
    assert records[0].decision == "rejected" and records[0].best_after == 0.5


def test_candidates_beside_a_confirm_must_beat_the_from_scratch_value_not_the_estimate():
    # the estimate was 0.892; from scratch the script reaches 0.875, which 0.885 does beat
    records = round_of(best(0.892), [confirm(2), candidate(3), candidate(4)], [0.875, 0.885, 0.88])
    assert [r.decision for r in records] == ["confirm", "accepted", "rejected"]
    assert records[2].best_after == 0.885
    records = round_of(best(0.892), [confirm(2), candidate(3)], [0.875, 0.870])
    assert [r.decision for r in records] == ["confirm", "rejected"]
    assert records[1].best_after == 0.875  # the honest best, not the 0.892 estimate


def test_a_confirm_that_reaches_the_target_leaves_every_candidate_reverted():
    records = round_of(best(0.96), [confirm(2), candidate(3)], [0.97, 0.99], target=0.97)
    assert [r.decision for r in records] == ["confirm", "rejected"]
    assert records[1].best_after == 0.97


def test_a_pruned_or_failed_candidate_is_never_accepted():
    pruned = FinishedTrial(
        TrialResult("ok", 0.9, "accuracy", "max", 1.0, 0, None, {"pruned": {"epoch": 2}})
    )
    failed = result(None, "failed")
    records = decide(
        best(0.5),
        [candidate(2), candidate(3)],
        [pruned, failed],
        ["t", "t"],
        2,
        TuneSettings(),
    )
    assert [r.decision for r in records] == ["rejected", "rejected"]


def noisy(value: float, runs: dict[str, dict[int, float]]) -> SearchState:
    state = best(value)
    state.runs = runs
    return state


BASELINE_NOISE = {"base": {0: 0.50, 1: 0.52, 2: 0.48}}  # sd 0.02 from 3 runs


def test_a_gain_inside_the_noise_band_is_trained_again_not_kept():
    records = round_of(
        noisy(0.50, BASELINE_NOISE), [candidate(2), candidate(3)], [0.56, 0.53], noise_runs=2
    )
    assert [r.decision for r in records] == ["rejected", "rejected"]
    assert records[0].noise["verdict"] == "recheck"  # the best of those inside the band
    assert records[0].noise["why"].startswith("inside the noise band: trained again")
    assert records[1].noise["verdict"] == "inside"
    assert records[0].best_after == 0.50


def test_a_gain_beyond_the_widened_band_is_kept_at_once():
    records = round_of(noisy(0.50, BASELINE_NOISE), [candidate(2)], [0.80], noise_runs=2)
    assert records[0].decision == "accepted" and records[0].noise["verdict"] == "accept"
    assert records[0].noise["gain"] == pytest.approx(0.30)


def test_a_recheck_counts_by_the_mean_of_its_two_runs():
    first = round_of(noisy(0.50, BASELINE_NOISE), [candidate(2)], [0.56])[0]
    state = noisy(0.50, BASELINE_NOISE)
    recheck = Planned(
        3,
        "recheck",
        "# 2\n",
        "recheck",
        seed_offset=3,
        recheck=Recheck(2, 0.56, from_scratch=True),
        replay=first,
    )
    kept = round_of(state, [recheck], [0.58], noise_runs=2)[0]
    assert kept.decision == "accepted" and kept.rule == "more_filters"
    assert kept.best_after == pytest.approx(0.57) and kept.noise["rechecked"] == 2
    refused = round_of(state, [recheck], [0.46], noise_runs=2)[0]  # mean 0.51: inside the band
    assert refused.decision == "rejected"
    assert refused.noise["why"] == "inside the noise band after a recheck: refused"


def test_noise_runs_of_the_round_count_toward_its_band():
    state = noisy(0.50, {})
    noise_run = Planned(2, "noise", "# best\n", "noise", seed_offset=1)
    records = round_of(state, [noise_run, candidate(3)], [0.52, 0.53], noise_runs=2)
    assert records[0].decision == "noise" and records[0].seed_offset == 1
    assert records[1].noise is None  # the best's own value is not in `runs`: no pair yet


def test_a_gain_inside_the_band_that_reaches_the_target_is_kept_for_its_confirm():
    state = best(0.90)
    state.runs = {"a": {0: 0.90, 1: 0.80}}  # a wide band: sd 0.07 from one pair
    records = round_of(state, [candidate(2)], [0.96], target=0.95, noise_runs=1)
    assert records[0].decision == "accepted"
    assert records[0].noise["why"].startswith("inside the noise band, but at the target")


def test_a_recheck_whose_own_run_reaches_the_target_is_kept_at_the_mean_of_its_runs():
    """Its second from-scratch run is at the target, as a cold candidate's first run at the
    target would be: kept, but the best becomes the mean of its runs, short of the target."""
    state = best(0.80)
    state.runs = {"a": {0: 0.80, 1: 0.77}}
    first = round_of(state, [candidate(2)], [0.83], target=0.85, noise_runs=1)[0]
    assert first.decision == "rejected" and first.noise["verdict"] == "recheck"
    recheck = Planned(
        3, "recheck", "# 2\n", "recheck", seed_offset=2,
        recheck=Recheck(2, 0.83, from_scratch=True), replay=first,
    )  # fmt: skip
    kept = round_of(state, [recheck], [0.855], target=0.85, noise_runs=1)[0]
    assert kept.decision == "accepted" and kept.best_after == pytest.approx(0.8425)
    assert kept.noise["why"].startswith("inside the noise band, but at the target")
    short = round_of(state, [recheck], [0.845], target=0.85, noise_runs=1)[0]
    assert short.decision == "rejected"  # neither run at the target: the band decides


def stopped_best(value: float) -> SearchState:
    return SearchState(best_source="# best\n", best_id=1, best_value=value, best_estimate="stopped")


def test_over_a_stopped_best_a_cold_change_at_the_target_is_kept_whatever_its_gain():
    # the script as given read 0.96 where it was stopped; fewer epochs reach 0.955 from scratch
    records = round_of(stopped_best(0.96), [candidate(2), candidate(3)], [0.955, 0.94], target=0.95)
    assert [r.decision for r in records] == ["accepted", "rejected"]
    assert records[0].best_after == 0.955
    below = round_of(stopped_best(0.96), [candidate(2)], [0.94], target=0.95)
    assert below[0].decision == "rejected"  # short of the target: held to the stopped value


def test_over_a_stopped_best_its_stopped_runs_are_the_band_a_gain_short_of_the_target_meets():
    state = stopped_best(0.50)
    state.runs = {"base@stopped": {0: 0.50, 1: 0.52, 2: 0.48}}  # sd 0.02, as measured stopped
    (record,) = round_of(state, [candidate(2)], [0.56], target=0.95, noise_runs=2)
    assert record.decision == "rejected" and record.noise["verdict"] == "recheck"
