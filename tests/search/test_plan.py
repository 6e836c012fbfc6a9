"""Planning a round on plain data: what trains side by side, in what order, and what waits."""

from __future__ import annotations

from mutator.engine.candidate import Candidate
from mutator.search.plan import (
    CONFIRM_NEAR,
    Round,
    confirm_now,
    plan_round,
    round_robin,
)


def change(rule: str, to: int, site: int = 0) -> Candidate:
    return Candidate(rule, site, {"to": to}, f"{rule} -> {to}")


FILTERS = [change("more_filters", 8), change("more_filters", 8, site=1)]
EPOCHS = [change("more_epochs", 4)]
KERNEL = [change("larger_kernel", 5), change("larger_kernel", 5, site=1)]
JOINT = Candidate("more_filters", 0, {"to": 8}, "filters and epochs", also=(EPOCHS[0],))
RUNNER_UP = change("more_epochs", 16)


def kinds(laid: Round) -> list[str]:
    return [slot.kind for slot in laid.slots]


def trained(laid: Round) -> list[str | None]:
    return [slot.candidate.description if slot.candidate else slot.kind for slot in laid.slots]


def plan(**wants) -> Round:
    return plan_round(**{"first_id": 5, "parallel": 2, "room": 10, **wants})


# -- the order --------------------------------------------------------------------------------


def test_one_candidate_of_every_rule_before_a_second_of_any():
    assert round_robin([[1, 2, 3], [], [10], [20, 21]]) == [1, 10, 20, 2, 21, 3]
    laid = plan(parallel=4, fresh=[FILTERS, EPOCHS, KERNEL])
    assert trained(laid) == [
        "more_filters -> 8",
        "more_epochs -> 4",
        "larger_kernel -> 5",
        "more_filters -> 8",
    ]
    assert [slot.candidate.site for slot in laid.slots] == [0, 0, 0, 1]
    assert set(kinds(laid)) == {"fresh"}


def test_ids_count_on_from_the_first_id_in_the_order_of_the_round():
    laid = plan(parallel=3, fresh=[FILTERS, EPOCHS], recheck=True)
    assert [slot.id for slot in laid.slots] == [5, 6, 7]
    assert kinds(laid) == ["recheck", "fresh", "fresh"]


def test_deferred_candidates_come_after_every_fresh_one():
    laid = plan(parallel=3, fresh=[[], EPOCHS], deferred=[FILTERS, []])
    assert kinds(laid) == ["fresh", "deferred", "deferred"]
    assert trained(laid)[0] == "more_epochs -> 4"


def test_the_pushed_rule_goes_first_whatever_its_place_in_the_rule_order():
    laid = plan(fresh=[EPOCHS, KERNEL, FILTERS], push_rule="more_filters")
    assert [(slot.kind, slot.candidate.rule) for slot in laid.slots] == [
        ("pushed", "more_filters"),
        ("fresh", "more_epochs"),
    ]


def test_the_runner_up_comes_right_after_the_pushed_rule():
    laid = plan(parallel=4, fresh=[FILTERS, KERNEL], push_rule="more_filters", runner_up=RUNNER_UP)
    assert kinds(laid) == ["pushed", "runner_up", "fresh", "fresh"]
    assert laid.slots[1].candidate is RUNNER_UP
    assert "measured" in laid.slots[1].why


def test_the_runner_up_comes_first_when_no_rule_was_pushed():
    laid = plan(fresh=[FILTERS, KERNEL], runner_up=RUNNER_UP)
    assert kinds(laid) == ["runner_up", "fresh"]


def test_the_runner_up_is_trained_once_though_its_rule_proposes_it_again():
    again = change("more_epochs", 16)  # an equal change, proposed anew on the best
    laid = plan(parallel=4, fresh=[KERNEL], deferred=[[again]], runner_up=RUNNER_UP)
    assert trained(laid) == ["more_epochs -> 16", "larger_kernel -> 5", "larger_kernel -> 5"]


def test_the_joint_change_comes_before_the_capacity_change_alone():
    laid = plan(fresh=[FILTERS, EPOCHS], push_rule="more_filters", joint=JOINT)
    assert kinds(laid) == ["joint", "pushed"]
    assert laid.dropped == ()


def test_the_joined_near_misses_come_before_every_other_candidate():
    joined = Candidate("larger_kernel", 0, {"to": 5}, "kernel and filters", also=(FILTERS[0],))
    laid = plan(parallel=3, fresh=[EPOCHS], joint=JOINT, joined=joined, recheck=True)
    assert kinds(laid) == ["recheck", "joined", "joint"]
    assert [d.kind for d in laid.dropped] == []  # fresh candidates that wait are the queue
    alone = plan(parallel=2, fresh=[EPOCHS], joint=JOINT, joined=joined, recheck=True)
    assert kinds(alone) == ["recheck", "joined"]
    assert [d.kind for d in alone.dropped] == ["joint"]


def test_a_recheck_and_a_confirm_come_before_every_candidate():
    laid = plan(parallel=4, fresh=[EPOCHS], joint=JOINT, recheck=True, estimate=True)
    assert kinds(laid) == ["recheck", "confirm", "joint", "fresh"]


# -- cores and the trial budget ----------------------------------------------------------------


def test_a_recheck_takes_a_core_but_no_trial_of_the_budget():
    laid = plan(parallel=2, room=1, fresh=[FILTERS, EPOCHS], recheck=True)
    assert kinds(laid) == ["recheck", "fresh"]  # the one trial left is still a candidate's
    alone = plan(parallel=1, room=1, fresh=[FILTERS], recheck=True)
    assert kinds(alone) == ["recheck"]


def test_the_budget_bounds_the_candidates_and_a_free_core_still_measures():
    laid = plan(parallel=3, room=1, fresh=[FILTERS, EPOCHS], noise=True)
    assert kinds(laid) == ["fresh", "noise"]


def test_a_free_core_measures_the_noise():
    laid = plan(parallel=3, fresh=[EPOCHS], noise=True)
    assert kinds(laid) == ["fresh", "noise"]  # one noise run a round, not one a free core
    assert [slot.id for slot in laid.slots] == [5, 6]


def test_no_noise_run_when_the_candidates_take_every_core():
    assert kinds(plan(fresh=[FILTERS, EPOCHS], noise=True)) == ["fresh", "fresh"]


def test_a_round_with_nothing_to_judge_is_empty():
    assert plan(estimate=True, confirm_now="due", noise=True) == Round(())
    assert kinds(plan(recheck=True, noise=True)) == ["recheck", "noise"]


# -- the confirm alongside ---------------------------------------------------------------------


def test_a_warm_estimate_is_confirmed_in_a_core_the_candidates_leave_free():
    assert kinds(plan(fresh=[EPOCHS], estimate=True)) == ["confirm", "fresh"]
    assert kinds(plan(fresh=[FILTERS, EPOCHS], estimate=True)) == ["fresh", "fresh"]


def test_a_confirm_due_now_takes_a_candidates_core():
    laid = plan(parallel=3, fresh=[FILTERS, EPOCHS, KERNEL], estimate=True, confirm_now="near")
    assert kinds(laid) == ["confirm", "fresh", "fresh"]
    assert laid.slots[0].why == "near"


def test_one_trial_at_a_time_never_confirms_alongside():
    laid = plan(parallel=1, fresh=[EPOCHS], estimate=True, confirm_now="near")
    assert kinds(laid) == ["fresh"]


def test_a_confirmed_best_has_no_confirm():
    assert kinds(plan(fresh=[EPOCHS], confirm_now="near")) == ["fresh"]


def test_confirm_now_for_an_estimate_of_a_capacity_change_or_one_near_the_target():
    assert "capacity" in confirm_now(transferred=True, gap=0.5)
    assert "of the target" in confirm_now(transferred=False, gap=CONFIRM_NEAR)
    assert confirm_now(transferred=False, gap=CONFIRM_NEAR + 0.01) is None
    assert confirm_now(transferred=False, gap=None) is None


# -- what waits, and what the plan says of it --------------------------------------------------


def test_a_confirm_alongside_never_drops_the_runner_up_at_parallel_2():
    laid = plan(
        fresh=[FILTERS, KERNEL],
        push_rule="more_filters",
        runner_up=RUNNER_UP,
        estimate=True,
        confirm_now="a capacity change",
    )
    assert kinds(laid) == ["confirm", "runner_up"]
    [dropped] = laid.dropped
    assert (dropped.kind, dropped.candidate) == ("pushed", FILTERS[0])
    assert "confirm and the runner-up" in dropped.why and "measured" in dropped.why
    assert dropped.message.startswith("not this round: the pushed rule's candidate, more_filters")


def test_a_joint_change_never_drops_the_runner_up():
    laid = plan(fresh=[FILTERS, EPOCHS], push_rule="more_filters", runner_up=RUNNER_UP, joint=JOINT)
    assert kinds(laid) == ["joint", "runner_up"]
    assert [d.kind for d in laid.dropped] == ["pushed"]
    one = plan(parallel=1, fresh=[FILTERS], runner_up=RUNNER_UP, joint=JOINT)
    assert kinds(one) == ["runner_up"]
    assert [d.kind for d in one.dropped] == ["joint"]


def test_the_last_trial_of_the_budget_goes_to_the_runner_up():
    laid = plan(room=1, fresh=[FILTERS], push_rule="more_filters", runner_up=RUNNER_UP)
    assert kinds(laid) == ["runner_up"]
    assert "the trial budget has 1 trial(s) left" in laid.dropped[0].why


def test_the_runner_up_waits_only_when_measures_take_every_core():
    due = {"estimate": True, "confirm_now": "a capacity change"}
    laid = plan(fresh=[FILTERS], runner_up=RUNNER_UP, recheck=True, **due)
    assert kinds(laid) == ["recheck", "confirm"]
    assert [d.kind for d in laid.dropped] == ["runner_up"]
    assert "the recheck and the confirm" in laid.dropped[0].why


def test_fresh_and_deferred_candidates_that_wait_are_the_queue_not_dropped():
    laid = plan(fresh=[FILTERS, EPOCHS, KERNEL], deferred=[[change("more_epochs", 8)]])
    assert len(laid.slots) == 2 and laid.dropped == ()
