"""Folding a round of the ledger into what the search knows (`state.absorb`), on plain records."""

from __future__ import annotations

from records import trial_record

from mutator.search.state import NearMiss, SearchState, absorb, address_key

FILTERS = {"rule": "more_filters", "site": 0, "params": {"filters": [4, 8]}}
KERNEL = {"rule": "larger_kernel", "site": 0, "params": {"kernel": [[3], [5]]}}


def record(trial_id: int, decision: str, value: float | None, change: dict | None = None, **fields):
    change = change or {"rule": None, "site": None, "params": {}}
    return trial_record(trial_id, decision, value, parent=1, **change, **fields)


def near(gain: float, **extra) -> dict:
    return {"gain": gain, "verdict": "inside", "near": True, **extra}


def fold(state: SearchState, *records) -> SearchState:
    sources = [f"# trial {r.id}\n" if r.decision == "accepted" else None for r in records]
    absorb(state, list(records), sources, 0.95, lambda r: "max")
    return state


def on_a_baseline() -> SearchState:
    return fold(SearchState(best_source="x = 1\n"), record(1, "baseline", 0.5))


def test_a_change_that_gained_inside_the_band_is_a_near_miss_at_its_step():
    state = fold(
        on_a_baseline(),
        record(2, "rejected", 0.55, FILTERS, step=2.0, noise=near(0.05)),
        record(3, "rejected", 0.45, KERNEL, noise={"gain": -0.05, "near": False}),
    )
    assert state.near == {
        address_key(FILTERS): NearMiss("more_filters", address_key(FILTERS), 2.0, 0.05)
    }


def test_a_recheck_keeps_the_first_runs_step_and_its_mean_gain_or_drops_the_near_miss():
    state = fold(on_a_baseline(), record(2, "rejected", 0.55, FILTERS, step=2.0, noise=near(0.05)))
    kept = fold(state, record(3, "rejected", 0.53, FILTERS, noise=near(0.04, rechecked=2)))
    assert kept.near[address_key(FILTERS)] == NearMiss(
        "more_filters", address_key(FILTERS), 2.0, 0.04
    )
    gone = fold(kept, record(4, "rejected", 0.45, FILTERS, noise={"gain": -0.01, "rechecked": 2}))
    assert gone.near == {}


def test_a_joint_change_is_no_near_miss_and_a_new_best_forgets_them_all():
    joint = record(2, "rejected", 0.56, FILTERS, also=[{**KERNEL, "step": None}], noise=near(0.06))
    state = fold(on_a_baseline(), joint, record(3, "rejected", 0.55, KERNEL, noise=near(0.05)))
    assert list(state.near) == [address_key(KERNEL)]
    fold(state, record(4, "accepted", 0.7, FILTERS))
    assert state.near == {}


STOPPED_AT = {"key": "val_loss", "epoch": 25, "planned": 100, "best_epoch": 8}


def test_a_baseline_stopped_past_its_peak_is_an_estimate_whose_runs_measure_it_alone():
    state = fold(
        SearchState(best_source="x = 1\n"),
        record(1, "baseline", 0.90, sha256="base", past_peak=STOPPED_AT),
        record(2, "noise", 0.80, sha256="base", seed_offset=1, past_peak=STOPPED_AT),
    )
    assert state.best_stopped and not state.best_confirmed and not state.best_warm
    assert state.runs == {"base@stopped": {0: 0.90, 1: 0.80}}
    assert state.noise_trials == 0  # the next best's noise is still to be measured
    assert state.noise_band(2.0) is not None  # while it is the best, its stopped runs count
    fold(state, record(3, "accepted", 0.96, FILTERS, sha256="cut"))
    assert not state.best_stopped and state.best_confirmed
    assert state.noise_band(2.0) is None  # the new best is measured by its own runs


def test_a_joint_change_is_one_key_whichever_part_leads():
    epochs = {"rule": "more_epochs", "site": 0, "params": {"epochs": [12, 96]}}
    kernel_first = {**KERNEL, "also": [epochs]}
    epochs_first = {**epochs, "also": [KERNEL]}
    assert address_key(kernel_first) == address_key(epochs_first)
    assert address_key(kernel_first) != address_key(KERNEL) != address_key(epochs)


def test_a_noise_run_counts_only_beside_a_baseline_stopped_alike():
    for base_stop, noise_stop in ((STOPPED_AT, None), (None, STOPPED_AT)):
        state = fold(
            SearchState(best_source="x = 1\n"),
            record(1, "baseline", 0.90, sha256="base", past_peak=base_stop),
            record(2, "noise", 0.80, sha256="base", seed_offset=1, past_peak=noise_stop),
        )
        assert state.noise_trials == 0 and state.noise_band(2.0) is None  # no pair
    both_whole = fold(
        SearchState(best_source="x = 1\n"),
        record(1, "baseline", 0.90, sha256="base"),
        record(2, "noise", 0.80, sha256="base", seed_offset=1),
    )
    assert both_whole.noise_trials == 1 and both_whole.noise_band(2.0) is not None


def test_a_rule_whose_change_did_not_pay_is_let_down_until_one_of_its_changes_is_accepted():
    state = fold(
        on_a_baseline(),
        record(2, "rejected", 0.45, FILTERS, noise={"gain": -0.05, "near": False}),
        record(3, "rejected", None, KERNEL, status="over_budget"),  # failed to run: no verdict
    )
    assert state.let_down == {"more_filters"}
    fold(state, record(4, "accepted", 0.6, KERNEL), record(5, "rejected", 0.58, FILTERS, beaten_by=4))
    assert state.let_down == {"more_filters"}  # beaten is no let-down, nor a clearance
    fold(state, record(6, "accepted", 0.7, FILTERS))
    assert state.let_down == set()
