"""Adaptive steps: a rule that gained much takes a bigger step, within the rule's own limits."""

from __future__ import annotations

from test_search import SCRIPT, FakeRunner, climb

from mutator import api
from mutator.search import steps
from rules.larger_kernel import LargerKernel
from rules.more_epochs import MoreEpochs
from rules.more_filters import MoreFilters


def test_the_step_grows_with_the_level_and_keeps_the_rules_limits():
    assert steps.step_of(MoreFilters(), 0) == MoreFilters()
    assert steps.step_of(MoreFilters(), 1).factor == 4
    assert steps.step_of(MoreFilters(factor=3, max_filters=64), 2) == MoreFilters(27, 64)
    assert steps.step_of(MoreEpochs(step=5), 2) == MoreEpochs(step=5)  # additive: not adapted


CONV = """import keras
model = keras.Sequential([
    keras.Input(shape=INPUT),
    keras.layers.CONV(16, 3, activation="relu"),
])
"""


def _kernel(rule: LargerKernel, conv: str = "Conv1D", shape: str = "(128, 1)") -> list[list[int]]:
    source = CONV.replace("CONV", conv).replace("INPUT", shape)
    [candidate] = api.propose(api.Script.from_text(source, "conv.py"), [rule])
    return candidate.params["kernel"]


def test_a_1d_kernel_grows_its_span_by_the_level_and_a_2d_kernel_keeps_its_step():
    assert steps.step_of(LargerKernel(), 1).span == 4 and steps.step_of(LargerKernel(), 2).span == 8
    assert _kernel(LargerKernel()) == [[3], [5]]
    assert _kernel(steps.step_of(LargerKernel(), 1)) == [[3], [9]]
    assert _kernel(steps.step_of(LargerKernel(), 2)) == [[3], [15]]  # its cap
    assert _kernel(steps.step_of(LargerKernel(), 2), "Conv2D", "(28, 28, 1)") == [[3], [5]]
    assert steps.with_factor(LargerKernel(), 4) == LargerKernel(span=4)  # replayed as tried
    assert steps.adapts("larger_kernel")


def test_a_big_gain_raises_the_level_and_a_refusal_lowers_it():
    assert steps.next_level(0, "accepted", 0.2, beaten=False) == 1
    assert steps.next_level(2, "accepted", 0.2, beaten=False) == steps.MAX_LEVEL
    assert steps.next_level(1, "accepted", 0.001, beaten=False) == 1  # a small gain: same step
    assert steps.next_level(1, "rejected", -0.01, beaten=False) == 0
    assert steps.next_level(1, "rejected", None, beaten=False) == 1  # failed: no value to judge
    assert steps.next_level(1, "rejected", 0.1, beaten=True) == 1  # beaten is not a failure
    assert steps.next_level(0, "rejected", -0.2, beaten=False) == 0


def test_near_the_target_a_rule_takes_its_own_step_whatever_it_earned():
    assert steps.level_for(None, 0.5) == 2 and steps.level_for(None, 0.1) == 1
    assert steps.level_for(2, 0.1) == 2  # mid-way: momentum may go one above the gap's level
    assert steps.level_for(2, 0.04) == 0  # near: the rule's own step (epochs x2, not x8)
    assert steps.level_for(1, 0.5) == 1  # a rule that failed keeps its smaller step
    assert steps.level_for(2, None) == 2 and steps.level_for(None, None) == 0  # no target


def test_the_climb_hurries_while_filters_pay_and_comes_back_when_they_stop(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    _, ledger = climb(
        script,
        FakeRunner(),
        max_trials=7,
        rules=("more_filters",),
        adaptive_steps=True,
        rule_settings={"more_filters": {"max_filters": 200}},
    )
    filters = [(r.params["filters"], r.step, r.decision) for r in ledger.records()[1:]]
    assert filters == [
        ([4, 8], 2, "accepted"),  # +0.10: the next step is x4
        ([8, 32], 4, "accepted"),  # +0.20 (the fake's score stops rising at 16): x8 next
        ([32, 200], 8, "rejected"),  # x8 is 256, capped at max_filters: no gain, back to x4
        ([32, 128], 4, "rejected"),  # back to x2
        ([32, 64], 2, "rejected"),
    ]


def test_from_curve_stops_fewer_epochs_where_validation_was_best():
    from rules.fewer_epochs import FewerEpochs

    assert steps.from_curve(FewerEpochs(), 9).to_epochs == 9
    assert steps.from_curve(FewerEpochs(), None).to_epochs is None  # no curve: it halves
    assert steps.from_curve(FewerEpochs(to_epochs=5), 9).to_epochs == 5  # the user's own stays
    assert steps.from_curve(MoreEpochs(), 9) == MoreEpochs()  # a rule without the setting
