"""Slim's bookkeeping and its next step, each mechanism on its own (no training, no files)."""

from __future__ import annotations

from mutator.engine.candidate import Candidate
from mutator.search.ledger import TrialRecord
from mutator.search.slim_state import Size, SlimState, next_step
from mutator.search.state import address_key


def _candidate(rule: str, site: int = 0, **params) -> Candidate:
    return Candidate(rule, site, params or {"n": site}, f"{rule} at {site}")


def _record(trial: int, decision: str, candidate: Candidate | None = None, **fields) -> TrialRecord:
    address = candidate.address() if candidate else {"rule": None, "site": None, "params": {}}
    values = {
        "id": trial,
        "parent": None if decision == "baseline" else 1,  # the baseline's children
        "rule": address["rule"],
        "site": address["site"],
        "params": address["params"],
        "description": candidate.description if candidate else decision,
        "sha256": f"sha{trial}",
        "diff": "",
        "status": "ok",
        "value": 0.96,
        "decision": decision,
        "best_after": None,
        "seconds": 1.0,
        "started": "",
        "finished": "",
        "round": trial,
    }
    values.update(fields)
    return TrialRecord(**values)


def _state_with_baseline(parameters: int = 1000) -> SlimState:
    state = SlimState(best_source="original")
    state.absorb(_record(1, "baseline", parameters=parameters), "original")
    return state


def _key(candidate: Candidate) -> str:
    return address_key(candidate.address())


def test_smaller_is_fewer_parameters_then_less_training():
    assert Size(10, 9.0).below(Size(11, 1.0))
    assert Size(10, 1.0).below(Size(10, 2.0))  # fewer epochs: as many parameters, cheaper
    assert not Size(10, 2.0).below(Size(10, 2.0))


def test_every_candidate_is_sized_before_any_trains():
    state = _state_with_baseline()
    a, b, c = _candidate("fewer_units", 1), _candidate("fewer_units", 2), _candidate("x", 3)
    step = next_step(state, [a, b, c], parallel=2)
    assert step.kind == "size" and step.candidates == (a, b)
    state.absorb(_record(2, "sized", a, parameters=500))
    state.absorb(_record(3, "sized", b, parameters=800))
    step = next_step(state, [a, b, c], parallel=2)
    assert step.kind == "size" and step.candidates == (c,)


def test_the_smallest_trains_first_and_a_bigger_one_never():
    state = _state_with_baseline(1000)
    a, b, c = _candidate("a", 1), _candidate("b", 2), _candidate("c", 3)
    for trial, (candidate, size) in enumerate(((a, 800), (b, 300), (c, 1200)), start=2):
        state.absorb(_record(trial, "sized", candidate, parameters=size))
    step = next_step(state, [a, b, c], parallel=2)
    assert step.kind == "train" and step.candidates == (b, a)  # c is bigger than the best
    state.absorb(_record(5, "missed", b, parameters=300))
    state.absorb(_record(6, "missed", a, parameters=800))
    assert next_step(state, [a, b, c], parallel=2).kind == "done"


def test_a_candidate_at_the_target_is_confirmed_once_nothing_smaller_is_untrained():
    state = _state_with_baseline(1000)
    a, b, c = _candidate("a", 1), _candidate("b", 2), _candidate("c", 3)
    for trial, (candidate, size) in enumerate(((a, 200), (b, 400), (c, 600)), start=2):
        state.absorb(_record(trial, "sized", candidate, parameters=size))
    reached_b = _record(5, "reached", b, parameters=400)
    state.absorb(reached_b)
    step = next_step(state, [a, b, c], parallel=2)
    assert step.kind == "train" and step.candidates == (a, c)  # a is smaller: it goes first
    state.absorb(_record(6, "missed", a, parameters=200))
    step = next_step(state, [a, b, c], parallel=2)
    assert step.kind == "confirm" and step.confirm is reached_b
    assert step.candidates == (c,)  # the next smallest, on the core the confirm leaves


def test_a_confirm_that_holds_makes_a_new_best_and_starts_its_round_over():
    state = _state_with_baseline(1000)
    a = _candidate("a", 1)
    state.absorb(_record(2, "sized", a, parameters=200))
    state.absorb(_record(3, "reached", a, parameters=200))
    state.absorb(_record(4, "accepted", a, parameters=200, seed_offset=1), "smaller script")
    assert state.best_id == 4 and state.best_source == "smaller script"
    assert state.best_size == Size(200, 0.0)
    assert not state.sizes and not state.waiting and not state.trained
    assert state.confirms == 1 and state.accepted == 1
    assert not state.refused  # what was refused on the old best is tried on the new one


def test_a_confirm_that_falls_short_refuses_the_change_on_this_best():
    state = _state_with_baseline(1000)
    a = _candidate("a", 1)
    state.absorb(_record(2, "sized", a, parameters=200))
    state.absorb(_record(3, "reached", a, parameters=200))
    state.absorb(_record(4, "refused", a, parameters=200, value=0.90, seed_offset=1))
    assert _key(a) in state.refused and state.best_id == 1
    assert next_step(state, [a], parallel=2).kind == "done"


def test_a_candidate_that_did_not_build_is_refused_at_its_sizing():
    state = _state_with_baseline()
    a = _candidate("a", 1)
    state.absorb(_record(2, "sized", a, status="failed", value=None, parameters=None))
    assert _key(a) in state.refused and next_step(state, [a], parallel=1).kind == "done"


def test_a_candidate_trained_beside_a_confirm_that_held_says_nothing_of_the_new_best():
    state = _state_with_baseline(1000)
    a, b = _candidate("a", 1), _candidate("b", 2)
    state.absorb(_record(2, "sized", a, parameters=200))
    state.absorb(_record(3, "sized", b, parameters=400))
    state.absorb(_record(4, "reached", a, parameters=200))
    state.absorb(_record(5, "accepted", a, parameters=200, seed_offset=1), "smaller")
    state.absorb(_record(6, "reached", b, parameters=400))  # beside the confirm, parent 1
    assert not state.waiting and not state.trained  # the new best's round starts clean
    state.absorb(_record(7, "missed", b, parameters=400))
    assert _key(b) not in state.refused  # a miss on the old best says nothing of the new


def test_sizing_runs_are_not_trials_and_a_wave_costs_its_longest_trial():
    state = _state_with_baseline()
    a, b = _candidate("a", 1), _candidate("b", 2)
    state.absorb(_record(2, "sized", a, parameters=10, seconds=1.0, round=2))
    state.absorb(_record(3, "sized", b, parameters=20, seconds=1.5, round=2))
    state.absorb(_record(4, "missed", a, parameters=10, seconds=4.0, round=3))
    state.absorb(_record(5, "missed", b, parameters=20, seconds=6.0, round=3))
    assert state.trials == 3 and state.sized == 2  # the baseline and two trained
    assert state.seconds == 1.0 + 1.5 + 6.0  # baseline, then each wave's longest
